"""Executor of CaptionEmbedder: runs `embed_shards.EmbedCaptions` over every shard.

Shards are written under `<output>/.staging-<id>/` and renamed into `<output>/Split-*/` only
when the run succeeded and few enough images were skipped, so a failed run never leaves
Split-* folders that look complete (CubExampleGen does the same). The counts (and num_<split>)
are totalled from the per-shard counts the Beam job writes beside its shards, not from Beam's
metrics, which some runners do not commit.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from typing import Any

import apache_beam as beam
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from stackgan import config_view
from stackgan.components.caption_embedder import embed_shards
from stackgan.schemas import features

SUMMARY_FILE = "caption_embedder_summary.json"
SCHEMA_FILE = "schema.pbtxt"


class Executor(base_beam_executor.BaseBeamExecutor):
    def Do(
        self,
        input_dict: dict[str, list],
        output_dict: dict[str, list],
        exec_properties: dict[str, Any],
    ) -> None:
        """Writes the embedded Examples.

        input_dict: `raw_examples` (one Examples artifact), `text_encoder` (one Model artifact,
          SavedModel at <uri>/Format-Serving).
        output_dict: `examples` (one Examples artifact): the input's split_names, Split-*/
          shards of the same names, schema.pbtxt, caption_embedder_summary.json; custom
          properties payload_format, file_format, has_embeddings=1, num_<split> and the counts
          of `embed_shards.COUNTERS`.
        exec_properties: `data_config` (JSON of the fields component.READS names;
          data.max_skipped_fraction bounds the images skipped for having no caption).
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        config = config_view.from_exec_properties(exec_properties, "CaptionEmbedder")
        raw = artifact_utils.get_single_instance(input_dict["raw_examples"])
        encoder = artifact_utils.get_single_instance(input_dict["text_encoder"])
        output = artifact_utils.get_single_instance(output_dict["examples"])
        splits = artifact_utils.decode_split_names(raw.split_names)
        encoder_dir = path_utils.serving_model_path(encoder.uri)

        staging = os.path.join(output.uri, f".staging-{uuid.uuid4().hex}")
        try:
            jobs = embed_shards.shard_jobs(raw.uri, staging, splits)
            counts = self._run(jobs, encoder_dir, f"{staging}/counts/shard_counts")
            _check_skipped(counts, raw.uri, splits, config.data.max_skipped_fraction)
            for split in splits:
                tf.io.gfile.makedirs(os.path.join(output.uri, f"Split-{split}"))
            FileSystems.rename(
                [job.output_path for job in jobs],
                [job.output_path.replace(staging, output.uri, 1) for job in jobs],
            )
        finally:
            if FileSystems.exists(staging):
                FileSystems.delete([staging])

        io_utils.write_bytes_file(
            os.path.join(output.uri, SCHEMA_FILE), features.SCHEMA_PATH.read_bytes()
        )
        summary = {"counts": counts, "text_encoder": encoder_dir, "splits": splits}
        io_utils.write_string_file(
            os.path.join(output.uri, SUMMARY_FILE), json.dumps(summary, indent=2, sort_keys=True)
        )
        output.split_names = raw.split_names
        examples_utils.set_payload_format(output, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(
            output, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP)
        )
        output.set_int_custom_property("has_embeddings", 1)
        for name, value in counts.items():
            output.set_int_custom_property(name, value)
        logging.info("CaptionEmbedder: %s", counts)

    def _run(self, jobs: list[embed_shards.ShardJob], encoder_dir: str, prefix: str) -> dict:
        with self._make_beam_pipeline() as pipeline:
            _ = (
                pipeline
                | "ShardJobs" >> beam.Create(jobs)
                | "EmbedCaptions" >> embed_shards.EmbedCaptions(encoder_dir)
                | "ToJson" >> beam.Map(json.dumps, sort_keys=True)
                | "WriteShardCounts" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl")
            )
        return _total(_read_shard_counts(prefix, jobs), jobs)


def _read_shard_counts(prefix: str, jobs: list[embed_shards.ShardJob]) -> list[dict]:
    rows = []
    for match in FileSystems.match([f"{prefix}*"])[0].metadata_list:
        with FileSystems.open(match.path) as f:
            rows.extend(json.loads(line) for line in f.read().decode().splitlines())
    if sorted(r["input_path"] for r in rows) != sorted(job.input_path for job in jobs):
        raise RuntimeError(
            f"{prefix}*: counts of {len(rows)} shards written, {len(jobs)} shards planned"
        )
    return rows


def _total(rows: list[dict], jobs: list[embed_shards.ShardJob]) -> dict[str, int]:
    """embed_shards.COUNTERS summed over the shards, and num_<split> (records written)."""
    counts = {name: sum(r[name] for r in rows) for name in embed_shards.COUNTERS}
    for split in dict.fromkeys(job.split for job in jobs):
        counts[embed_shards.split_counter(split)] = sum(
            r[embed_shards.WRITTEN] for r in rows if r["split"] == split
        )
    return counts


def _check_skipped(counts: dict[str, int], uri: str, splits, max_fraction: float) -> None:
    skipped = counts[embed_shards.SKIPPED_NO_CAPTIONS]
    seen = counts[embed_shards.WRITTEN] + skipped
    if seen == 0:
        raise ValueError(f"{uri}: no Examples in splits {splits}")
    if skipped / seen > max_fraction:
        raise ValueError(
            f"{uri}: {skipped} of {seen} examples have no caption, more than"
            f" data.max_skipped_fraction={max_fraction}; nothing was published"
        )

"""Executor of CaptionEmbedder: runs `embed_shards.EmbedCaptions` over every shard.

Shards are written under `<output>/.staging-<id>/` and renamed into `<output>/Split-*/` only
when the run succeeded and few enough images were skipped, so a failed run never leaves
Split-* folders that look complete (CubExampleGen does the same).
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
from apache_beam.metrics.metric import MetricsFilter
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from stackgan.components.caption_embedder import embed_shards
from stackgan.config import Config
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
        exec_properties: `config_json` (stackgan.config.Config as JSON;
          data.max_skipped_fraction bounds the images skipped for having no caption).
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        config = Config.from_json(exec_properties["config_json"])
        raw = artifact_utils.get_single_instance(input_dict["raw_examples"])
        encoder = artifact_utils.get_single_instance(input_dict["text_encoder"])
        output = artifact_utils.get_single_instance(output_dict["examples"])
        splits = artifact_utils.decode_split_names(raw.split_names)
        encoder_dir = path_utils.serving_model_path(encoder.uri)

        staging = os.path.join(output.uri, f".staging-{uuid.uuid4().hex}")
        try:
            jobs = embed_shards.shard_jobs(raw.uri, staging, splits)
            counts = self._run(jobs, encoder_dir)
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

    def _run(self, jobs: list[embed_shards.ShardJob], encoder_dir: str) -> dict[str, int]:
        pipeline = self._make_beam_pipeline()
        _ = (
            pipeline
            | "ShardJobs" >> beam.Create(jobs)
            | "EmbedCaptions" >> embed_shards.EmbedCaptions(encoder_dir)
        )
        result = pipeline.run()
        result.wait_until_finish()
        query = result.metrics().query(MetricsFilter().with_namespace(embed_shards.NAMESPACE))
        counts = dict.fromkeys(embed_shards.COUNTERS, 0)
        for counter in query["counters"]:
            name = counter.key.metric.name
            counts[name] = counts.get(name, 0) + (counter.committed or 0)
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

"""Executor of CaptionEmbedder: runs `embed_shards.EmbedCaptions` over every shard."""

from __future__ import annotations

import json
import os
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from stackgan.components.caption_embedder import embed_shards
from stackgan.config import Config

SUMMARY_FILE = "caption_embedder_summary.json"


class Executor(base_beam_executor.BaseBeamExecutor):
    def Do(
        self,
        input_dict: dict[str, list],
        output_dict: dict[str, list],
        exec_properties: dict[str, Any],
    ) -> None:
        """Writes the embedded Examples.

        input_dict: `raw_examples` (one Examples artifact), `text_encoder` (one Model artifact,
        SavedModel at <uri>/Format-Serving). output_dict: `examples` (one Examples artifact;
        gets the input's split_names, Split-*/ shards of the same names, and the counts of
        `embed_shards.COUNTERS` as int custom properties plus <uri>/caption_embedder_summary.json).
        exec_properties: `config_json` (stackgan.config.Config as JSON; data.max_skipped_fraction
        bounds the images skipped for having no caption).
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        config = Config.from_json(exec_properties["config_json"])
        raw = artifact_utils.get_single_instance(input_dict["raw_examples"])
        encoder = artifact_utils.get_single_instance(input_dict["text_encoder"])
        output = artifact_utils.get_single_instance(output_dict["examples"])
        splits = artifact_utils.decode_split_names(raw.split_names)
        encoder_dir = path_utils.serving_model_path(encoder.uri)

        jobs = embed_shards.shard_jobs(raw.uri, output.uri, splits)
        pipeline = self._make_beam_pipeline()
        _ = (
            pipeline
            | "ShardJobs" >> beam.Create(jobs)
            | "EmbedCaptions" >> embed_shards.EmbedCaptions(encoder_dir)
        )
        result = pipeline.run()
        result.wait_until_finish()
        counts = _counter_totals(result)

        seen = counts[embed_shards.WRITTEN] + counts[embed_shards.SKIPPED_NO_CAPTIONS]
        skipped = counts[embed_shards.SKIPPED_NO_CAPTIONS]
        if seen == 0:
            raise ValueError(f"{raw.uri}: no Examples in splits {splits}")
        if skipped / seen > config.data.max_skipped_fraction:
            raise ValueError(
                f"{raw.uri}: {skipped} of {seen} examples have no caption, more than"
                f" data.max_skipped_fraction={config.data.max_skipped_fraction}"
            )
        output.split_names = raw.split_names
        for name, value in counts.items():
            output.set_int_custom_property(name, value)
        summary = {"counts": counts, "text_encoder": encoder_dir, "splits": splits}
        io_utils.write_string_file(
            os.path.join(output.uri, SUMMARY_FILE), json.dumps(summary, indent=2, sort_keys=True)
        )


def _counter_totals(result) -> dict[str, int]:
    counters = result.metrics().query(MetricsFilter().with_namespace(embed_shards.NAMESPACE))
    totals = dict.fromkeys(embed_shards.COUNTERS, 0)
    for counter in counters["counters"]:
        totals[counter.key.metric.name] += counter.committed or 0
    return totals

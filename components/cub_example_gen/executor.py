"""Executor of CubExampleGen: wraps `generate.generate_examples` in TFX's artifact plumbing."""

from __future__ import annotations

from typing import Any

from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact, artifact_utils

from stackgan import config_view
from stackgan.components.cub_example_gen import generate
from stackgan.data import cub


class Executor(base_beam_executor.BaseBeamExecutor):
    def Do(
        self,
        input_dict: dict[str, list[artifact.Artifact]],
        output_dict: dict[str, list[artifact.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Writes the Examples of the dataset at `data_root`.

        Args:
          input_dict: none.
          output_dict: `examples`: one Examples artifact; gets `Split-train/`, `Split-test/`,
            `schema.pbtxt`, `preprocessing_report.json`, `split_names`, and custom properties
            `payload_format`, `file_format`, `has_embeddings`, `num_train`, `num_test`.
          exec_properties: `data_root` (str), `data_config` (JSON of the fields component.READS
            names), `data_fingerprint` (not read: a cache key).
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        config = config_view.from_exec_properties(exec_properties, "CubExampleGen")
        examples = artifact_utils.get_single_instance(output_dict["examples"])
        report = generate.generate_examples(
            exec_properties["data_root"], config, examples.uri, self._make_beam_pipeline
        )
        examples.split_names = artifact_utils.encode_split_names(list(cub.SPLITS))
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(
            examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP)
        )
        examples.set_int_custom_property("has_embeddings", int(report.has_embeddings))
        for split, counts in report.splits.items():
            examples.set_int_custom_property(f"num_{split}", counts.written)

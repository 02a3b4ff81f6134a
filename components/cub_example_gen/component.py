"""CubExampleGen: the CUB layout (images, boxes, captions, optional embeddings) -> Examples."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan.components.cub_example_gen import executor


class CubExampleGenSpec(ComponentSpec):
    PARAMETERS = {
        # the dataset root: CUB_200_2011/ and birds/ (see stackgan.data.cub)
        "data_root": ExecutionParameter(type=str),
        # stackgan.config.Config.to_json(); its `data` section drives the conversion
        "config_json": ExecutionParameter(type=str),
        # Sizes and modification times of the dataset's files (stackgan.data.fingerprint). The
        # executor does not read it: it is here so that TFX's cache, which keys on parameters
        # and inputs, re-runs the conversion when the files under an unchanged path change.
        "data_fingerprint": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {"examples": ChannelParameter(type=standard_artifacts.Examples)}


class CubExampleGen(base_beam_component.BaseBeamComponent):
    """Writes `Split-train/` and `Split-test/` (gzipped TFRecords of tf.Example, features as in
    schemas/schema.pbtxt), the schema and a preprocessing report. Runner options come from the
    pipeline's `beam_pipeline_args` (DirectRunner when none)."""

    SPEC_CLASS = CubExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, data_root: str, config_json: str, data_fingerprint: str = ""):
        super().__init__(
            spec=CubExampleGenSpec(
                data_root=data_root,
                config_json=config_json,
                data_fingerprint=data_fingerprint,
                examples=types.Channel(type=standard_artifacts.Examples),
            )
        )

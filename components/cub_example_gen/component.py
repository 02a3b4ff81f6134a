"""CubExampleGen: the CUB layout (images, boxes, captions, optional embeddings) -> Examples."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan import config_view
from stackgan.components.cub_example_gen import executor
from stackgan.config import Config

# The config fields the conversion reads (see stackgan/config_view.py); the crop sizes the
# trainers cut from the stored images are not among them.
READS = config_view.Reads(
    "CubExampleGen",
    {
        "data": (
            "split", "strict", "low_res_stored", "high_res_stored", "image_encoding",
            "embedding_dim", "captions_per_image", "max_skipped_fraction", "num_shards",
        ),
    },
)  # fmt: skip


class CubExampleGenSpec(ComponentSpec):
    PARAMETERS = {
        # the dataset root: CUB_200_2011/ and birds/ (see stackgan.data.cub)
        "data_root": ExecutionParameter(type=str),
        # `data_config`: JSON of the READS fields
        **{name: ExecutionParameter(type=str) for name in READS.property_names},
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

    def __init__(self, data_root: str, config: Config, data_fingerprint: str = ""):
        super().__init__(
            spec=CubExampleGenSpec(
                data_root=data_root,
                **READS.exec_properties(config),
                data_fingerprint=data_fingerprint,
                examples=types.Channel(type=standard_artifacts.Examples),
            )
        )

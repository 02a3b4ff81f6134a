"""CaptionEmbedder: Examples + text encoder -> the same Examples with `embedding` filled in.

Inputs: `examples` (Examples, e.g. CubExampleGen's, with or without embeddings) and
`text_encoder` (Model, TextEncoderTrainer's, SavedModel at <uri>/Format-Serving). Output:
`examples` (Examples: same splits, shard names and features; `captions` filled to
data.captions_per_image and one `embedding` row per caption). Parameter: `data_config` (JSON
of the READS fields).

TFX wants one name per channel across inputs and outputs, so the input channel is called
`raw_examples` inside the spec; the constructor takes it as `examples` and the output is
`outputs["examples"]`, which is what downstream components read.
"""

from __future__ import annotations

from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.channel import Channel
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan import config_view
from stackgan.components.caption_embedder.executor import Executor
from stackgan.config import Config

# The config fields the embedder reads (see stackgan/config_view.py)
READS = config_view.Reads("CaptionEmbedder", {"data": ("max_skipped_fraction",)})


class CaptionEmbedderSpec(ComponentSpec):
    PARAMETERS = {name: ExecutionParameter(type=str) for name in READS.property_names}
    INPUTS = {
        "raw_examples": ChannelParameter(type=standard_artifacts.Examples),
        "text_encoder": ChannelParameter(type=standard_artifacts.Model),
    }
    OUTPUTS = {"examples": ChannelParameter(type=standard_artifacts.Examples)}


class CaptionEmbedder(base_beam_component.BaseBeamComponent):
    SPEC_CLASS = CaptionEmbedderSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, examples, text_encoder, config: Config):
        super().__init__(
            spec=CaptionEmbedderSpec(
                raw_examples=examples,
                text_encoder=text_encoder,
                **READS.exec_properties(config),
                examples=Channel(type=standard_artifacts.Examples),
            )
        )

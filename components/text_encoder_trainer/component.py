"""TextEncoderTrainer: captions + frozen classifier features -> a char-CNN-RNN text encoder.

Inputs: `examples` (Examples with Split-train, and Split-test for the zero-shot score;
embeddings not needed) and `classifier` (Model: ClassifierTrainer's SavedModel at
<uri>/Format-Serving, whose pooled `features` are the image side of the joint embedding).
Outputs: `model` (Model: the text-encoder SavedModel at <uri>/Format-Serving, signature
`serving_default`: `caption` string[N] -> `embedding` f32[N, E]; see stackgan.text.export) and
`model_run` (ModelRun: history.csv per epoch, metrics.json with the zero-shot retrieval top-1
on the test classes beside chance). Parameter: `config_json`.
"""

from __future__ import annotations

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan.components.text_encoder_trainer.executor import Executor


class TextEncoderTrainerSpec(ComponentSpec):
    PARAMETERS = {"config_json": ExecutionParameter(type=str)}
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "classifier": ChannelParameter(type=standard_artifacts.Model),
    }
    OUTPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_run": ChannelParameter(type=standard_artifacts.ModelRun),
    }


class TextEncoderTrainer(base_component.BaseComponent):
    SPEC_CLASS = TextEncoderTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self, examples: channel.BaseChannel, classifier: channel.BaseChannel, config_json: str
    ):
        super().__init__(
            spec=TextEncoderTrainerSpec(
                examples=examples,
                classifier=classifier,
                config_json=config_json,
                model=channel.Channel(type=standard_artifacts.Model),
                model_run=channel.Channel(type=standard_artifacts.ModelRun),
            )
        )

"""TextEncoderTrainer: captions + frozen classifier features -> a char-CNN-RNN text encoder.

Inputs: `examples` (Examples with Split-train, and Split-test for the zero-shot score;
embeddings not needed) and `classifier` (Model: ClassifierTrainer's SavedModel at
<uri>/Format-Serving, whose pooled `features` are the image side of the joint embedding).
Outputs: `model` (Model: the text-encoder SavedModel at <uri>/Format-Serving, signature
`serving_default`: `caption` string[N] -> `embedding` f32[N, E]; see stackgan.text.export) and
`model_run` (ModelRun: history.csv per epoch, metrics.json with the zero-shot retrieval top-1
on the test classes beside chance). Parameters: `text_config`, `data_config`,
`classifier_config`, `train_config` (JSON of the READS fields).
"""

from __future__ import annotations

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan import config_view
from stackgan.components.text_encoder_trainer.executor import Executor
from stackgan.config import Config

# The config fields the text encoder reads (see stackgan/config_view.py); `text.source` is
# the pipeline's choice of path, not the encoder's business.
READS = config_view.Reads(
    "TextEncoderTrainer",
    {
        "text": config_view.all_but("source"),
        "data": ("high_res_stored", "high_res", "image_encoding"),
        "classifier": ("batch_size",),
        "train": ("seed", "precision"),
    },
)


class TextEncoderTrainerSpec(ComponentSpec):
    PARAMETERS = {name: ExecutionParameter(type=str) for name in READS.property_names}
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
        self, examples: channel.BaseChannel, classifier: channel.BaseChannel, config: Config
    ):
        super().__init__(
            spec=TextEncoderTrainerSpec(
                examples=examples,
                classifier=classifier,
                **READS.exec_properties(config),
                model=channel.Channel(type=standard_artifacts.Model),
                model_run=channel.Channel(type=standard_artifacts.ModelRun),
            )
        )

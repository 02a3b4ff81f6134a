"""TextEncoderTrainer: captions -> a char-CNN-RNN text encoder, by one of two objectives
(stackgan.text.encoder_job): "ds_sje" against frozen classifier features, or "distill" (the
dataset's own caption embeddings, regressed from the captions).

Inputs: `examples` (Examples with Split-train, and Split-test for the held-out score; "distill"
needs their embeddings) and `classifier` ("ds_sje" only: Model, ClassifierTrainer's SavedModel
at <uri>/Format-Serving, whose pooled `features` are the image side of the joint embedding).
Outputs: `model` (Model: the text-encoder SavedModel at <uri>/Format-Serving, signature
`serving_default`: `caption` string[N] -> `embedding` f32[N, E]; see stackgan.text.export) and
`model_run` (ModelRun: history.csv per epoch, TensorBoard logs/, metrics.json: the zero-shot
retrieval top-1 on the test classes beside chance, or the distillation's cosine on the test
captions beside an input-blind encoder's). Parameters: `objective`, `text_config`, `data_config`,
`classifier_config`, `train_config` (JSON of the READS fields), and `checkpoint_dir`, a
directory that outlives the execution, so a killed run resumes from its last epoch
(stackgan/training/epoch_backup.py); empty keeps the backup in the ModelRun, which TFX replaces
on every execution.
"""

from __future__ import annotations

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan import config_view
from stackgan.components.text_encoder_trainer.executor import Executor
from stackgan.config import Config
from stackgan.text.encoder_job import OBJECTIVES

# The config fields the text encoder reads (see stackgan/config_view.py), by objective;
# `text.source` and `text.distill_pickle` are the pipeline's choice of path, not the encoder's
# business. "ds_sje" embeds the images through the classifier; "distill" (the default path on
# data with embeddings: the Quickstart's, the release's) regresses captions onto the dataset's
# embeddings and opens no image and no classifier, so a classifier or crop change must not
# re-run it, nor the Stage-II that takes its encoder. Both have the same four sections (the
# spec's parameters); distill's data and classifier sections are empty.
READS = config_view.Reads(
    "TextEncoderTrainer",
    {
        "text": config_view.all_but(
            "source", "distill_pickle", "distill_epochs", "distill_learning_rate"
        ),
        "data": ("high_res_stored", "high_res", "image_encoding"),
        "classifier": ("batch_size",),
        "train": ("precision",),
    },
)
DISTILL_READS = config_view.Reads(
    "TextEncoderTrainer",
    {
        "text": config_view.all_but("source", "distill_pickle", "epochs", "learning_rate"),
        "data": (),
        "classifier": (),
        "train": ("precision",),
    },
)


def reads_for(objective: str) -> config_view.Reads:
    return DISTILL_READS if objective == "distill" else READS


class TextEncoderTrainerSpec(ComponentSpec):
    PARAMETERS = {
        "objective": ExecutionParameter(type=str),
        **{name: ExecutionParameter(type=str) for name in READS.property_names},
        "checkpoint_dir": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "classifier": ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_run": ChannelParameter(type=standard_artifacts.ModelRun),
    }


class TextEncoderTrainer(base_component.BaseComponent):
    SPEC_CLASS = TextEncoderTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        examples: channel.BaseChannel,
        classifier: channel.BaseChannel | None,
        config: Config,
        objective: str = "ds_sje",
        checkpoint_dir: str = "",
    ):
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if (classifier is None) != (objective == "distill"):
            raise ValueError("the classifier is the image side of ds_sje and of nothing else")
        super().__init__(
            spec=TextEncoderTrainerSpec(
                examples=examples,
                classifier=classifier,
                objective=objective,
                **reads_for(objective).exec_properties(config),
                checkpoint_dir=checkpoint_dir,
                model=channel.Channel(type=standard_artifacts.Model),
                model_run=channel.Channel(type=standard_artifacts.ModelRun),
            )
        )

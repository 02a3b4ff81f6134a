"""Stage2Trainer: Examples + the Stage-I generator -> the full text->image generator.

Inputs: `examples` (Examples WITH_EMBEDDINGS), `stage1_model` (Stage1Trainer's Model) and,
optionally, `text_encoder` (TextEncoderTrainer's Model, SavedModel at Format-Serving). Outputs:
`model` (Model: `generator.keras` (Stage-II), `stage1_generator.keras`, and at `Format-Serving`
the SavedModel of Stage-I + Stage-II that TFX's Pusher pushes, with a `text` signature when a
text encoder was given) and `model_run` (ModelRun). Parameters: `data_config`, `model_config`,
`train_config` (JSON of the READS fields), `checkpoint_dir` (as Stage1Trainer's).
"""

from __future__ import annotations

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.channel import Channel
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan import config_view
from stackgan.components.stage1_trainer.component import READS as STAGE1_READS
from stackgan.components.stage2_trainer.executor import Executor
from stackgan.config import Config

# The config fields Stage-II reads (see stackgan/config_view.py): Stage-I's data fields, the
# whole model section and every train field but Stage-I's own epoch count.
READS = config_view.Reads(
    "Stage2Trainer",
    {
        "data": STAGE1_READS.sections["data"],
        "model": config_view.ALL,
        "train": config_view.all_but("stage1_epochs"),
    },
)


class Stage2TrainerSpec(ComponentSpec):
    PARAMETERS = {
        **{name: ExecutionParameter(type=str) for name in READS.property_names},
        "checkpoint_dir": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "stage1_model": ChannelParameter(type=standard_artifacts.Model),
        "text_encoder": ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_run": ChannelParameter(type=standard_artifacts.ModelRun),
    }


class Stage2Trainer(base_component.BaseComponent):
    SPEC_CLASS = Stage2TrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self, examples, stage1_model, config: Config, text_encoder=None, checkpoint_dir: str = ""
    ):
        super().__init__(
            spec=Stage2TrainerSpec(
                examples=examples,
                stage1_model=stage1_model,
                text_encoder=text_encoder,
                **READS.exec_properties(config),
                checkpoint_dir=checkpoint_dir,
                model=Channel(type=standard_artifacts.Model),
                model_run=Channel(type=standard_artifacts.ModelRun),
            )
        )

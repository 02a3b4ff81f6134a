"""Stage1Trainer: Examples (with embeddings) -> the Stage-I generator.

Inputs: `examples` (Examples WITH_EMBEDDINGS: Split-train for training, Split-test captions for
the sample sheets). Outputs: `model` (Model: `generator.keras` and, at `Format-Serving`, a
SavedModel with `image_64` only) and `model_run` (ModelRun: TensorBoard logs, sample sheets,
`training_summary.json`). Parameters: `config_json`, and `checkpoint_dir`, a directory that
outlives the execution so a killed run resumes (see executor.py); empty keeps the checkpoints
in the ModelRun, which TFX replaces on every execution.
"""

from __future__ import annotations

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.channel import Channel
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan.components.stage1_trainer.executor import Executor


class Stage1TrainerSpec(ComponentSpec):
    PARAMETERS = {
        "config_json": ExecutionParameter(type=str),
        "checkpoint_dir": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {"examples": ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_run": ChannelParameter(type=standard_artifacts.ModelRun),
    }


class Stage1Trainer(base_component.BaseComponent):
    SPEC_CLASS = Stage1TrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples, config_json: str, checkpoint_dir: str = ""):
        super().__init__(
            spec=Stage1TrainerSpec(
                examples=examples,
                config_json=config_json,
                checkpoint_dir=checkpoint_dir,
                model=Channel(type=standard_artifacts.Model),
                model_run=Channel(type=standard_artifacts.ModelRun),
            )
        )

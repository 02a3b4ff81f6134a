"""ClassifierTrainer: Examples -> the CUB classifier of the inception score and FID.

Input: `examples` (Examples with Split-train and Split-test; embeddings not needed). Outputs:
`model` (Model: the classifier SavedModel at <uri>/Format-Serving, see the classifier contract
in docs/ARCHITECTURE.md) and `model_run` (ModelRun: run.json with the phases' histories, the
held-out top-1 accuracy, the weights it started from and any from-scratch warning).
Parameter: `config_json` (stackgan.config.Config.to_json()).
"""

from __future__ import annotations

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan.components.classifier_trainer.executor import Executor


class ClassifierTrainerSpec(ComponentSpec):
    PARAMETERS = {"config_json": ExecutionParameter(type=str)}
    INPUTS = {"examples": ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_run": ChannelParameter(type=standard_artifacts.ModelRun),
    }


class ClassifierTrainer(base_component.BaseComponent):
    SPEC_CLASS = ClassifierTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples: channel.BaseChannel, config_json: str):
        super().__init__(
            spec=ClassifierTrainerSpec(
                examples=examples,
                config_json=config_json,
                model=channel.Channel(type=standard_artifacts.Model),
                model_run=channel.Channel(type=standard_artifacts.ModelRun),
            )
        )

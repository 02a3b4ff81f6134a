"""Evaluator: scores a generator with the CUB classifier and blesses it for the Pusher.

Inputs: `examples` (Examples with embeddings; its Split-test is scored), `model` (Model: a
generator SavedModel of the serving contract, docs/ARCHITECTURE.md), `classifier` (Model:
ClassifierTrainer's), `baseline_model` (optional Model: the latest generator an earlier run
blessed, from a Resolver with TFX's LatestBlessedModelStrategy; absent on the first run).
Outputs: `evaluation` (ModelEvaluation: metrics.json, metrics.md, samples.png, and with a
Stage-II comparison.png: real | Stage-I | Stage-II for the same captions) and `blessing`
(ModelBlessing: custom property `blessed` = 1 when `stackgan.evaluation.evaluator.judge` passes
the model (generated class accuracy >= EvalConfig.min_class_accuracy_ratio x the real images'
and above chance, and >= the baseline's - EvalConfig.baseline_tolerance), else 0, with the
reason in `blessing_message`, plus a BLESSED or NOT_BLESSED file, as TFX's Evaluator writes
them, so TFX's Pusher reads it).
Parameter: `config_json` (stackgan.config.Config.to_json()).
"""

from __future__ import annotations

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan.components.evaluator.executor import Executor


class EvaluatorSpec(ComponentSpec):
    PARAMETERS = {"config_json": ExecutionParameter(type=str)}
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "model": ChannelParameter(type=standard_artifacts.Model),
        "classifier": ChannelParameter(type=standard_artifacts.Model),
        "baseline_model": ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class Evaluator(base_component.BaseComponent):
    SPEC_CLASS = EvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        examples: channel.BaseChannel,
        model: channel.BaseChannel,
        classifier: channel.BaseChannel,
        config_json: str,
        baseline_model: channel.BaseChannel | None = None,
    ):
        super().__init__(
            spec=EvaluatorSpec(
                examples=examples,
                model=model,
                classifier=classifier,
                baseline_model=baseline_model,
                config_json=config_json,
                evaluation=channel.Channel(type=standard_artifacts.ModelEvaluation),
                blessing=channel.Channel(type=standard_artifacts.ModelBlessing),
            )
        )

"""Evaluator: scores a generator with the CUB classifier and blesses it for the Pusher.

Inputs: `examples` (Examples with embeddings; its Split-test is scored), `model` (Model: a
generator SavedModel of the serving contract, docs/ARCHITECTURE.md), `classifier` (Model:
ClassifierTrainer's), `baseline_model` (optional Model: the latest generator an earlier run
blessed, from a Resolver with TFX's LatestBlessedModelStrategy; absent on the first run).
Outputs: `evaluation` (ModelEvaluation: metrics.json, metrics.md, samples.png, and with a
Stage-II comparison.png: real | Stage-I | Stage-II for the same captions) and `blessing`
(ModelBlessing: custom property `blessed` = 1 when `stackgan.evaluation.evaluator.judge` passes
the model (generated class accuracy at least EvalConfig.min_class_accuracy_ratio of the way
from chance to the real images' and above chance, and >= the baseline's -
EvalConfig.baseline_tolerance), else 0, with the
reason in `blessing_message`, plus a BLESSED or NOT_BLESSED file, as TFX's Evaluator writes
them, so TFX's Pusher reads it).
Parameters: `eval_config`, `data_config` (JSON of the READS fields).
"""

from __future__ import annotations

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan import config_view
from stackgan.components.evaluator.executor import Executor
from stackgan.config import Config

# The config fields the evaluator reads (see stackgan/config_view.py): a change to the
# push gate or the number of samples re-runs the Evaluator (and the Pusher) alone.
READS = config_view.Reads(
    "Evaluator",
    {
        "eval": config_view.ALL,
        "data": ("low_res_stored", "low_res", "high_res_stored", "high_res", "image_encoding"),
    },
)


class EvaluatorSpec(ComponentSpec):
    PARAMETERS = {name: ExecutionParameter(type=str) for name in READS.property_names}
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
        config: Config,
        baseline_model: channel.BaseChannel | None = None,
    ):
        super().__init__(
            spec=EvaluatorSpec(
                examples=examples,
                model=model,
                classifier=classifier,
                baseline_model=baseline_model,
                **READS.exec_properties(config),
                evaluation=channel.Channel(type=standard_artifacts.ModelEvaluation),
                blessing=channel.Channel(type=standard_artifacts.ModelBlessing),
            )
        )

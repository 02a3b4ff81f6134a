"""ClassifierTrainer: Examples -> the CUB classifier of the inception score and FID.

Input: `examples` (Examples with Split-train and Split-test; embeddings not needed). Outputs:
`model` (Model: the classifier SavedModel at <uri>/Format-Serving, see the classifier contract
in docs/ARCHITECTURE.md) and `model_run` (ModelRun: run.json with the phases' histories, the
held-out top-1 accuracy, the weights it started from and any from-scratch warning).
Parameters: `classifier_config`, `data_config` (JSON of the READS fields), and
`checkpoint_dir`, a directory that outlives the execution, so a killed run resumes: finished
phases restored, the unfinished one from its last epoch (stackgan/training/epoch_backup.py);
empty keeps the backup in the ModelRun, which TFX replaces on every execution.
"""

from __future__ import annotations

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan import config_view
from stackgan.components.classifier_trainer.executor import Executor
from stackgan.config import Config

# The config fields the classifier reads (see stackgan/config_view.py): a change to the GANs'
# training leaves it cached.
READS = config_view.Reads(
    "ClassifierTrainer",
    {
        "classifier": config_view.ALL,
        "data": ("high_res_stored", "high_res", "image_encoding", "shuffle_buffer", "ordered"),
    },
)


class ClassifierTrainerSpec(ComponentSpec):
    PARAMETERS = {
        **{name: ExecutionParameter(type=str) for name in READS.property_names},
        "checkpoint_dir": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {"examples": ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_run": ChannelParameter(type=standard_artifacts.ModelRun),
    }


class ClassifierTrainer(base_component.BaseComponent):
    SPEC_CLASS = ClassifierTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples: channel.BaseChannel, config: Config, checkpoint_dir: str = ""):
        super().__init__(
            spec=ClassifierTrainerSpec(
                examples=examples,
                **READS.exec_properties(config),
                checkpoint_dir=checkpoint_dir,
                model=channel.Channel(type=standard_artifacts.Model),
                model_run=channel.Channel(type=standard_artifacts.ModelRun),
            )
        )

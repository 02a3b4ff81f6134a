"""Stage1Trainer: Examples (with embeddings) -> the Stage-I generator.

Inputs: `examples` (Examples WITH_EMBEDDINGS: Split-train for training, Split-test captions for
the sample sheets). Outputs: `model` (Model: `generator.keras` and, at `Format-Serving`, a
SavedModel with `image_64` only) and `model_run` (ModelRun: TensorBoard logs, sample sheets,
`training_summary.json`). Parameters: `data_config`, `model_config`, `train_config` (JSON of
the READS fields), and `checkpoint_dir`, a directory that
outlives the execution so a killed run resumes (see executor.py); empty keeps the checkpoints
in the ModelRun, which TFX replaces on every execution.
"""

from __future__ import annotations

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.channel import Channel
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from stackgan import config_view
from stackgan.components.stage1_trainer.executor import Executor
from stackgan.config import Config

# The config fields Stage-I reads (see stackgan/config_view.py): not Stage-II's, so that a
# Stage-II change leaves Stage-I cached. Fields added later are read unless excluded here.
STAGE2_ONLY_MODEL_FIELDS = (
    "stage2_gf_dim", "stage2_df_dim", "stage2_residual_blocks", "stage2_unconditional_logit",
    "frozen_stage1_batchnorm", "stage2_output", "stage2_lowres_residual_dim",
)  # fmt: skip
STAGE2_ONLY_TRAIN_FIELDS = (
    "stage2_epochs", "stage2_max_steps", "stage2_batch_size", "stage2_consistency",
    "stage2_consistency_weight", "stage2_consistency_blur", "stage2_reconstruction_weight",
    "stage2_reconstruction_blur", "stage2_learning_rate",
)  # fmt: skip
READS = config_view.Reads(
    "Stage1Trainer",
    {
        "data": (
            "low_res_stored", "low_res", "high_res_stored", "high_res", "image_encoding",
            "embedding_dim", "captions_per_image", "embeddings_per_sample", "shuffle_buffer",
            "cache_decoded_mb", "train_flip", "ordered",
        ),
        "model": config_view.all_but(*STAGE2_ONLY_MODEL_FIELDS),
        "train": config_view.all_but(*STAGE2_ONLY_TRAIN_FIELDS),
    },
)  # fmt: skip


class Stage1TrainerSpec(ComponentSpec):
    PARAMETERS = {
        **{name: ExecutionParameter(type=str) for name in READS.property_names},
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

    def __init__(self, examples, config: Config, checkpoint_dir: str = ""):
        super().__init__(
            spec=Stage1TrainerSpec(
                examples=examples,
                **READS.exec_properties(config),
                checkpoint_dir=checkpoint_dir,
                model=Channel(type=standard_artifacts.Model),
                model_run=Channel(type=standard_artifacts.ModelRun),
            )
        )

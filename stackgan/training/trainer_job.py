"""One trainer component's work, apart from TFX's plumbing: train a stage, then write the Model
artifact (Keras generator + serving SavedModel) and the ModelRun summary.

Where checkpoints live: TFX gives every execution fresh output URIs, so checkpoints kept in the
ModelRun would be lost to a re-run. With a `checkpoint_root` (the pipeline sets one that outlives
executions) they go to `<checkpoint_root>/<key>`, where the key is a hash of the input
artifacts' URIs and the config without its run-length and reporting fields. A re-run after a
kill has the same inputs (upstream results are cached) and resumes; new data, a new Stage-I
model or changed hyper-parameters give a new key and a fresh start, never a resumed stale run;
a longer `max_steps` keeps the key, so training can be extended.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping

import tensorflow as tf

from stackgan import config_view
from stackgan.config import Config
from stackgan.serving.export import SavedTextEncoder, export_generator
from stackgan.training.runner import StageRun, train_stage

GENERATOR_FILE = "generator.keras"
STAGE1_GENERATOR_FILE = "stage1_generator.keras"
SUMMARY_FILE = "training_summary.json"
# TrainConfig fields that say how long or how often, not what is trained
RUN_LENGTH_FIELDS = (
    "max_steps", "stage2_max_steps", "stage1_epochs", "stage2_epochs",
    "checkpoint_every_steps", "sample_every_steps", "log_every_steps",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class StageInputs:
    examples_uri: str
    train_pattern: str
    sample_pattern: str
    num_train_examples: int | None  # from the Examples artifact's custom properties, if set
    stage1_model_uri: str | None = None
    text_encoder_dir: str | None = None


def checkpoint_dir(
    checkpoint_root: str, model_run_uri: str, stage: int, inputs: StageInputs, config: Config
) -> str:
    """See the module docstring."""
    if not checkpoint_root:
        return os.path.join(model_run_uri, "checkpoints")
    config_dict = config_view.given(config)
    for field in RUN_LENGTH_FIELDS:
        config_dict["train"].pop(field, None)
    key_source = json.dumps(
        {
            "stage": stage,
            "examples": inputs.examples_uri,
            "stage1_model": inputs.stage1_model_uri,
            "config": config_dict,
        },
        sort_keys=True,
    )
    return os.path.join(checkpoint_root, hashlib.sha256(key_source.encode()).hexdigest()[:16])


def run_stage_job(
    config: Config,
    stage: int,
    inputs: StageInputs,
    model_uri: str,
    model_run_uri: str,
    checkpoint_root: str = "",
) -> dict:
    """Trains `stage` and writes the outputs; returns the summary also written to the ModelRun."""
    ckpt_dir = checkpoint_dir(checkpoint_root, model_run_uri, stage, inputs, config)
    stage1_path = (
        os.path.join(inputs.stage1_model_uri, GENERATOR_FILE) if inputs.stage1_model_uri else None
    )
    if stage == 2 and not (stage1_path and tf.io.gfile.exists(stage1_path)):
        raise FileNotFoundError(f"Stage-I generator not found at {stage1_path}")
    run = train_stage(
        config,
        stage,
        inputs.train_pattern,
        model_run_uri,
        checkpoint_dir=ckpt_dir,
        sample_pattern=inputs.sample_pattern,
        stage1_model_path=stage1_path,
        num_examples=inputs.num_train_examples,
    )
    write_model(run, config, model_uri, inputs.text_encoder_dir)
    summary = {
        "stage": stage,
        "total_steps": run.total_steps,
        "steps_per_epoch": run.steps_per_epoch,
        "resumed_from_step": run.resumed_from_step,
        "final_logs": run.last_logs,
        "checkpoint": run.checkpoint,
        "checkpoint_dir": ckpt_dir,
        "final_sample_sheet": run.final_sample_sheet,
        "model": model_uri,
    }
    with tf.io.gfile.GFile(os.path.join(model_run_uri, SUMMARY_FILE), "w") as f:
        f.write(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def write_model(run: StageRun, config: Config, model_uri: str, text_encoder_dir: str | None):
    """`generator.keras` (+ `stage1_generator.keras` for Stage-II) and the serving SavedModel at
    `<model_uri>/Format-Serving` (Stage-I alone, or Stage-I + Stage-II)."""
    tf.io.gfile.makedirs(model_uri)
    run.gan.generator.save(os.path.join(model_uri, GENERATOR_FILE))
    if run.stage == 1:
        generators = (run.gan.generator,)
    else:
        run.gan.stage1_generator.save(os.path.join(model_uri, STAGE1_GENERATOR_FILE))
        generators = (run.gan.stage1_generator, run.gan.generator)
    text_encoder = SavedTextEncoder(text_encoder_dir) if text_encoder_dir else None
    export_generator(
        os.path.join(model_uri, "Format-Serving"),
        config.model,
        *generators,
        text_encoder=text_encoder,
    )


def examples_inputs(examples, split_uri, stage1_model_uri=None, text_encoder_dir=None):
    """StageInputs from an Examples artifact; `split_uri(split)` gives a split's directory."""
    properties: Mapping = examples.mlmd_artifact.custom_properties
    if "has_embeddings" in properties and not properties["has_embeddings"].int_value:
        raise ValueError(
            f"{examples.uri}: these Examples have no embeddings; train on the CaptionEmbedder's "
            "output (or a dataset that ships char-CNN-RNN embeddings)"
        )
    num_train = properties["num_train"].int_value if "num_train" in properties else None
    splits = json.loads(examples.split_names) if examples.split_names else []
    if "train" not in splits:
        raise ValueError(f"{examples.uri}: Examples have no 'train' split (splits: {splits})")
    sample_split = "test" if "test" in splits else "train"
    return StageInputs(
        examples_uri=examples.uri,
        train_pattern=os.path.join(split_uri("train"), "*"),
        sample_pattern=os.path.join(split_uri(sample_split), "*"),
        num_train_examples=num_train,
        stage1_model_uri=stage1_model_uri,
        text_encoder_dir=text_encoder_dir,
    )

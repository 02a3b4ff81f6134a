"""Resumable training state: a tf.train.CheckpointManager over everything a step changes.

A checkpoint holds the trained generator and discriminator, both optimizers (Adam moments and
iteration counters, which drive the learning-rate schedule), the step counter and the noise
SeedGenerator's state. Keras does not track a SeedGenerator as a checkpoint dependency, so its
state variable is added explicitly; without it a resumed run would replay the noise it drew
at step 0. The input pipeline's position is not saved (see runner.py): a resumed run reshuffles.

A `stage.json` beside the checkpoints records the stage and the model config; resuming with a
different one fails with the differing fields named, instead of a shape error from TensorFlow.
A field added to the config after the checkpoint was written counts as its default.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from stackgan import config_view
from stackgan.config import Config, ModelConfig
from stackgan.training.conditional_gan import ConditionalGAN

IDENTITY_FILE = "stage.json"


class TrainingCheckpoint:
    def __init__(
        self,
        directory: str,
        gan: ConditionalGAN,
        step: tf.Variable,
        *,
        stage: int,
        config: Config,
        max_to_keep: int = 3,
    ):
        self.directory = directory
        self.step = step
        self.identity = {"stage": stage, "model": config_view.given(config.model)}
        self.checkpoint = tf.train.Checkpoint(
            generator=gan.generator,
            discriminator=gan.discriminator,
            d_optimizer=gan.d_optimizer,
            g_optimizer=gan.g_optimizer,
            seed_state=gan.seed_generator.state,
            step=step,
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=max_to_keep, step_counter=step
        )

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def restore(self) -> int:
        """Restores the latest checkpoint if there is one; returns the step to continue from."""
        if self.latest is None:
            return 0
        self._check_identity()
        self.checkpoint.restore(self.latest).assert_existing_objects_matched()
        return int(self.step.numpy())

    def save(self) -> str:
        """Saves at the current step (numbered by it) and returns the checkpoint path."""
        tf.io.gfile.makedirs(self.directory)
        identity_path = os.path.join(self.directory, IDENTITY_FILE)
        if not tf.io.gfile.exists(identity_path):
            with tf.io.gfile.GFile(identity_path, "w") as f:
                f.write(json.dumps(self.identity, indent=1, sort_keys=True))
        return self.manager.save(checkpoint_number=self.step)

    def _check_identity(self) -> None:
        identity_path = os.path.join(self.directory, IDENTITY_FILE)
        if not tf.io.gfile.exists(identity_path):
            raise ValueError(
                f"{self.directory} holds checkpoints but no {IDENTITY_FILE}; "
                "it was not written by this trainer"
            )
        with tf.io.gfile.GFile(identity_path) as f:
            saved = json.load(f)
        if saved.get("stage") != self.identity["stage"]:
            raise ValueError(
                f"{self.directory} holds Stage-{saved.get('stage')} checkpoints, "
                f"not Stage-{self.identity['stage']}"
            )
        # A field the record lacks was added to ModelConfig after the checkpoint was written,
        # and a new field's default is what the code did before it (options are added off), so
        # a long run resumes across an upgrade unless the config now asks for something else.
        recorded = saved["model"]
        defaults = config_view.given(ModelConfig())
        differing = []
        for key, value in self.identity["model"].items():
            was = recorded[key] if key in recorded else defaults.get(key)
            if was != value:
                note = "" if key in recorded else " (not recorded: the default then)"
                differing.append(f"model.{key}: checkpoint {was!r}{note}, config {value!r}")
        differing.sort()
        if differing:
            raise ValueError(
                f"checkpoints in {self.directory} were written with a different model config "
                f"({'; '.join(differing)}); use a new checkpoint directory"
            )

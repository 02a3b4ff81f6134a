"""Precise BatchNorm statistics for the generator a stage trains (`TrainConfig.precise_bn_batches`).

Measured on the Stage-II learning test (tests/test_learning_stage2.py): after 400 steps the
generator's images in inference mode (moving averages) were 18.7 levels (mean |error|, 0-255)
from the true image and striped, against 4.8 levels and clean once the statistics were
re-estimated under the final weights. With momentum 0.9 the moving averages mix the statistics
of weights a GAN left behind several steps ago. So before every sample sheet and before the
model is exported, the trained generator's BatchNorm statistics are recomputed as the mean over
a fixed set of training-mode batches: text conditions drawn as training draws them from images
spread over the whole training split, in a random order (`input_pipeline.training_conditions`),
and fixed noise, drawn apart from the training noise so a resumed run trains exactly as an
uninterrupted one. Training itself is unchanged: it normalises with batch statistics.

Those batches must be a sample of the training batches. Until 2026-11-28 they were the training
split's first 320 captions in file order: 32 images of 4 of the demo's 36 species, whose
statistics the served generator then used for every caption. Re-estimated from a spread sample,
the same trained demo Stage-I scored class top-1 0.390 instead of 0.250 and FID 17.0 instead of
60.5 on the training species' captions (docs/EXPERIMENTS.md, "Precise BatchNorm statistics").
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from stackgan.config import Config
from stackgan.models.batch_norm import recalibrate_batch_norm


class BatchNormRecalibration:
    """`BatchNormRecalibration(embedding_batches, config)(generator, stage1_generator=None)`."""

    def __init__(self, embedding_batches: list[np.ndarray], config: Config):
        rng = np.random.default_rng(config.train.seed + 1)
        model_cfg = config.model

        def normal(batch, dim):
            return tf.constant(rng.standard_normal((len(batch), dim)), tf.float32)

        self.inputs = [
            (
                tf.constant(batch, tf.float32),
                normal(batch, model_cfg.z_dim),
                normal(batch, model_cfg.ca_dim),
                normal(batch, model_cfg.ca_dim),
            )
            for batch in embedding_batches
        ]
        self._compiled = {}

    def __call__(self, generator: keras.Model, stage1_generator: keras.Model | None = None) -> int:
        """Re-estimates `generator`'s statistics; Stage-II's runs on the frozen Stage-I's
        training-mode images, as in its train_step. Returns how many layers were set."""
        if not self.inputs:
            return 0
        batches = iter(self.inputs)
        forward = self._forward(generator, stage1_generator)
        return recalibrate_batch_norm(generator, lambda: forward(*next(batches)), len(self.inputs))

    def _forward(self, generator, stage1_generator):
        """One traced training-mode forward pass per generator (the sample sheets of a run
        call this every few hundred steps: eagerly, 20 batches took 1.3 s a sheet on the demo's
        Stage-I, a fifth of its training time)."""
        key = (id(generator), id(stage1_generator))
        if key not in self._compiled:
            # the entry keeps both models alive, so their ids cannot be reused by new ones
            models = (generator, stage1_generator)

            @tf.function
            def forward(embedding, noise, ca_noise, ca_noise_2):
                if stage1_generator is None:
                    generator([embedding, noise, ca_noise], training=True)
                else:
                    low = stage1_generator([embedding, noise, ca_noise], training=True)[0]
                    generator([low, embedding, ca_noise_2], training=True)

            self._compiled[key] = (forward, models)
        return self._compiled[key][0]


def embedding_batches(conditions, batch_size: int) -> list[np.ndarray]:
    """`conditions` f32[N, E] (`input_pipeline.training_conditions`) in batches of
    `batch_size`, as NumPy arrays; a last, smaller batch is dropped (its statistics would be
    noisier than a training batch's)."""
    conditions = np.asarray(conditions, np.float32)
    full = len(conditions) // batch_size
    return [conditions[i * batch_size : (i + 1) * batch_size] for i in range(full)]

"""Stage-II training: refine the frozen Stage-I generator's images to 4x the resolution."""

from __future__ import annotations

import keras
import tensorflow as tf

from stackgan.config import Config
from stackgan.models.batch_norm import set_batch_statistics_when_frozen
from stackgan.models.chain import generate_chain
from stackgan.training import losses
from stackgan.training.conditional_gan import ConditionalGAN


class StageIIGAN(ConditionalGAN):
    """`StageIIGAN(stage1_generator, generator, discriminator, config)`.

    Stage-I is frozen: it is set `trainable = False`, so it has no trainable variables here
    and no optimizer ever sees it. Its BatchNorm layers follow
    `config.model.frozen_stage1_batchnorm`:
    - "batch" (default, the official codes): normalise with the current batch's statistics,
      as Stage-I did while it trained; the moving averages are neither used nor updated.
    - "moving": Keras' inference mode, the moving averages Stage-I ended its training with.
    Either way every Stage-I weight, moving averages included, stays bit-identical.
    """

    def __init__(
        self,
        stage1_generator: keras.Model,
        generator: keras.Model,
        discriminator: keras.Model,
        config: Config,
        **kwargs,
    ):
        kwargs.setdefault("name", "stage2_gan")
        super().__init__(generator, discriminator, config, **kwargs)
        mode = config.model.frozen_stage1_batchnorm
        if mode not in ("batch", "moving"):
            raise ValueError(
                f"ModelConfig.frozen_stage1_batchnorm must be 'batch' or 'moving', got {mode!r}"
            )
        stage1_generator.trainable = False
        set_batch_statistics_when_frozen(stage1_generator, mode == "batch")
        self.stage1_generator = stage1_generator

    def generate_with_penalty(self, embedding, training: bool):
        embedding = tf.convert_to_tensor(embedding, tf.float32)
        batch = tf.shape(embedding)[0]
        model_cfg = self.config.model
        noise = self.per_sample_normal(batch, model_cfg.z_dim)
        stage1_eps = self.per_sample_normal(batch, model_cfg.ca_dim)
        # Stage-II has its own CA, hence its own eps (and its own KL term, returned here).
        ca_noise = self.per_sample_normal(batch, model_cfg.ca_dim)
        (low_res, _, _), (fake, mu, log_sigma) = generate_chain(
            self.stage1_generator,
            self.generator,
            embedding,
            noise,
            stage1_eps,
            ca_noise,
            training=training,
        )
        train_cfg = self.config.train
        if train_cfg.stage2_consistency_weight:
            consistency = losses.CONSISTENCY_LOSSES[train_cfg.stage2_consistency]
            penalty = train_cfg.stage2_consistency_weight * consistency(fake, low_res)
        else:
            penalty = tf.zeros([batch], tf.float32)
        return fake, mu, log_sigma, penalty

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

    def generate_with_penalty(self, embedding, training: bool, real_image=None):
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
        penalty = tf.zeros([batch], tf.float32)
        if train_cfg.stage2_consistency_weight:
            penalty += train_cfg.stage2_consistency_weight * self.consistency_error(fake, low_res)
        if train_cfg.stage2_reconstruction_weight and real_image is not None:
            penalty += train_cfg.stage2_reconstruction_weight * self.reconstruction_error(
                real_image, embedding, ca_noise, training
            )
        return fake, mu, log_sigma, penalty

    def consistency_error(self, image, stage1_image):
        """[B]: `train.stage2_consistency` between Stage-II's image and its Stage-I input; with
        `train.stage2_consistency_blur`, between the two blurred at Stage-I's size."""
        train_cfg = self.config.train
        blur = train_cfg.stage2_consistency_blur
        if blur:
            image = losses.gaussian_blur(losses.box_downscale(image, stage1_image.shape[1]), blur)
            stage1_image = losses.gaussian_blur(stage1_image, blur)
        return losses.CONSISTENCY_LOSSES[train_cfg.stage2_consistency](image, stage1_image)

    def reconstruction_error(self, real_image, embedding, ca_noise, training: bool):
        """[B]: mean |G(box-downscaled real image, text) - real image|, the super-resolution
        loss (`train.stage2_reconstruction_weight`). The adversarial loss alone must discover
        what a sharp 256 px bird looks like from D's gradients; on the real pairs G is told, and
        it learns the sharpening it then applies to Stage-I's images. With
        `train.stage2_reconstruction_blur` the downscaled image is blurred first, so G learns
        to sharpen a blur, which is what Stage-I's images are."""
        real_low = losses.gaussian_blur(
            losses.box_downscale(real_image, self.config.data.low_res),
            self.config.train.stage2_reconstruction_blur,
        )
        embedding, ca_noise = (tf.convert_to_tensor(x, tf.float32) for x in (embedding, ca_noise))
        rebuilt, _, _ = self.generator([real_low, embedding, ca_noise], training=training)
        return losses.mean_l1(rebuilt, real_image)

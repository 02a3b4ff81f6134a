"""What Stage-I and Stage-II training share: the matching-aware train_step (keras-io GAN idiom).

A stage is a `keras.Model` holding its networks, compiled with one optimizer per network, whose
`train_step` runs one discriminator update then one generator update on a batch of the input
pipeline: {"image": real f32[B,S,S,3], "wrong_image": real image of ANOTHER class, "embedding":
f32[B,E]}. Subclasses say how a fake image is generated (`generate`).

Randomness: z and eps are drawn per sample from `keras.random` with the model's SeedGenerator.
Under tf.distribute every replica draws the noise of the GLOBAL batch from the same seed state
and keeps its own slice, so N replicas see exactly the noise one device would see for the same
global batch: training results do not depend on the number of devices.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from stackgan.config import Config
from stackgan.tfrecords import batch_keys as keys
from stackgan.training import augment, distribute, losses
from stackgan.training.precision import for_precision

TRACKERS = ("d_loss", "g_loss", "kl", "g_penalty", "d_acc_real", "d_acc_wrong", "d_acc_fake")


class ConditionalGAN(keras.Model):
    """Base of StageIGAN / StageIIGAN; `generator` and `discriminator` are the trained pair."""

    def __init__(
        self, generator: keras.Model, discriminator: keras.Model, config: Config, **kwargs
    ):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.config = config
        self.seed_generator = keras.random.SeedGenerator(config.train.seed, name="noise_seed")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in TRACKERS}
        # only when used, so checkpoints of runs without it keep their layout
        self.augment_seed = None
        if config.train.d_augment != "none":
            self.augment_seed = keras.random.SeedGenerator(
                config.train.seed + 1, name="augment_seed"
            )
        # The networks arrive built; there is no call() to trace, and fit() under a
        # tf.distribute strategy would otherwise try to build the GAN by calling it.
        self.built = True

    def compile(
        self,
        d_optimizer: keras.optimizers.Optimizer,
        g_optimizer: keras.optimizers.Optimizer,
        **kwargs,
    ):
        """`jit_compile` defaults to `config.train.xla`; the optimizer of a network that computes
        in float16 (`train.precision`) is wrapped in a LossScaleOptimizer."""
        kwargs.setdefault("jit_compile", self.config.train.xla)
        super().compile(**kwargs)
        self.d_optimizer = for_precision(d_optimizer, self.discriminator)
        self.g_optimizer = for_precision(g_optimizer, self.generator)
        # Create the slots now (inside the caller's strategy scope), not inside a replica.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        # listed here so Keras resets them at each epoch
        return list(self.trackers.values())

    # --- what a stage defines -------------------------------------------------------------
    def generate(self, embedding: tf.Tensor, training: bool):
        """-> (fake image f32[B,S,S,3], mu, log_sigma) of the TRAINED generator's CA."""
        return self.generate_with_penalty(embedding, training)[:3]

    def generate_with_penalty(self, embedding: tf.Tensor, training: bool, real_image=None):
        """-> (fake, mu, log_sigma, penalty f32[B]): `penalty` is a per-example term the
        generator's loss adds (0 unless the stage defines one); `real_image`, the batch's real
        images, is given while training, for a stage whose penalty needs them."""
        raise NotImplementedError

    # --- shared machinery ------------------------------------------------------------------
    def per_sample_normal(self, batch_size: tf.Tensor, dim: int) -> tf.Tensor:
        """N(0, I) of shape [batch_size, dim], this replica's slice of the global batch's draw."""
        ctx = tf.distribute.get_replica_context()
        replicas = ctx.num_replicas_in_sync if ctx is not None else 1
        replica = ctx.replica_id_in_sync_group if ctx is not None else 0
        draw = keras.random.normal((batch_size * replicas, dim), seed=self.seed_generator)
        return draw[batch_size * replica : batch_size * (replica + 1)]

    def d_logits(self, image, embedding) -> tuple[tf.Tensor, tf.Tensor | None]:
        """(conditional logit, unconditional logit or None) of D on `image` after the
        configured augmentation (`train.d_augment`; every image D sees goes through here)."""
        image = augment.augment(image, self.config.train.d_augment, self.augment_seed)
        out = self.discriminator([image, embedding], training=True)
        if isinstance(out, (list, tuple)):
            return out[0], out[1]
        return out, None

    def d_logits_with_r1(self, image, embedding):
        """d_logits of the real/right pair, plus the R1 penalty [B] (Mescheder et al. 2018):
        gamma / 2 * |grad_image D(image, text)|^2 on real images, 0 when `train.r1_gamma` is 0.
        It keeps D flat around the real data, so G is not pushed by D's gradient noise.

        Lazily (StyleGAN2): only every `train.r1_every` D steps, scaled by `r1_every`, so the
        penalty keeps its average weight at a fraction of its cost (a second backward pass
        through D)."""
        real, real_u = self.d_logits(image, embedding)
        gamma, every = self.config.train.r1_gamma, self.config.train.r1_every
        none = tf.zeros_like(tf.reshape(tf.cast(real, tf.float32), [-1]))
        if not gamma:
            return real, real_u, none
        image = tf.convert_to_tensor(image)

        def penalty():
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(image)
                logits, _ = self.d_logits(image, embedding)
                total = tf.reduce_sum(tf.cast(logits, tf.float32))
            grad = tf.cast(tape.gradient(total, image), tf.float32)
            return 0.5 * gamma * every * tf.reduce_sum(tf.square(grad), axis=[1, 2, 3])

        if every <= 1:
            return real, real_u, penalty()
        due = tf.equal(self.d_optimizer.iterations % every, 0)
        if self.jit_compile or tf.distribute.has_strategy():
            # A cond cannot hold this penalty under XLA (tf2xla cannot differentiate a cond
            # that holds a GradientTape) nor under a distribution strategy (D's BatchNorm
            # updates its moving averages with a cross-replica merge_call, which a cond branch
            # may not make): there it is computed every step and kept on the due ones, the same
            # loss at the cost of the non-lazy R1.
            return real, real_u, tf.cast(due, tf.float32) * penalty()
        return real, real_u, tf.cond(due, penalty, lambda: none)

    @staticmethod
    def _with_uncond(term, logits, uncond) -> tf.Tensor:
        """[B] `term` of the conditional logit; with an unconditional one (PT) the mean of both.
        (PT: the wrong pair has no unconditional term, its image is real: `uncond` is None.)"""
        loss = term(logits)
        return loss if uncond is None else 0.5 * (loss + term(uncond))

    def d_pair_loss(self, logits, uncond, label: float) -> tf.Tensor:
        """[B] D's loss of one pair type under `train.gan_loss`."""
        kind = self.config.train.gan_loss
        return self._with_uncond(lambda x: losses.d_term(x, label, kind), logits, uncond)

    def g_adversarial_loss(self, logits, uncond) -> tf.Tensor:
        """[B] G's loss on its fakes as D scores them, under `train.gan_loss`."""
        kind = self.config.train.gan_loss
        return self._with_uncond(lambda x: losses.g_term(x, kind), logits, uncond)

    def train_step(self, batch):
        image, wrong_image = batch[keys.IMAGE], batch[keys.WRONG_IMAGE]
        embedding = batch[keys.EMBEDDING]
        kl_weight = self.config.train.kl_weight

        g_vars = self.generator.trainable_variables
        with tf.GradientTape(watch_accessed_variables=False) as g_tape:
            g_tape.watch([v.value for v in g_vars])  # Keras Variable -> its tf.Variable
            # Generate once: D's update sees the images without gradient, G's through the
            # freshly updated D (as the PyTorch code does).
            fake, mu, log_sigma, penalty = self.generate_with_penalty(
                embedding, training=True, real_image=image
            )

            # 1. Discriminator update: real/right -> 1, wrong (other class) and fake -> 0.
            d_vars = self.discriminator.trainable_variables
            with tf.GradientTape() as d_tape:
                real, real_u, r1 = self.d_logits_with_r1(image, embedding)
                wrong, _ = self.d_logits(wrong_image, embedding)
                fake_d, fake_u = self.d_logits(tf.stop_gradient(fake), embedding)
                d_per_example = self.d_pair_loss(real, real_u, 1.0) + 0.5 * (
                    self.d_pair_loss(wrong, None, 0.0) + self.d_pair_loss(fake_d, fake_u, 0.0)
                )
                d_loss = losses.average(d_per_example + r1)
                d_scaled = self._scale(self.d_optimizer, d_loss)
            d_grads = d_tape.gradient(d_scaled, d_vars)
            self.d_optimizer.apply_gradients(zip(d_grads, d_vars))

            # 2. Generator update: fake -> real, plus the CA KL term of this batch's samples.
            fake_g, fake_g_u = self.d_logits(fake, embedding)
            kl = losses.kl_divergence(mu, log_sigma)
            g_per_example = self.g_adversarial_loss(fake_g, fake_g_u) + kl_weight * kl + penalty
            g_loss = losses.average(g_per_example)
            g_scaled = self._scale(self.g_optimizer, g_loss)
        g_grads = g_tape.gradient(g_scaled, g_vars)
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars))

        # Trackers take per-example values, so their means are over the global batch.
        self.trackers["d_loss"].update_state(d_per_example)
        self.trackers["g_loss"].update_state(g_per_example)
        self.trackers["kl"].update_state(kl)
        self.trackers["g_penalty"].update_state(penalty)
        self.trackers["d_acc_real"].update_state(losses.correct_fraction(real, 1.0))
        self.trackers["d_acc_wrong"].update_state(losses.correct_fraction(wrong, 0.0))
        self.trackers["d_acc_fake"].update_state(losses.correct_fraction(fake_d, 0.0))
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if distribute.keras_reduces_logs_along_axis_0(self.distribute_strategy):
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    @staticmethod
    def _scale(optimizer, loss):
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer.scale_loss(loss)
        return loss

"""Adam in one fused TensorFlow op per variable (the GAN trainers and the classifier use it)."""

from __future__ import annotations

import keras
import tensorflow as tf


def _tf_handle(variable) -> tf.Tensor:
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose per-variable update is TF's one `ResourceApplyAdam` op.

    The arithmetic is Keras' (lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)), but
    Keras builds it from ~15 ops per variable, each a pass over the variable's memory:
    - the classifier: tracing and optimising that graph for MobileNetV2's 158 variables made the
      first training step take 10.7 s instead of 5.8 s on 2 CPU cores;
    - the GANs: those passes were 12.6 % of a paper Stage-I step's op time under bf16 on the
      2-core AMX Xeon; one op per variable made the step ~5 % faster (bench_train_step.py).
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)

        def cast(value):
            return tf.cast(value, dtype)

        tf.raw_ops.ResourceApplyAdam(
            var=_tf_handle(variable),
            m=_tf_handle(self._momentums[index]),
            v=_tf_handle(self._velocities[index]),
            beta1_power=tf.pow(cast(self.beta_1), step),
            beta2_power=tf.pow(cast(self.beta_2), step),
            lr=cast(learning_rate),
            beta1=cast(self.beta_1),
            beta2=cast(self.beta_2),
            epsilon=cast(self.epsilon),
            grad=cast(gradient),
        )

    def _update_model_variables_moving_average(self, trainable_variables):
        """The weights' moving average (`use_ema`) with a warm-up, as TensorFlow's
        `tf.train.ExponentialMovingAverage(num_updates=t)` has: after the update of step t
        (0-based) the average moves with momentum min(ema_momentum, (1 + t) / (10 + t)), and
        takes the weights themselves at t = 0 (where Keras also starts it). Keras' own average
        uses ema_momentum from t = 1, so a short run's average keeps its first, untrained
        weights: at 0.995 over the demo's 300 Stage-II steps, 0.995^299 = 22 % of it. With the
        warm-up it averages about the last ninth of the steps so far (momentum 0.971 at step
        300) until (1 + t) / (10 + t) passes ema_momentum (at 0.995: step 1,791); from there on
        it is Keras' average."""
        if not self.use_ema:
            return
        step = tf.cast(self.iterations, tf.float32)
        momentum = tf.where(
            step > 0, tf.minimum(float(self.ema_momentum), (1.0 + step) / (10.0 + step)), 0.0
        )
        for variable, average in zip(
            trainable_variables, self._model_variables_moving_average, strict=True
        ):
            if average is not None:
                m = tf.cast(momentum, variable.dtype)
                average.assign(m * average + (1.0 - m) * variable)

"""Mixed precision and XLA, as TrainConfig options (off by default; meant for GPUs).

With `mixed_precision` the networks compute in float16 with float32 variables (Keras'
"mixed_float16" policy, passed to the model builders) and the optimizers scale the loss
dynamically (LossScaleOptimizer) so small float16 gradients do not underflow. Images, logits,
mu and log_sigma stay float32 (the builders pin those layers). `xla` compiles train_step with
XLA (`jit_compile`).
"""

from __future__ import annotations

import keras

from stackgan.config import TrainConfig


def dtype_policy(train_cfg: TrainConfig) -> str:
    """The `dtype_policy` to pass to `stackgan.models.build_*`."""
    return "mixed_float16" if train_cfg.mixed_precision else "float32"


def for_precision(optimizer: keras.optimizers.Optimizer, train_cfg: TrainConfig):
    """The optimizer, wrapped in a dynamic LossScaleOptimizer under mixed precision."""
    if train_cfg.mixed_precision and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_scaled")
    return optimizer

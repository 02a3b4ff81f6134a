"""Training of the two StackGAN stages (keras.Model per stage, custom train_step)."""

from stackgan.training.conditional_gan import TRACKERS, ConditionalGAN
from stackgan.training.lr_schedule import make_optimizers, step_decay
from stackgan.training.precision import dtype_policy, for_precision
from stackgan.training.stage1_gan import StageIGAN
from stackgan.training.stage2_gan import StageIIGAN

__all__ = [
    "TRACKERS",
    "ConditionalGAN",
    "StageIGAN",
    "StageIIGAN",
    "dtype_policy",
    "for_precision",
    "make_optimizers",
    "step_decay",
]

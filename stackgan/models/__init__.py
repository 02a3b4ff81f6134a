"""StackGAN networks as functional Keras models with explicit noise inputs (docs/ARCHITECTURE.md)."""

from stackgan.models.batch_norm import FreezableBatchNorm, set_batch_statistics_when_frozen
from stackgan.models.conditioning import ConditioningAugmentation
from stackgan.models.stage1 import build_stage1_discriminator, build_stage1_generator
from stackgan.models.stage2 import build_stage2_discriminator, build_stage2_generator

__all__ = [
    "ConditioningAugmentation",
    "FreezableBatchNorm",
    "build_stage1_discriminator",
    "build_stage1_generator",
    "build_stage2_discriminator",
    "build_stage2_generator",
    "set_batch_statistics_when_frozen",
]

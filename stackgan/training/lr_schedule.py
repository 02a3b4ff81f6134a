"""Adam with the step-decayed learning rate of the official codes.

TF halves the learning rate every `lr_decay_epochs` epochs (50; the paper says 100). The Keras
ports declare a decay and never apply it; here the decay is a LearningRateSchedule evaluated at
the optimizer's own iteration counter, so it applies whatever loop drives the optimizer.
"""

from __future__ import annotations

import keras

from stackgan.config import TrainConfig
from stackgan.stages import get_stage
from stackgan.training.fused_adam import FusedAdam


def step_decay(
    train_cfg: TrainConfig, steps_per_epoch: int, initial: float | None = None
) -> keras.optimizers.schedules.ExponentialDecay:
    """lr(step) = initial * lr_decay_factor ** floor(step / (lr_decay_epochs * steps_per_epoch));
    `initial` defaults to `learning_rate`."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    if train_cfg.lr_decay_epochs < 1:
        raise ValueError(
            f"TrainConfig.lr_decay_epochs must be >= 1, got {train_cfg.lr_decay_epochs}"
        )
    return keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=train_cfg.learning_rate if initial is None else initial,
        decay_steps=train_cfg.lr_decay_epochs * steps_per_epoch,
        decay_rate=train_cfg.lr_decay_factor,
        staircase=True,
    )


def make_optimizers(
    train_cfg: TrainConfig, steps_per_epoch: int, stage: int = 1
) -> tuple[keras.optimizers.Adam, keras.optimizers.Adam]:
    """(d_optimizer, g_optimizer): Adam(lr schedule, beta_1), one each, as both codes; each
    variable's update in one op (fused_adam.py). With `train.generator_ema` the generator's
    Adam also keeps the moving average of its weights (generator_average.py); with
    `train.d_learning_rate` D starts from its own rate (TTUR); G from its `stage`'s rate
    (`Stage.g_learning_rate`: Stage-II's `train.stage2_learning_rate` when set)."""
    average = {"use_ema": True, "ema_momentum": train_cfg.generator_ema}
    initial = {
        "d": train_cfg.d_learning_rate or train_cfg.learning_rate,
        "g": get_stage(stage).g_learning_rate(train_cfg),
    }
    return tuple(
        FusedAdam(
            learning_rate=step_decay(train_cfg, steps_per_epoch, initial[who]),
            beta_1=train_cfg.beta_1,
            name=f"{who}_adam",
            **(average if who == "g" and train_cfg.generator_ema > 0 else {}),
        )
        for who in ("d", "g")
    )

"""1x1 stride-1 convolutions as a matmul over the channels (`PointwiseConv2D`) against Keras'
`Conv2D` with the same weights, in one run on one machine.

    .venv/bin/python bench/bench_pointwise_conv.py                          # layers + demo Stage-II
    .venv/bin/python bench/bench_pointwise_conv.py --profile paper --stage 2 --batch 16

1. Every 1x1 conv of the demo and paper profiles' networks (found by building them), forward
   and backward (input and kernel gradients) as a train step runs them, at each profile's batch
   for that stage: milliseconds per call of both forms, best of `--repeats`, and their ratio.
   First it checks that both give the same output and gradients.
2. Whole training iterations of `--profile` (default demo, Stage-II at its batch): the networks
   as the profile builds them, and built with Keras' `Conv2D` in place of every
   `PointwiseConv2D`, timed in alternating rounds so both see the same machine load; best and
   median s/iteration and the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from unittest import mock

import ab_timing
from bench_train_step import _build, _hardware, add_setting_arguments, make_batch, settings

BUILDERS = ("stage1_generator", "stage1_discriminator", "stage2_generator", "stage2_discriminator")


def _parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setting_arguments(p)
    p.set_defaults(profile="demo")
    ab_timing.add_ab_arguments(p)
    return p.parse_args()


def pointwise_layers(cfg) -> list[tuple[str, int, tuple, int]]:
    """(what, batch, input shape [H, W, C], filters) of every distinct 1x1 conv of a profile."""
    from stackgan import models
    from stackgan.models.pointwise_conv import PointwiseConv2D
    from stackgan.stages import get_stage

    m, low, high = cfg.model, cfg.data.low_res, cfg.data.high_res
    found = {}
    for builder in BUILDERS:
        size = high if builder == "stage2_discriminator" else low
        batch = get_stage(1 if builder.startswith("stage1") else 2).batch_size(cfg.train)
        network = getattr(models, f"build_{builder}")(m, size)
        for layer in network.layers:
            if isinstance(layer, PointwiseConv2D):
                shape = tuple(layer.input.shape[1:])
                key = (batch, shape, layer.filters)
                found.setdefault(key, f"{cfg.profile} {builder} {layer.name}")
    return [(what, *key) for key, what in found.items()]


def layer_pair(batch: int, shape: tuple, filters: int):
    """(input, {form: fn(x) -> [dx, dkernel, y]}) for one layer shape, one shared kernel."""
    import keras
    import numpy as np
    import tensorflow as tf

    from stackgan.models.pointwise_conv import PointwiseConv2D

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, *shape)), tf.float32)
    conv = keras.layers.Conv2D(filters, 1, use_bias=False)
    ours = PointwiseConv2D(filters, 1, use_bias=False)
    for layer in (conv, ours):
        layer.build(x.shape)
    ours.kernel.assign(conv.kernel)

    return x, {
        "Conv2D": ab_timing.grads_fn(conv, conv.kernel),
        "matmul": ab_timing.grads_fn(ours, ours.kernel),
    }


def bench_layers(repeats: int) -> None:
    from stackgan import config as config_lib

    print(f"{'layer':48s} batch  input           filters   Conv2D      matmul    ratio")
    for profile in ("demo", "paper"):
        for what, batch, shape, filters in pointwise_layers(config_lib.get_profile(profile)):
            x, forms = layer_pair(batch, shape, filters)
            ab_timing.check_same(what, forms, x)
            times = [ab_timing.best_ms(f, x, repeats) for f in forms.values()]
            print(
                f"{what:48s} {batch:5d}  {'x'.join(map(str, shape)):14s} {filters:7d}"
                f"  {times[0]:8.1f} ms {times[1]:8.1f} ms  {times[0] / times[1]:5.2f}"
            )


def bench_steps(cfg, stage: int, batch_size: int, rounds: int, steps: int) -> None:
    import keras

    def build(form):
        with contextlib.ExitStack() as patches:
            if form == "Conv2D":  # blocks.conv, which builds every 1x1 conv, gets Keras' layer
                target = "stackgan.models.blocks.PointwiseConv2D"
                patches.enter_context(mock.patch(target, keras.layers.Conv2D))
            gan, size = _build(cfg, stage)
        layers = [
            type(layer).__name__
            for net in (gan.generator, gan.discriminator)
            for layer in net.layers
        ]
        assert ("PointwiseConv2D" in layers) == (form == "matmul"), form
        return gan, make_batch(cfg, size, batch_size)

    ab_timing.compare_iterations(
        cfg,
        stage,
        batch_size,
        {
            "1x1 convs as Conv2D": lambda: build("Conv2D"),
            "1x1 convs as matmuls": lambda: build("matmul"),
        },
        rounds,
        steps,
    )


def main():
    args = _parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from stackgan import config as config_lib

    print(f"hardware: {_hardware()}; load average {os.getloadavg()[0]:.1f}")
    if not args.skip_layers:
        bench_layers(args.repeats)
    from stackgan.stages import get_stage

    cfg = config_lib.get_profile(args.profile)
    default_batch = get_stage(2).batch_size(cfg.train)
    for stage, batch_size in settings(args.stage or [2], args.batch or [default_batch]):
        bench_steps(cfg, stage, batch_size, args.rounds, args.steps)


if __name__ == "__main__":
    main()

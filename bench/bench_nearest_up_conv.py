"""Nearest x2 + 3x3 conv computed at the input's resolution (`NearestUpConv2D`) against the two
layers it replaces (`UpSampling2D` then `Conv2D`), in one run on one machine.

    .venv/bin/python bench/bench_nearest_up_conv.py                       # layers + demo steps
    .venv/bin/python bench/bench_nearest_up_conv.py --profile paper --stage 1 --batch 64

1. Every generator layer of that kind in the demo and paper profiles (Stage-I's up-blocks and
   RGB conv; the paper Stage-II's), forward and backward (input and kernel gradients) as a
   train step runs them, at each profile's batch: milliseconds per call of both forms, best of
   `--repeats`, and their ratio. First it checks that both give the same output and gradients.
2. Whole training iterations of `--profile` (default demo, Stage-I at batch 16): the networks
   built as the profile builds them (up to `model.upsample_conv_max_filters` output channels
   at the input's resolution) and built with every upsampling as two layers, timed in alternating
   rounds so both see the same machine load; best and median s/iteration and the ratio.
"""

from __future__ import annotations

import argparse
import os

import ab_timing
from bench_train_step import _build, _hardware, add_setting_arguments, make_batch, settings

# (what, batch, input size, input channels, output channels) of the generators' upsampling convs
LAYERS = (
    ("demo Stage-I up8", 16, 4, 64, 32),
    ("demo Stage-I up16", 16, 8, 32, 16),
    ("demo Stage-I up32", 16, 16, 16, 8),
    ("demo Stage-I to RGB 64", 16, 32, 8, 3),
    ("demo Stage-II up32", 4, 16, 32, 16),
    ("demo Stage-II up64", 4, 32, 16, 8),
    ("paper Stage-I up8", 64, 4, 1024, 512),
    ("paper Stage-I up16", 64, 8, 512, 256),
    ("paper Stage-I up32", 64, 16, 256, 128),
    ("paper Stage-I to RGB 64", 64, 32, 128, 3),
    ("paper Stage-II up32", 16, 16, 512, 256),
    ("paper Stage-II up64", 16, 32, 256, 128),
    ("paper Stage-II up128", 16, 64, 128, 64),
    ("paper Stage-II up256", 16, 128, 64, 32),
)


def _parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setting_arguments(p)
    p.set_defaults(profile="demo")
    ab_timing.add_ab_arguments(p)
    p.add_argument("--threads", type=int, default=0, help="TF threads (0 = TF default)")
    return p.parse_args()


def layer_pair(batch: int, size: int, cin: int, cout: int):
    """(input, {form: fn(x) -> [dx, dkernel, y]}) for one layer shape, one shared kernel."""
    import keras
    import tensorflow as tf

    from stackgan.models.nearest_up_conv import NearestUpConv2D

    x = tf.random.normal([batch, size, size, cin])
    phased = NearestUpConv2D(cout, use_bias=False)
    phased.build(x.shape)
    two = keras.Sequential(
        [
            keras.layers.UpSampling2D(2, interpolation="nearest"),
            keras.layers.Conv2D(cout, 3, padding="same", use_bias=False),
        ]
    )
    two.build(x.shape)
    two.layers[1].kernel.assign(phased.kernel)

    return x, {
        "two layers": ab_timing.grads_fn(two, two.layers[1].kernel),
        "at input res": ab_timing.grads_fn(phased, phased.kernel),
    }


def bench_layers(repeats: int) -> None:
    print(
        "layer                        batch  in px  C_in -> C_out   two layers  at input res  ratio"
    )
    for what, batch, size, cin, cout in LAYERS:
        x, forms = layer_pair(batch, size, cin, cout)
        ab_timing.check_same(what, forms, x)
        big = batch * size * size * cin * cout > 2e8
        times = [
            ab_timing.best_ms(f, x, max(2, repeats // 4) if big else repeats)
            for f in forms.values()
        ]
        print(
            f"{what:28s} {batch:5d} {size:6d}  {cin:4d} -> {cout:4d}  {times[0]:9.1f} ms"
            f"  {times[1]:9.1f} ms  {times[0] / times[1]:5.2f}"
        )


def bench_steps(cfg, stage: int, batch_size: int, rounds: int, steps: int) -> None:
    default = cfg.model.upsample_conv_max_filters

    def build(max_filters):
        gan, size = _build(cfg.replace(model={"upsample_conv_max_filters": max_filters}), stage)
        return gan, make_batch(cfg, size, batch_size)

    ab_timing.compare_iterations(
        cfg,
        stage,
        batch_size,
        {
            "two layers": lambda: build(0),
            f"at input res up to {default} out": lambda: build(default),
        },
        rounds,
        steps,
    )


def main():
    args = _parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from stackgan import config as config_lib

    print(f"hardware: {_hardware()}; load average {os.getloadavg()[0]:.1f}")
    if not args.skip_layers:
        bench_layers(args.repeats)
    cfg = config_lib.get_profile(args.profile)
    for stage, batch_size in settings(args.stage or [1], args.batch or [cfg.train.batch_size]):
        bench_steps(cfg, stage, batch_size, args.rounds, args.steps)


if __name__ == "__main__":
    main()

"""What padding the generators' convolutions with their border costs (`model.generator_padding`
replicate against zeros), in one run on one machine.

    .venv/bin/python bench/bench_generator_padding.py                       # demo, both stages
    .venv/bin/python bench/bench_generator_padding.py --profile paper --stage 1 --batch 64

Whole training iterations of `--profile` (default demo, each stage at its batch), built once
with each padding, timed in alternating rounds so both see the same machine load: best and
median s/iteration and the ratio. Replicate padding copies each padded map once before its
conv (an `EdgePadding2D` layer; inside `NearestUpConv2D`, a pad of its input); zero padding is
part of the conv.
"""

from __future__ import annotations

import argparse
import os

import ab_timing
from bench_train_step import _build, _hardware, add_setting_arguments, make_batch


def _parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setting_arguments(p)
    p.set_defaults(profile="demo")
    ab_timing.add_ab_arguments(p)
    return p.parse_args()


def bench_steps(cfg, stage: int, batch_size: int, rounds: int, steps: int) -> None:
    def build(padding):
        padded = cfg.replace(model={"generator_padding": padding})
        gan, size = _build(padded, stage)
        names = [type(layer).__name__ for layer in gan.generator.layers]
        assert ("EdgePadding2D" in names) == (padding == "replicate"), padding
        return gan, make_batch(padded, size, batch_size)

    ab_timing.compare_iterations(
        cfg,
        stage,
        batch_size,
        {"zero padding": lambda: build("zeros"), "replicate padding": lambda: build("replicate")},
        rounds,
        steps,
    )


def main():
    args = _parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from stackgan import config as config_lib
    from stackgan.stages import get_stage

    print(f"hardware: {_hardware()}; load average {os.getloadavg()[0]:.1f}")
    cfg = config_lib.get_profile(args.profile)
    for stage in args.stage or [1, 2]:
        for batch_size in args.batch or [get_stage(stage).batch_size(cfg.train)]:
            bench_steps(cfg, stage, batch_size, args.rounds, args.steps)


if __name__ == "__main__":
    main()

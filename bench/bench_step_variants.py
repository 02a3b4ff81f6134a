"""What config variants cost per training iteration, in one run on one machine.

    .venv/bin/python bench/bench_step_variants.py \
        --variant "affine=model.generator_text_fusion=affine" \
        --variant "affine, D 16=model.generator_text_fusion=affine,model.df_dim=16"

Whole training iterations (one D and one G update) of `--profile` (default demo) as it is, then
of each `--variant` (a name, '=', config overrides separated by commas), for `--stage` (default
1) at the stage's batch, timed in alternating rounds so all see the same machine load: best and
median s/iteration, and each one's median over the profile's. A variant that costs r times the
profile's iteration fits the profile's training time in 1/r of its steps.
"""

from __future__ import annotations

import argparse
import os
import statistics

import ab_timing
from bench_train_step import _build, _hardware, add_setting_arguments, make_batch


def _parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setting_arguments(p)
    p.set_defaults(profile="demo")
    ab_timing.add_ab_arguments(p)
    p.add_argument(
        "--set", action="append", default=[], help="config override of every build, S.F=V"
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=OVERRIDE,...",
        help="a variant: its name, '=', and config overrides separated by commas (repeatable)",
    )
    return p.parse_args()


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, overrides = text.partition("=")
    if not name or not overrides:
        raise SystemExit(f"--variant {text!r}: write NAME=section.field=value[,...]")
    return name, overrides.split(",")


def main():
    args = _parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from stackgan import config as config_lib
    from stackgan.stages import get_stage

    base = config_lib.get_profile(args.profile).with_overrides(args.set)
    variants = {f"{args.profile} profile": base}
    for text in args.variant:
        name, overrides = parse_variant(text)
        variants[name] = base.with_overrides(overrides)
    print(f"hardware: {_hardware()}; load average {os.getloadavg()[0]:.1f}")
    for stage in args.stage or [1]:
        for batch_size in args.batch or [get_stage(stage).batch_size(base.train)]:
            runs = {}
            for name, cfg in variants.items():
                gan, size = _build(cfg, stage)
                runs[name] = (tf.function(gan.train_step), make_batch(cfg, size, batch_size))
            times = ab_timing.alternate_steps(runs, args.rounds, args.steps)
            reference = statistics.median(next(iter(times.values())))
            print(f"\n{args.profile} Stage-{'I' * stage} iteration, batch {batch_size}, float32:")
            for name, seconds in times.items():
                median = statistics.median(seconds)
                print(
                    f"  {name:32s} best {min(seconds):.4f} s  median {median:.4f} s"
                    f"  ({median / reference:.2f}x; {len(seconds)} iterations)"
                )


if __name__ == "__main__":
    main()

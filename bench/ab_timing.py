"""A/B timing shared by the benches that compare two ways of computing the same layer
(`bench_nearest_up_conv.py`, `bench_pointwise_conv.py`): one layer's forward and both gradients,
and whole training iterations of two builds in alternating rounds, so both see the same load."""

from __future__ import annotations

import argparse
import statistics
import time


def add_ab_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repeats", type=int, default=10, help="timed calls per layer and form")
    p.add_argument("--rounds", type=int, default=6, help="alternating rounds of whole steps")
    p.add_argument("--steps", type=int, default=10, help="iterations per round")
    p.add_argument("--skip-layers", action="store_true", help="only the whole iterations")


def grads_fn(layer, kernel):
    """A traced x -> [input gradient, kernel gradient, output] of `layer`, as a train step runs
    it (the loss is the output's sum of squares)."""
    import tensorflow as tf

    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        return [*tape.gradient(loss, [x, kernel]), y]

    return tf.function(run)


def check_same(what: str, forms: dict, x) -> None:
    """Exits naming the quantity if the forms' [input gradient, kernel gradient, output]
    differ by more than 1e-4 of its largest value."""
    import numpy as np

    a, b = (f(x) for f in forms.values())
    for name, u, v in zip(("input gradient", "kernel gradient", "output"), a, b):
        scale = float(np.abs(u).max()) or 1.0
        if float(np.abs(u - v).max()) > 1e-4 * scale:
            raise SystemExit(f"{what}: the two forms' {name}s differ")


def best_ms(fn, x, repeats: int) -> float:
    fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)[0].numpy()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def alternate_steps(runs: dict, rounds: int, steps: int) -> dict[str, list[float]]:
    """{form: (traced train step, batch)} -> {form: seconds of each iteration}, the forms taking
    turns, `steps` iterations each per round (after two untimed ones)."""
    for step, batch in runs.values():
        for _ in range(2):
            float(step(batch)["d_loss"])
    times = {form: [] for form in runs}
    for _ in range(rounds):
        for form, (step, batch) in runs.items():
            for _ in range(steps):
                start = time.perf_counter()
                float(step(batch)["d_loss"])
                times[form].append(time.perf_counter() - start)
    return times


def compare_iterations(cfg, stage: int, batch_size: int, builds: dict, rounds: int, steps: int):
    """{label: () -> (gan, batch)}: two float32 builds of `cfg`'s Stage-`stage` at `batch_size`,
    the first the "before"; both traced train steps timed in alternating rounds, then
    `print_iterations`."""
    import tensorflow as tf

    title = f"{cfg.profile} Stage-{'I' * stage} iteration, batch {batch_size}, float32"

    runs = {}
    for label, build in builds.items():
        gan, batch = build()
        runs[label] = (tf.function(gan.train_step), batch)
    before, after = alternate_steps(runs, rounds, steps).items()
    print_iterations(title, before, after)


def print_iterations(title: str, before: tuple[str, list], after: tuple[str, list]) -> None:
    """Best and median s/iteration of both forms and the ratio before / after."""
    print(f"\n{title}:")
    for form, times in (before, after):
        print(
            f"  {form:28s} best {min(times):.4f} s  median {statistics.median(times):.4f} s"
            f"  ({len(times)} iterations)"
        )
    (b_name, b), (a_name, a) = before, after
    print(
        f"  ratio {b_name} / {a_name}: best {min(b) / min(a):.2f}x, "
        f"median {statistics.median(b) / statistics.median(a):.2f}x"
    )

"""Throughput of one full StackGAN training iteration (one D update + one G update).

    .venv/bin/python bench/bench_train_step.py                 # paper profile, the 3 settings
    .venv/bin/python bench/bench_train_step.py --stage 2 --batch 16 --steps 2 --threads 2

For each (stage, batch) it builds the paper-profile networks, compiles the GAN's train_step as
Keras' fit does (tf.function), runs `--warmup` untimed iterations (tracing, allocation) and
`--steps` timed ones, and prints images/s. FLOPs per iteration are counted by TensorFlow's
graph profiler on the traced train_step (forward, backward and optimizer ops of the whole
iteration, with static shapes); achieved GFLOP/s = FLOPs / seconds per iteration. Stage-II's
iteration includes the frozen Stage-I forward pass that produces its input.
"""

from __future__ import annotations

import argparse
import os
import platform
import time


def _parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper", help="config profile (tiny, demo, paper)")
    p.add_argument(
        "--stage",
        type=int,
        choices=(1, 2),
        action="append",
        help="stage(s) to run; default: the 3 settings below",
    )
    p.add_argument("--batch", type=int, action="append", help="batch size(s)")
    p.add_argument("--steps", type=int, default=3, help="timed iterations per setting")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations per setting")
    p.add_argument(
        "--threads", type=int, default=2, help="TF intra/inter-op threads (0 = TF default)"
    )
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--xla", action="store_true")
    p.add_argument(
        "--set", action="append", default=[], help="config override, section.field=value"
    )
    return p.parse_args()


def _settings(args) -> list[tuple[int, int]]:
    if not args.stage and not args.batch:
        return [(1, 64), (2, 16), (2, 64)]
    return [(s, b) for s in (args.stage or [1, 2]) for b in (args.batch or [64])]


def _hardware() -> str:
    import tensorflow as tf

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = f"{names[0]} x {len(names)} logical cores" if names else cpu
    except OSError:
        pass
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return f"{cpu}; GPUs: {gpus or 'none'}; TensorFlow {tf.__version__}"


def _build(cfg, stage: int):
    from stackgan import models, training

    policy = training.dtype_policy(cfg.train)
    m, low, high = cfg.model, cfg.data.low_res, cfg.data.high_res
    if stage == 1:
        gan = training.StageIGAN(
            models.build_stage1_generator(m, low, dtype_policy=policy),
            models.build_stage1_discriminator(m, low, dtype_policy=policy),
            cfg,
        )
        size = low
    else:
        gan = training.StageIIGAN(
            models.build_stage1_generator(m, low, dtype_policy=policy),
            models.build_stage2_generator(m, low, dtype_policy=policy),
            models.build_stage2_discriminator(m, high, dtype_policy=policy),
            cfg,
        )
        size = high
    gan.compile(*training.make_optimizers(cfg.train, steps_per_epoch=1000))
    return gan, size


def _flops(step_fn, batch) -> float:
    """Float operations of the traced iteration, from TF's graph profiler (static shapes)."""
    import tensorflow as tf

    graph = step_fn.get_concrete_function(batch).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return float(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


def run_setting(cfg, stage: int, batch_size: int, steps: int, warmup: int) -> dict:
    import numpy as np
    import tensorflow as tf

    gan, size = _build(cfg, stage)
    rng = np.random.default_rng(0)
    batch = {
        "image": tf.constant(rng.uniform(-1, 1, (batch_size, size, size, 3)), tf.float32),
        "wrong_image": tf.constant(rng.uniform(-1, 1, (batch_size, size, size, 3)), tf.float32),
        "embedding": tf.constant(
            rng.normal(size=(batch_size, cfg.model.embedding_dim)), tf.float32
        ),
    }
    step_fn = tf.function(gan.train_step, jit_compile=cfg.train.xla)
    flops = _flops(step_fn, batch)
    for _ in range(warmup):
        logs = step_fn(batch)
    float(logs["d_loss"])  # wait for the device
    start = time.perf_counter()
    for _ in range(steps):
        logs = step_fn(batch)
    float(logs["d_loss"])
    seconds = (time.perf_counter() - start) / steps
    return {
        "stage": stage,
        "batch": batch_size,
        "resolution": size,
        "s_per_iter": seconds,
        "images_per_s": batch_size / seconds,
        "gflop_per_iter": flops / 1e9,
        "gflop_per_s": flops / 1e9 / seconds,
    }


def main():
    args = _parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # the v1 profiler API prints a deprecation notice
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from stackgan import config as config_lib

    cfg = (
        config_lib.get_profile(args.profile)
        .replace(train={"mixed_precision": args.mixed_precision, "xla": args.xla})
        .with_overrides(args.set)
    )
    print(f"hardware: {_hardware()}")
    print(
        f"profile={args.profile} threads={args.threads or 'default'} "
        f"mixed_precision={args.mixed_precision} xla={args.xla} "
        f"warmup={args.warmup} timed_steps={args.steps} overrides={args.set}"
    )
    print("stage batch  res  s/iter  images/s  GFLOP/iter  GFLOP/s")
    for stage, batch_size in _settings(args):
        r = run_setting(cfg, stage, batch_size, args.steps, args.warmup)
        print(
            f"{r['stage']:>5} {r['batch']:>5} {r['resolution']:>4} {r['s_per_iter']:>7.2f} "
            f"{r['images_per_s']:>9.2f} {r['gflop_per_iter']:>11.1f} {r['gflop_per_s']:>8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

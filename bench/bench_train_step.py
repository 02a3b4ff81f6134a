"""Throughput of one full StackGAN training iteration (one D update + one G update), for every
precision, beside this machine's matmul rate in that precision.

    .venv/bin/python bench/bench_train_step.py                 # paper profile, every precision
    .venv/bin/python bench/bench_train_step.py --precision bfloat16 --stage 1 --batch 64

For each precision (default: float32, bfloat16, and float16 where there is a GPU: a CPU
refuses it, see stackgan/training/precision.py) it measures the peak: the best rate of a
2048x2048 matmul in that dtype, in TensorFlow, on the same threads, before and after the steps. Then for each (stage,
batch) it builds the paper-profile networks under that precision's Keras policy, compiles
the GAN's train_step as Keras' fit does (tf.function), runs `--warmup` untimed iterations
(tracing, allocation) and `--steps` timed ones, and prints images/s of the best and of the mean
step (on a shared machine the best is the one least disturbed, as the best matmul is; % of
peak uses the best). FLOPs per iteration are
counted by TensorFlow's graph profiler on the float32 traced train_step (forward, backward and
optimizer ops, static shapes; the same arithmetic in every precision); achieved GFLOP/s =
FLOPs / seconds per iteration, and % of peak = that / the matmul rate of the same precision on
the same machine in the same run. "per CPU-s" compares the same two per second of this
process's CPU time instead: on a machine shared with other jobs the cores this process gets
come and go, which moves wall-clock rates by 2x from one second to the next but CPU-time rates
much less (threads that spin while waiting count as busy, so it errs low). Stage-II's iteration includes the frozen Stage-I forward pass
that produces its input.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

PRECISIONS = ("float32", "bfloat16", "float16")
CUB_TRAIN_IMAGES = 8855  # StackGAN's CUB training split (150 classes): one epoch's images
MATMUL_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def add_setting_arguments(p: argparse.ArgumentParser) -> None:
    """--profile, --stage and --batch, as the benches that time training steps take them."""
    p.add_argument("--profile", default="paper", help="config profile (tiny, demo, paper)")
    p.add_argument(
        "--stage",
        type=int,
        choices=(1, 2),
        action="append",
        help="stage(s) to run; default: Stage-I at batch 64 and Stage-II at batch 16",
    )
    p.add_argument("--batch", type=int, action="append", help="batch size(s)")


def _parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setting_arguments(p)
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        action="append",
        help="precision(s); default: float32, bfloat16, and float16 when there is a GPU",
    )
    p.add_argument("--steps", type=int, default=5, help="timed iterations per setting")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations per setting")
    p.add_argument(
        "--threads", type=int, default=2, help="TF intra/inter-op threads (0 = TF default)"
    )
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n peak matmul")
    p.add_argument("--xla", action="store_true")
    p.add_argument(
        "--set", action="append", default=[], help="config override, section.field=value"
    )
    return p.parse_args()


def settings(stages: list[int] | None, batches: list[int] | None) -> list[tuple[int, int]]:
    """(stage, batch) pairs to run: every stage with every batch; by default Stage-I at 64 and
    Stage-II at 16."""
    if not stages and not batches:
        return [(1, 64), (2, 16)]
    return [(s, b) for s in (stages or [1, 2]) for b in (batches or [64])]


def cpu_model() -> str:
    """The CPU's model name and its logical core count, from /proc/cpuinfo."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = f"{names[0]} x {len(names)} logical cores" if names else cpu
    except OSError:
        pass
    return cpu


def _hardware() -> str:
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return f"{cpu_model()}; GPUs: {gpus or 'none'}; TensorFlow {tf.__version__}"


def best_rate(run, flop: float, seconds: float = 2.0) -> tuple[float, float]:
    """(best GFLOP/s, best GFLOP per CPU-second of this process) of `run()`, which does `flop`
    float operations and returns when they are done, over ~`seconds` of repeats after one
    warm-up call."""
    run()
    best, best_cpu, spent = 0.0, 0.0, 0.0
    while spent < seconds:
        start, cpu = time.perf_counter(), time.process_time()
        run()
        elapsed, cpu_elapsed = time.perf_counter() - start, time.process_time() - cpu
        spent += elapsed
        best = max(best, flop / elapsed / 1e9)
        best_cpu = max(best_cpu, flop / max(cpu_elapsed, 1e-9) / 1e9)
    return best, best_cpu


MATMUL_CHAIN = 8  # chained products per timed call, so Python's overhead is negligible


def matmul_gflops(dtype: str, n: int, seconds: float = 2.0) -> tuple[float, float]:
    """(best GFLOP/s, best GFLOP per CPU-second of this process) of an n x n x n matmul in
    `dtype` over ~`seconds` of repeats (2 n^3 flops each), after a warm-up."""
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=tf.float32)
    b = tf.random.normal((n, n), dtype=tf.float32) / n**0.5
    a, b = tf.cast(a, dtype), tf.cast(b, dtype)

    @tf.function
    def products(x, y):
        for _ in range(MATMUL_CHAIN):
            x = tf.matmul(x, y)
        return x

    return best_rate(lambda: products(a, b).numpy(), MATMUL_CHAIN * 2 * n**3, seconds)


def _build(cfg, stage: int, policy: str = "float32"):
    from stackgan import models, training

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
    gan.compile(*training.make_optimizers(cfg.train, steps_per_epoch=1000, stage=stage))
    return gan, size


def make_batch(cfg, size: int, batch_size: int):
    """A fixed batch as the input pipeline gives it: NHWC images in [-1, 1], embeddings."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    return {
        "image": tf.constant(rng.uniform(-1, 1, (batch_size, size, size, 3)), tf.float32),
        "wrong_image": tf.constant(rng.uniform(-1, 1, (batch_size, size, size, 3)), tf.float32),
        "embedding": tf.constant(
            rng.normal(size=(batch_size, cfg.model.embedding_dim)), tf.float32
        ),
    }


def train_step_graph(cfg, stage: int, batch_size: int):
    """The traced float32 train_step of (stage, batch_size), static shapes."""
    import tensorflow as tf

    gan, size = _build(cfg, stage)
    step_fn = tf.function(gan.train_step)
    return step_fn.get_concrete_function(make_batch(cfg, size, batch_size)).graph


def graph_flops(graph, op_types: tuple[str, ...] = (".*",)) -> float:
    """Float operations of the ops in `graph` whose type matches one of the `op_types`
    regexes, from TF's graph profiler."""
    import tensorflow as tf

    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["account_type_regexes"] = list(op_types)
    options["output"] = "none"
    return float(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


def count_flops(cfg, stage: int, batch_size: int) -> float:
    """Float operations of one float32 iteration, from TF's graph profiler (static shapes)."""
    return graph_flops(train_step_graph(cfg, stage, batch_size))


def run_setting(cfg, policy: str, stage: int, batch_size: int, steps: int, warmup: int) -> dict:
    import tensorflow as tf

    gan, size = _build(cfg, stage, policy)
    batch = make_batch(cfg, size, batch_size)
    step_fn = tf.function(gan.train_step, jit_compile=cfg.train.xla)
    for _ in range(warmup):
        logs = step_fn(batch)
    float(logs["d_loss"])  # wait for the device

    def one_step():
        float(step_fn(batch)["d_loss"])  # one step at a time: its own time

    return {"resolution": size, **time_steps(one_step, steps, batch_size)}


def time_steps(step, steps: int, batch_size: int) -> dict:
    """Times `steps` calls of `step()` (each returns when its iteration is done): the best and
    mean wall-clock seconds per iteration, the best CPU seconds, images/s of both."""
    times, cpu_times = [], []
    for _ in range(steps):
        start, cpu = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
    best, mean = min(times), sum(times) / len(times)
    return {
        "s_per_iter": best,
        "cpu_s_per_iter": min(cpu_times),
        "images_per_s": batch_size / best,
        "images_per_s_mean": batch_size / mean,
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
    from stackgan.training import precision as precision_lib

    cfg = config_lib.get_profile(args.profile).replace(train={"xla": args.xla})
    cfg = cfg.with_overrides(args.set)
    auto = precision_lib.resolve("auto")
    print(f"hardware: {_hardware()}")
    print(f"train.precision=auto here: {auto.describe()}")
    print(
        f"profile={args.profile} threads={args.threads or 'default'} xla={args.xla} "
        f"warmup={args.warmup} timed_steps={args.steps} overrides={args.set} "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    todo = settings(args.stage, args.batch)
    flops = {(s, b): count_flops(cfg, s, b) for s, b in todo}
    print(
        "precision  peak(matmul GFLOP/s) stage batch  res  s/iter  images/s (mean)"
        "  GFLOP/s  % of peak  per CPU-s"
    )
    for name in args.precision or PRECISIONS:
        try:
            chosen = precision_lib.resolve(name)
        except precision_lib.PrecisionError as e:
            print(f"{name:<9}  skipped: {e}", flush=True)
            continue
        # the peak before and after the steps, the better kept: on a shared machine each
        # measurement sees other load, and the peak is what the hardware can do
        peak, peak_cpu = matmul_gflops(MATMUL_DTYPES[name], args.matmul_size)
        rows = [
            (stage, batch_size, run_setting(cfg, chosen.policy, stage, batch_size, args.steps,
                                            args.warmup))
            for stage, batch_size in todo
        ]  # fmt: skip
        again, again_cpu = matmul_gflops(MATMUL_DTYPES[name], args.matmul_size)
        peak, peak_cpu = max(peak, again), max(peak_cpu, again_cpu)
        for stage, batch_size, r in rows:
            gflop = flops[(stage, batch_size)] / 1e9
            gflops = gflop / r["s_per_iter"]
            per_cpu = gflop / r["cpu_s_per_iter"]
            print(
                f"{name:<9}  {peak:>20.0f} {stage:>5} {batch_size:>5} {r['resolution']:>4} "
                f"{r['s_per_iter']:>7.2f} {r['images_per_s']:>9.2f} "
                f"({r['images_per_s_mean']:>6.2f}) {gflops:>8.0f} "
                f"{100 * gflops / peak:>9.0f}% {100 * per_cpu / peak_cpu:>9.0f}%",
                flush=True,
            )


if __name__ == "__main__":
    main()

"""A/B: one full StackGAN training iteration in PyTorch and in TensorFlow/Keras, same networks,
same stage, batch and precision, in one process.

    .venv/bin/pip install -r requirements/bench-torch.txt          # optional, this bench only
    .venv/bin/python bench/bench_torch_ab.py                       # paper profile
    .venv/bin/python bench/bench_torch_ab.py --stage 1 --batch 4 --steps 2 --precision float32

The PyTorch side (bench/torch_stackgan.py) writes the paper's Stage-I and Stage-II networks
layer for layer as stackgan/models builds them, and the iteration as ConditionalGAN.train_step
runs it: one D update on real/right, wrong and fake pairs (sigmoid cross-entropy), one G update
through the updated D with the KL term, Adam(2e-4, beta_1 0.5); Stage-II's iteration includes
the frozen Stage-I generator's forward pass that produces its input. float32, or bfloat16 as
`torch.autocast` (weights and Adam in float32, as Keras' mixed_bfloat16). Channels-last
tensors by default (TF's layout; oneDNN's fast path for CPU convolutions).

First it prints, per stage, both frameworks' parameter counts of every network (trainable;
and with BatchNorm's moving statistics) and their output shapes, and stops if any differ. Then
the FLOPs of one float32 iteration three ways: PyTorch's FlopCounterMode (convolutions and
matmuls, forward and backward, as executed), TF's graph profiler on the same op types, and on
all ops (bench_train_step.py's count). Forward FLOPs agree exactly; TF's totals are 3 %
(Stage-I) and 4.5 % (Stage-II) higher because its traced graph holds gradient ops that
nothing uses and its runtime never executes (the tape's Conv2D gradient makes both the input
and the filter gradient): D's filter gradients in G's update, and the input gradients of D's
first layer and of Stage-II G's first layer, whose inputs are images. GFLOP/s and % of peak
of BOTH frameworks use the PyTorch count, so their ratio is the images/s ratio; each
framework's peak is its own 2048^2 matmul rate in that dtype, the better of before and after
the steps. Timing as bench_train_step.py: `--warmup` untimed and `--steps` timed iterations,
best and mean.

Run it on quiet cores. With other jobs on the cores, PyTorch's OpenMP threads spin-wait for
each other at the end of every op (paper Stage-I, batch 4, 2 threads, load ~3.5 on 2 cores:
3.4 s per iteration; 0.43 s with OMP_WAIT_POLICY=PASSIVE; 0.36 s with --threads 1), which
measures the neighbours, not the framework. The header prints OMP_WAIT_POLICY.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

PRECISIONS = ("float32", "bfloat16")
MISSING_TORCH = (
    "bench_torch_ab: PyTorch is not installed; pip install -r requirements/bench-torch.txt"
)
# TF op types whose FLOPs PyTorch's FlopCounterMode counts too (convolutions and matmuls)
CONV_MATMUL_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul")


def _parse_args():
    from bench_train_step import add_setting_arguments

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setting_arguments(p)
    p.add_argument("--precision", choices=PRECISIONS, action="append", help="default: both")
    p.add_argument("--steps", type=int, default=5, help="timed iterations per setting")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations per setting")
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="threads of each framework (torch intra/inter-op, TF intra/inter-op; 0 = defaults)",
    )
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n peak matmul")
    p.add_argument(
        "--memory-format",
        choices=("channels_last", "contiguous"),
        default="channels_last",
        help="PyTorch's layout of images and activations (NHWC or NCHW)",
    )
    p.add_argument(
        "--set", action="append", default=[], help="config override, section.field=value"
    )
    return p.parse_args()


def torch_matmul_gflops(dtype, n: int, device="cpu") -> tuple[float, float]:
    """bench_train_step.matmul_gflops in PyTorch on `device`: (best GFLOP/s, best per
    CPU-second)."""
    import torch
    from bench_train_step import MATMUL_CHAIN, best_rate

    a = torch.randn(n, n, device=device).to(dtype)
    b = (torch.randn(n, n, device=device) / n**0.5).to(dtype)

    def products():
        x = a
        for _ in range(MATMUL_CHAIN):
            x = torch.mm(x, b)
        if x.is_cuda:  # a GPU returns before the products are done
            torch.cuda.synchronize(x.device)
        return x

    return best_rate(products, MATMUL_CHAIN * 2 * n**3)


def _resolution(cfg, stage: int) -> int:
    return cfg.data.low_res if stage == 1 else cfg.data.high_res


def unmirrored(cfg) -> list[str]:
    """The options of `cfg` that change TF's iteration and torch_stackgan does not mirror."""
    m, t = cfg.model, cfg.train
    checks = {
        "model.stage2_output": m.stage2_output != "image",
        "model.stage2_unconditional_logit": m.stage2_unconditional_logit,
        "model.frozen_stage1_batchnorm": m.frozen_stage1_batchnorm != "batch",
        "train.r1_gamma": t.r1_gamma,
        "train.d_augment": t.d_augment != "none",
        "train.stage2_consistency_weight": t.stage2_consistency_weight,
        "train.xla": t.xla,
    }
    return [name for name, on in checks.items() if on]


def _torch_batch(cfg, stage: int, batch_size: int, memory_format):
    """bench_train_step.make_batch's arrays as PyTorch tensors, NCHW shape in `memory_format`."""
    import torch
    from bench_train_step import make_batch

    tf_batch = make_batch(cfg, _resolution(cfg, stage), batch_size)

    def image(key):
        x = torch.from_numpy(tf_batch[key].numpy()).permute(0, 3, 1, 2)
        return x.contiguous(memory_format=memory_format)

    embedding = torch.from_numpy(tf_batch["embedding"].numpy())
    return image("image"), image("wrong_image"), embedding


def require_torch(bench: str):
    """-> the torch module, or exit in one line saying how to install it."""
    try:
        import torch
    except ImportError:
        print(MISSING_TORCH.replace("bench_torch_ab", bench), file=sys.stderr)
        raise SystemExit(1) from None
    return torch


def torch_step(cfg, stage: int, memory_format, autocast, device="cpu"):
    """torch_stackgan's TrainStep of `stage` with freshly built networks on `device`."""
    import torch_stackgan

    generator, discriminator, stage1 = (
        None if net is None else net.to(device)
        for net in torch_stackgan.build(
            cfg.model, stage, cfg.data.low_res, cfg.data.high_res, memory_format
        )
    )
    return torch_stackgan.TrainStep(
        generator,
        discriminator,
        cfg.model,
        kl_weight=cfg.train.kl_weight,
        lr=cfg.train.learning_rate,
        beta_1=cfg.train.beta_1,
        stage1=stage1,
        autocast=autocast,
    )


def _keras_nets(cfg, stage: int) -> dict:
    from stackgan import models

    m, low, high = cfg.model, cfg.data.low_res, cfg.data.high_res
    if stage == 1:
        return {
            "G": models.build_stage1_generator(m, low),
            "D": models.build_stage1_discriminator(m, low),
        }
    return {
        "Stage-I G (frozen)": models.build_stage1_generator(m, low),
        "G": models.build_stage2_generator(m, low),
        "D": models.build_stage2_discriminator(m, high),
    }


def _torch_counts(net) -> tuple[int, int]:
    """(trainable parameters, + BatchNorm's running mean and variance)."""
    trainable = sum(p.numel() for p in net.parameters())
    # num_batches_tracked, an int64 counter, has no counterpart in Keras
    stats = sum(b.numel() for b in net.buffers() if b.dtype.is_floating_point)
    return trainable, trainable + stats


def check_networks(cfg, stage: int, memory_format) -> None:
    """Prints both frameworks' parameter counts and output shapes of every network of `stage`;
    raises when a trainable count or a shape differs."""
    import torch
    import torch_stackgan

    g, d, stage1 = torch_stackgan.build(
        cfg.model, stage, cfg.data.low_res, cfg.data.high_res, memory_format
    )
    m, batch = cfg.model, 2
    embedding = torch.randn(batch, m.embedding_dim)
    with torch.no_grad():
        if stage == 1:
            fake = g(embedding, torch.randn(batch, m.z_dim), torch.randn(batch, m.ca_dim))
            low_image = None
        else:
            low_image = stage1(embedding, torch.randn(batch, m.z_dim), torch.randn(batch, m.ca_dim))
            fake = g(low_image[0], embedding, torch.randn(batch, m.ca_dim))
        logit = d(fake[0], embedding)
    outputs = {"G": fake, "D": (logit,)}
    nets = {"G": g, "D": d}
    if stage == 2:
        nets["Stage-I G (frozen)"], outputs["Stage-I G (frozen)"] = stage1, low_image
    failures = []
    for name, keras_net in _keras_nets(cfg, stage).items():
        trainable, total = _torch_counts(nets[name])
        k_trainable = sum(int(v.numpy().size) for v in keras_net.trainable_weights)
        k_total = keras_net.count_params()
        # Keras: NHWC, no batch dimension known; PyTorch: NCHW
        k_shapes = [tuple(s[1:]) for s in _output_shapes(keras_net)]
        t_shapes = [_nhwc(tuple(o.shape[1:])) for o in outputs[name]]
        same = trainable == k_trainable and total == k_total and k_shapes == t_shapes
        print(
            f"stage {stage} {name:<18} params trainable torch {trainable:>11,} keras "
            f"{k_trainable:>11,}; with BN statistics torch {total:>11,} keras {k_total:>11,}; "
            f"outputs {t_shapes} {'(same)' if same else f'keras {k_shapes} DIFFERENT'}",
            flush=True,
        )
        if not same:
            failures.append(f"stage {stage} {name}")
    if failures:
        raise SystemExit(f"bench_torch_ab: networks differ from Keras': {', '.join(failures)}")


def _output_shapes(model) -> list[tuple]:
    shapes = model.output_shape
    return shapes if isinstance(shapes, list) else [shapes]


def _nhwc(shape: tuple) -> tuple:
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape


def torch_flops(cfg, stage: int, batch_size: int, memory_format) -> float:
    """FLOPs of one float32 PyTorch iteration (FlopCounterMode: convolutions and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    step = torch_step(cfg, stage, memory_format, None)
    batch = _torch_batch(cfg, stage, batch_size, memory_format)
    with FlopCounterMode(display=False) as counter:
        step(*batch)
    return float(counter.get_total_flops())


def run_torch(cfg, stage, batch_size, steps, warmup, memory_format, autocast) -> dict:
    from bench_train_step import time_steps

    step = torch_step(cfg, stage, memory_format, autocast)
    batch = _torch_batch(cfg, stage, batch_size, memory_format)
    for _ in range(warmup):
        step(*batch)

    def one_step():
        step(*batch)  # its .item() returns once the iteration is done

    return {"resolution": _resolution(cfg, stage), **time_steps(one_step, steps, batch_size)}


def _row(framework, name, peak, peak_cpu, stage, batch_size, r, gflop) -> str:
    gflops, per_cpu = gflop / r["s_per_iter"], gflop / r["cpu_s_per_iter"]
    return (
        f"{framework:<10} {name:<9} {peak:>7.0f} {stage:>5} {batch_size:>5} "
        f"{r['resolution']:>4} {r['s_per_iter']:>7.2f} {r['images_per_s']:>9.2f} "
        f"({r['images_per_s_mean']:>6.2f}) {gflops:>8.0f} "
        f"{100 * gflops / peak:>9.0f}% {100 * per_cpu / peak_cpu:>9.0f}%"
    )


def main():
    args = _parse_args()
    torch = require_torch("bench_torch_ab")
    if args.threads:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.threads)
    memory_format = {"channels_last": torch.channels_last,
                     "contiguous": torch.contiguous_format}[args.memory_format]  # fmt: skip

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # the v1 profiler API prints a deprecation notice
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import bench_train_step as tf_bench  # this folder is on sys.path when run as a script

    from stackgan import config as config_lib
    from stackgan.training import precision as precision_lib

    cfg = config_lib.get_profile(args.profile).with_overrides(args.set)
    if unmirrored(cfg):
        raise SystemExit(
            f"bench_torch_ab: not mirrored in PyTorch, set them off: {', '.join(unmirrored(cfg))}"
        )
    print(f"hardware: {tf_bench.cpu_model()}")
    print(
        f"PyTorch {torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability()}"
        f", {torch.get_num_threads()} threads, {torch.get_num_interop_threads()} inter-op); "
        f"TensorFlow {tf.__version__} ({args.threads or 'default'} intra/inter-op threads); "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}"
    )
    print(
        f"profile={args.profile} memory_format={args.memory_format} warmup={args.warmup} "
        f"timed_steps={args.steps} overrides={args.set} "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    todo = tf_bench.settings(args.stage, args.batch)
    for stage in sorted({s for s, _ in todo}):
        check_networks(cfg, stage, memory_format)

    flops = {}
    for stage, batch_size in todo:
        graph = tf_bench.train_step_graph(cfg, stage, batch_size)
        flops[(stage, batch_size)] = count = torch_flops(cfg, stage, batch_size, memory_format)
        tf_same_ops = tf_bench.graph_flops(graph, CONV_MATMUL_OPS)
        tf_all = tf_bench.graph_flops(graph)
        print(
            f"stage {stage} batch {batch_size}: GFLOP per float32 iteration: PyTorch "
            f"FlopCounterMode {count / 1e9:,.1f}; TF profiler, conv+matmul ops "
            f"{tf_same_ops / 1e9:,.1f} ({100 * (tf_same_ops / count - 1):+.2f} %), all ops "
            f"{tf_all / 1e9:,.1f} (bench_train_step's count)",
            flush=True,
        )
        del graph

    print(
        "framework  precision    peak stage batch  res  s/iter  images/s (mean)"
        "  GFLOP/s  % of peak  per CPU-s"
    )
    torch_dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}
    for name in args.precision or PRECISIONS:
        chosen = precision_lib.resolve(name)
        autocast = None if name == "float32" else torch_dtypes[name]
        peaks = {
            "PyTorch": torch_matmul_gflops(torch_dtypes[name], args.matmul_size),
            "TF": tf_bench.matmul_gflops(tf_bench.MATMUL_DTYPES[name], args.matmul_size),
        }
        rows = []
        for stage, batch_size in todo:
            torch_row = run_torch(
                cfg, stage, batch_size, args.steps, args.warmup, memory_format, autocast
            )
            tf_row = tf_bench.run_setting(
                cfg, chosen.policy, stage, batch_size, args.steps, args.warmup
            )
            rows.append((stage, batch_size, torch_row, tf_row))
            gc.collect()
        # the better of before and after the steps: each sees other load on a shared machine
        again = {
            "PyTorch": torch_matmul_gflops(torch_dtypes[name], args.matmul_size),
            "TF": tf_bench.matmul_gflops(tf_bench.MATMUL_DTYPES[name], args.matmul_size),
        }
        peaks = {k: (max(peaks[k][0], again[k][0]), max(peaks[k][1], again[k][1])) for k in peaks}
        for stage, batch_size, torch_row, tf_row in rows:
            gflop = flops[(stage, batch_size)] / 1e9
            for framework, r in (("PyTorch", torch_row), ("TF", tf_row)):
                print(_row(framework, name, *peaks[framework], stage, batch_size, r, gflop))
            print(
                f"{'TF/PyTorch':<10} {name:<9} {peaks['TF'][0] / peaks['PyTorch'][0]:>7.2f} "
                f"{stage:>5} {batch_size:>5} {'':>4} {'':>7} "
                f"{tf_row['images_per_s'] / torch_row['images_per_s']:>9.2f} "
                f"({tf_row['images_per_s_mean'] / torch_row['images_per_s_mean']:>6.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()

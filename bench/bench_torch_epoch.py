"""Seconds per CUB-sized epoch of StackGAN's Stage-I and Stage-II training iteration, in every
precision, on a GPU (or any PyTorch device), with the PyTorch mirror of our networks.

    .venv/bin/pip install -r requirements/bench-torch.txt      # optional, this bench only
    python bench/bench_torch_epoch.py                           # paper profile, CUDA if present
    python bench/bench_torch_epoch.py --device cpu --profile tiny --images 64 --precision float32

Why PyTorch: the GPU machines this project is lent carry PyTorch and no TensorFlow, and
TensorFlow cannot travel to them (a TF 2.21 wheel with the CUDA 12 libraries it loads is
gigabytes; a call there carries 64 MiB). bench/torch_stackgan.py writes our Stage-I and
Stage-II networks layer for layer and ConditionalGAN.train_step's iteration (one D update on
real/right, wrong and fake pairs; one G update through the updated D with the KL term; Adam);
bench_torch_ab.py checks on a CPU that its parameter counts, shapes and FLOPs equal Keras'. This
file imports neither TensorFlow nor stackgan's TF code, only stackgan.config for the profiles.

One epoch is `--images // batch` iterations (the trainer drops the last partial batch), 8,855 by
default: CUB's StackGAN training split. The batch is fixed and already on the device, so the
figure is the training arithmetic alone (bench_input_pipeline.py times the input pipeline);
after `--warmup` untimed iterations (cuDNN picks its algorithms there) the whole epoch is timed
between two device synchronisations, the losses read once at the end as a trainer reading them
every few steps would.

Precisions, each against the device's own n x n matmul rate in that precision, measured in the
same run:
- float32: IEEE float32 everywhere (TF32 off in matmuls and convolutions);
- tf32: float32 weights and tensors, TF32 tensor cores in matmuls and convolutions; what
  TensorFlow's float32 does on an Ampere or newer GPU by default;
- bfloat16: autocast, weights and Adam in float32 (Keras' mixed_bfloat16);
- float16: autocast with dynamic loss scaling (Keras' mixed_float16). Never on a CPU.
Peak device memory per setting is torch.cuda.max_memory_allocated (tensors) and _reserved
(the caching allocator's whole footprint).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# this folder is on sys.path when a bench runs as a script; no TensorFlow at these imports
from bench_torch_ab import require_torch, torch_matmul_gflops, torch_step, unmirrored
from bench_train_step import CUB_TRAIN_IMAGES

PRECISIONS = ("float32", "tf32", "bfloat16", "float16")


def _parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper", help="config profile (default: paper)")
    p.add_argument(
        "--set", action="append", default=[], help="config override, section.field=value"
    )
    p.add_argument(
        "--device", default=None, help="torch device (default: cuda if present, else cpu)"
    )
    p.add_argument(
        "--precision", choices=PRECISIONS, action="append", help="default: all the device runs"
    )
    p.add_argument("--stage", type=int, choices=(1, 2), action="append", help="default: both")
    p.add_argument("--images", type=int, default=CUB_TRAIN_IMAGES, help="images per epoch")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations per setting")
    p.add_argument(
        "--matmul-size",
        type=int,
        default=0,
        help="n of the peak matmul (0: 8192 on a GPU, 2048 on a CPU)",
    )
    return p.parse_args()


def mirrored_config(bench: str, profile: str, overrides: list[str]):
    """The profile with `overrides`, or exit in one line when an override is wrong or names an
    option the PyTorch mirror does not have."""
    from stackgan import config as config_lib
    from stackgan.errors import UserError

    try:
        cfg = config_lib.get_profile(profile).with_overrides(overrides)
    except UserError as e:
        raise SystemExit(f"{bench}: {e}") from None
    if unmirrored(cfg):
        raise SystemExit(
            f"{bench}: not mirrored in PyTorch, set them off: {', '.join(unmirrored(cfg))}"
        )
    return cfg


class Device:
    """The torch device with its synchronisation, memory counters and description."""

    def __init__(self, name: str):
        import torch

        self.torch = torch
        try:
            self.device = torch.device(name)
        except RuntimeError:
            raise SystemExit(f"bench_torch_epoch: --device {name}: not a torch device") from None
        self.cuda = self.device.type == "cuda"
        if self.cuda and not torch.cuda.is_available():
            raise SystemExit(f"bench_torch_epoch: --device {name}: this PyTorch sees no CUDA GPU")

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def reset_memory(self) -> None:
        if self.cuda:
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory_gib(self) -> tuple[float, float]:
        """(peak allocated, peak reserved) GiB since reset_memory; NaN on a CPU."""
        if not self.cuda:
            return float("nan"), float("nan")
        cuda = self.torch.cuda
        return cuda.max_memory_allocated(self.device) / 2**30, cuda.max_memory_reserved(
            self.device
        ) / 2**30

    def describe(self) -> str:
        torch = self.torch
        if self.cuda:
            p = torch.cuda.get_device_properties(self.device)
            return (
                f"{p.name}, compute capability {p.major}.{p.minor}, {p.multi_processor_count} SMs, "
                f"{p.total_memory / 2**30:.0f} GiB; PyTorch {torch.__version__}, CUDA "
                f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
            )
        from bench_train_step import cpu_model  # no TensorFlow at its import

        return f"{cpu_model()}; PyTorch {torch.__version__}"

    def supports(self, precision: str) -> str | None:
        """None when `precision` runs natively here, else why not."""
        torch = self.torch
        if not self.cuda:
            return {
                "tf32": "TF32 is a GPU tensor-core format",
                "float16": "never float16 on a CPU",
            }.get(precision)
        major, _ = torch.cuda.get_device_capability(self.device)
        if precision in ("tf32", "bfloat16") and major < 8:
            return f"{precision} needs compute capability 8.0 or newer"
        return None


def set_precision(torch, precision: str):
    """Sets TF32 on or off for `precision`; -> its autocast dtype (None for float32 and tf32)."""
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(precision)


def make_batch(cfg, stage: int, batch_size: int, dev: Device):
    """Fixed images in [-1, 1] (channels-last) and embeddings, on the device."""
    torch = dev.torch
    size = cfg.data.low_res if stage == 1 else cfg.data.high_res
    g = torch.Generator().manual_seed(0)

    def image():
        x = torch.rand(batch_size, 3, size, size, generator=g) * 2 - 1
        return x.to(dev.device).contiguous(memory_format=torch.channels_last)

    embedding = torch.randn(batch_size, cfg.model.embedding_dim, generator=g).to(dev.device)
    return image(), image(), embedding


def iteration_flops(cfg, stage: int, batch_size: int, dev: Device) -> float:
    """FLOPs of one float32 iteration as executed (FlopCounterMode: convolutions, matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    step = torch_step(cfg, stage, dev.torch.channels_last, None, dev.device)
    batch = make_batch(cfg, stage, batch_size, dev)
    with FlopCounterMode(display=False) as counter:
        step(*batch)
    return float(counter.get_total_flops())


def time_epoch(
    cfg, stage: int, batch_size: int, images: int, warmup: int, dev: Device, autocast
) -> dict:
    dev.reset_memory()
    step = torch_step(cfg, stage, dev.torch.channels_last, autocast, dev.device)
    batch = make_batch(cfg, stage, batch_size, dev)
    for _ in range(warmup):
        step(*batch)
    iterations = images // batch_size
    dev.sync()
    start = time.perf_counter()
    for _ in range(iterations):
        losses = step.step(*batch)
    d_loss, g_loss = (float(x) for x in losses)  # waits for the last iteration
    dev.sync()
    seconds = time.perf_counter() - start
    allocated, reserved = dev.peak_memory_gib()
    return {
        "iterations": iterations,
        "seconds": seconds,
        "losses_finite": math.isfinite(d_loss) and math.isfinite(g_loss),
        "allocated_gib": allocated,
        "reserved_gib": reserved,
    }


def main():
    args = _parse_args()
    torch = require_torch("bench_torch_epoch")
    cfg = mirrored_config("bench_torch_epoch", args.profile, args.set)
    dev = Device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.backends.cudnn.benchmark = True  # the shapes never change: let cuDNN pick per layer
    n = args.matmul_size or (8192 if dev.cuda else 2048)
    print(f"hardware: {dev.describe()}")
    print(
        f"profile={args.profile} overrides={args.set} images/epoch={args.images} "
        f"warmup={args.warmup} channels_last, fixed batch on the device",
        flush=True,
    )
    stages = sorted(set(args.stage or [1, 2]))
    batches = {1: cfg.train.batch_size, 2: cfg.train.stage2_batch_size or cfg.train.batch_size}
    set_precision(torch, "float32")
    flops = {s: iteration_flops(cfg, s, batches[s], dev) for s in stages}
    for s in stages:
        print(
            f"stage {s} batch {batches[s]}: {flops[s] / 1e12:.3f} TFLOP per iteration (float32, conv+matmul)"
        )
    print(
        f"{'precision':<9} {'peak TFLOP/s':>12} {'stage':>5} {'batch':>5} {'iters':>5} "
        f"{'s/epoch':>8} {'ms/iter':>8} {'images/s':>9} {'TFLOP/s':>8} {'% peak':>7} "
        f"{'alloc GiB':>9} {'reserved':>8}  losses",
        flush=True,
    )
    for precision in args.precision or PRECISIONS:
        why_not = dev.supports(precision)
        if why_not:
            print(f"{precision:<9} skipped: {why_not}", flush=True)
            continue
        autocast = set_precision(torch, precision)
        peak = torch_matmul_gflops(autocast or torch.float32, n, dev.device)[0] / 1e3
        for s in stages:
            r = time_epoch(cfg, s, batches[s], args.images, args.warmup, dev, autocast)
            per_iter = r["seconds"] / r["iterations"]
            rate = flops[s] / per_iter / 1e12
            print(
                f"{precision:<9} {peak:>12.1f} {s:>5} {batches[s]:>5} {r['iterations']:>5} "
                f"{r['seconds']:>8.2f} {1e3 * per_iter:>8.1f} "
                f"{batches[s] / per_iter:>9.1f} {rate:>8.1f} {100 * rate / peak:>6.0f}% "
                f"{r['allocated_gib']:>9.2f} {r['reserved_gib']:>8.2f}  "
                f"{'finite' if r['losses_finite'] else 'NOT FINITE'}",
                flush=True,
            )


if __name__ == "__main__":
    main()

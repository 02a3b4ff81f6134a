"""A StackGAN training run in PyTorch on a GPU: Stage-I, then Stage-II on the frozen Stage-I,
with the mirror of our networks and iteration (bench/torch_stackgan.py), on a work dir's
training Examples exported by bench/torch_run_data.py. The images it makes of the Evaluator's
own captions go back to be scored by the Evaluator's code (`torch_run_data.py score`).

    python bench/torch_train_run.py --data run/data.npz --out run/generated \\
        --stage1-seconds 240 --stage2-seconds 280

Why PyTorch: the GPU machines this project is lent carry PyTorch and no TensorFlow
(bench_torch_epoch.py says why), and a run there is the only long training this project can
make. What it mirrors of our trainer:
- the input (tfrecords/input_pipeline.py): a random crop of the stored 76 / 304 px image to
  64 / 256 px with a horizontal flip of p = 0.5 (`data.train_flip`), a wrong image of another class, the mean of
  `data.embeddings_per_sample` distinct caption embeddings of the image's 10, all drawn on the
  GPU from the decoded split held there (no host work per iteration);
- the iteration: torch_stackgan.TrainStep (ConditionalGAN.train_step with the paper's
  objective), Adam at the profile's rates (D at `train.d_learning_rate` when set), both halved
  every `train.lr_decay_epochs` epochs of CUB's size (8,855 images; on a split of a few hundred
  images an epoch of its own would halve the rate every few hundred iterations);
- the frozen Stage-I normalises with its batch's statistics while Stage-II trains
  (frozen_stage1_batchnorm "batch", the paper profile's);
- before generating, BatchNorm statistics re-estimated over 20 batches under the final weights
  (precise_bn.py); images made in inference mode, Stage-II from Stage-I's inference-mode image,
  as the exported generator serves them; pixels rounded as tfrecords/pixels.to_uint8.
Not mirrored: the options bench_torch_ab.unmirrored() lists (refused), the averaged generator,
checkpoints, sample sheets during training (it keeps Stage-I's images of 8 fixed captions at
8 points of its run instead).

Out: generated_{train,test}.npz (the captions' embeddings, Stage-I uint8 images and Stage-II
images as JPEG q95 bytes, which keeps a 200-image split under the GPU machine's 16 MiB per
returned file; Stage-I's progress images in the train file) and the log on stdout.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# this folder is on sys.path when a bench runs as a script; no TensorFlow at these imports
from bench_torch_ab import require_torch
from bench_torch_epoch import (
    PRECISIONS,
    Device,
    mirrored_config,
    set_precision,
)
from bench_train_step import CUB_TRAIN_IMAGES
from torch_run_data import EXPORTED_KEYS, load_npz, save_generated, unpack

PRECISE_BN_BATCHES = 20  # train.precise_bn_batches' default
PROGRESS_POINTS = 8
PROGRESS_CAPTIONS = 8
GENERATE_BATCH = 50


def add_run_arguments(p, seconds: tuple[float, float], log_every: int) -> None:
    """A GPU run's data, output and length (this run's and xla_train_run.py's)."""
    p.add_argument("--data", required=True, help="the .npz of `torch_run_data.py export`")
    p.add_argument("--out", required=True, help="folder for generated_{train,test}.npz")
    p.add_argument("--stage1-seconds", type=float, default=seconds[0])
    p.add_argument("--stage2-seconds", type=float, default=seconds[1])
    p.add_argument("--stage1-steps", type=int, default=0, help="a cap on iterations (0: none)")
    p.add_argument("--stage2-steps", type=int, default=0, help="a cap on iterations (0: none)")
    p.add_argument("--log-every", type=int, default=log_every, help="iterations between log lines")
    p.add_argument("--seed", type=int, default=0)


def _parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(p, seconds=(240.0, 280.0), log_every=500)
    p.add_argument("--profile", default="paper", help="config profile (default: paper)")
    p.add_argument("--set", action="append", default=[], help="config override")
    p.add_argument("--precision", default="bfloat16", choices=PRECISIONS)
    p.add_argument("--device", default=None, help="a torch device (default: cuda if present)")
    return p.parse_args()


class TrainingSplit:
    """The exported training split, decoded once onto the device; `batch` draws one training
    batch there as make_train_dataset does."""

    def __init__(self, data, cfg, torch, device):
        from PIL import Image

        self.torch, self.device, self.cfg = torch, device, cfg
        labels = data["labels"]
        self.count = len(labels)

        def decoded(prefix: str):
            blobs = unpack(data[f"{prefix}_bytes"], data[f"{prefix}_offsets"])
            pixels = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs])
            return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous().to(device)

        self.images = {1: decoded("low"), 2: decoded("high")}
        self.sizes = {1: cfg.data.low_res, 2: cfg.data.high_res}
        self.embeddings = torch.from_numpy(data["embeddings"].astype(np.float32)).to(device)
        self.labels = torch.from_numpy(labels).to(device)
        # every image's candidates for a wrong image (another class), cycled to one length so
        # that one gather draws them all
        others = [np.flatnonzero(labels != label) for label in labels]
        width = max(len(o) for o in others)
        if width == 0:
            raise SystemExit("torch_train_run: the training split has one class: no wrong images")
        cycled = np.stack([np.resize(o, width) for o in others])
        self.wrong_candidates = torch.from_numpy(cycled).to(device)

    def _crop_flip(self, stage: int, index):
        torch, size = self.torch, self.sizes[stage]
        images = self.images[stage][index]  # uint8 [B, 3, S, S]
        batch, stored = len(index), images.shape[-1]
        offsets = torch.randint(0, stored - size + 1, (2, batch, 1), device=self.device)
        steps = torch.arange(size, device=self.device)
        rows, cols = offsets[0] + steps, offsets[1] + steps
        if self.cfg.data.train_flip:
            flip = torch.rand(batch, 1, device=self.device) < 0.5
            cols = torch.where(flip, cols.flip(1), cols)
        picked = images[
            torch.arange(batch, device=self.device)[:, None, None],
            :,
            rows[:, :, None],
            cols[:, None, :],
        ]  # [B, size, size, 3]: NHWC in memory, i.e. channels-last NCHW after the permute
        return (picked.permute(0, 3, 1, 2).float() / 127.5 - 1.0).contiguous(
            memory_format=torch.channels_last
        )

    def embedding(self, index):
        torch = self.torch
        k = self.cfg.data.embeddings_per_sample
        captions = self.embeddings.shape[1]
        chosen = torch.rand(len(index), captions, device=self.device).argsort(1)[:, :k]
        return self.embeddings[index[:, None], chosen].mean(1)

    def random_embeddings(self, batch_size: int):
        """A training batch's text conditions alone (what precise BatchNorm needs)."""
        index = self.torch.randint(0, self.count, (batch_size,), device=self.device)
        return self.embedding(index)

    def batch(self, stage: int, batch_size: int):
        """-> (image, wrong image, embedding), as a training batch of `stage`."""
        torch = self.torch
        index = torch.randint(0, self.count, (batch_size,), device=self.device)
        column = torch.randint(0, self.wrong_candidates.shape[1], (batch_size,), device=self.device)
        wrong = self.wrong_candidates[index, column]
        return self._crop_flip(stage, index), self._crop_flip(stage, wrong), self.embedding(index)


def precise_batchnorm(torch, net, forward, batches: int = PRECISE_BN_BATCHES) -> None:
    """Re-estimates `net`'s BatchNorm statistics as the plain average over `batches` calls of
    `forward()` under its final weights (precise_bn.py), then leaves it in inference mode."""
    layers = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average
    net.train()
    with torch.no_grad():
        for _ in range(batches):
            forward()
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
    net.eval()


def to_uint8(torch, images):
    """[B,3,H,W] tanh output -> uint8 [B,H,W,3] NumPy, rounded and clipped as pixels.to_uint8."""
    pixels = torch.round(((images.float() + 1.0) * 127.5).clamp(0.0, 255.0))
    return pixels.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class Schedule:
    """The profile's learning rates, halved every `lr_decay_epochs` CUB-sized epochs."""

    def __init__(self, train, batch_size: int, g_lr: float):
        self.g_lr, self.d_lr = g_lr, train.d_learning_rate or train.learning_rate
        self.factor, self.every = (
            train.lr_decay_factor,
            max(1, train.lr_decay_epochs * CUB_TRAIN_IMAGES // batch_size),
        )

    def apply(self, step, iteration: int) -> None:
        scale = self.factor ** (iteration // self.every)
        for group in step.g_optimizer.param_groups:
            group["lr"] = self.g_lr * scale
        for group in step.d_optimizer.param_groups:
            group["lr"] = self.d_lr * scale


def timed_iterations(seconds: float, max_steps: int, snapshot=None):
    """Yields 0, 1, 2, ... until `seconds` have passed since the first (or `max_steps` were
    yielded); calls `snapshot(i)` before iteration i at PROGRESS_POINTS evenly spaced moments."""
    start = time.perf_counter()
    iteration, shown = 0, 0
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= seconds or (max_steps and iteration >= max_steps):
            return
        if snapshot is not None and elapsed >= shown * seconds / PROGRESS_POINTS:
            snapshot(iteration)
            shown += 1
        yield iteration
        iteration += 1


def report_stage(stage: int, iterations: int, batch_size: int, seconds: float, images: int):
    """The stage's closing line: iterations, time per iteration, epochs of the split's
    `images` and of CUB's size."""
    print(
        f"stage {stage}: {iterations} iterations of {batch_size} in {seconds:.0f} s "
        f"({1e3 * seconds / max(iterations, 1):.1f} ms/iteration; "
        f"{iterations * batch_size / images:.0f} epochs of this split, "
        f"{iterations * batch_size / CUB_TRAIN_IMAGES:.1f} of CUB's size)",
        flush=True,
    )


def train(step, split, stage, batch_size, schedule, seconds, max_steps, log_every, dev, snapshot):
    """Runs `step` until `seconds` pass (or `max_steps`); -> iterations run. `snapshot(i)` is
    called at PROGRESS_POINTS evenly spaced moments (Stage-I only)."""
    dev.sync()
    start = time.perf_counter()
    iterations = 0
    for iteration in timed_iterations(seconds, max_steps, snapshot):
        if iteration % schedule.every == 0:
            schedule.apply(step, iteration)
        losses = step.step(*split.batch(stage, batch_size))
        iterations = iteration + 1
        if iterations % log_every == 0:
            d_loss, g_loss = (float(x) for x in losses)  # waits for the GPU
            rate = iterations / (time.perf_counter() - start)
            lr = step.g_optimizer.param_groups[0]["lr"]
            print(
                f"stage {stage} iteration {iterations}: D {d_loss:.3f} G {g_loss:.3f} "
                f"({rate:.1f} it/s, {rate * batch_size:.0f} img/s, G lr {lr:.2e})",
                flush=True,
            )
            if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
                raise SystemExit(
                    f"torch_train_run: stage {stage} losses not finite at {iterations}"
                )
    dev.sync()
    report_stage(stage, iterations, batch_size, time.perf_counter() - start, split.count)
    return iterations


def generate(torch, stage1, stage2, cfg, embeddings, seed: int, device, autocast):
    """-> (Stage-I uint8 [N,64,64,3], Stage-II uint8 [N,256,256,3]) of `embeddings`."""
    gen = torch.Generator(device=device).manual_seed(seed)
    lows, highs = [], []
    for start in range(0, len(embeddings), GENERATE_BATCH):
        e = torch.from_numpy(embeddings[start : start + GENERATE_BATCH]).to(device)
        n = len(e)
        noise = torch.randn(n, cfg.model.z_dim, device=device, generator=gen)
        eps1 = torch.randn(n, cfg.model.ca_dim, device=device, generator=gen)
        eps2 = torch.randn(n, cfg.model.ca_dim, device=device, generator=gen)
        with torch.no_grad(), autocast():
            low = stage1(e, noise, eps1)[0]
            high = stage2(low.contiguous(memory_format=torch.channels_last), e, eps2)[0]
        lows.append(to_uint8(torch, low))
        highs.append(to_uint8(torch, high))
    return np.concatenate(lows), np.concatenate(highs)


def main():
    args = _parse_args()
    torch = require_torch("torch_train_run")
    import torch_stackgan

    data = load_npz(args.data, EXPORTED_KEYS, "`torch_run_data.py export`")
    embedding_dim = data["embeddings"].shape[-1]
    low_stored, high_stored = (int(x) for x in data["stored"])
    cfg = mirrored_config(
        "torch_train_run",
        args.profile,
        [
            f"model.embedding_dim={embedding_dim}",
            f"data.embedding_dim={embedding_dim}",
            f"data.low_res_stored={low_stored}",
            f"data.high_res_stored={high_stored}",
            *args.set,
        ],
    )
    dev = Device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.supports(args.precision):
        raise SystemExit(
            f"torch_train_run: --precision {args.precision}: {dev.supports(args.precision)}"
        )
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True
    dtype = set_precision(torch, args.precision)

    def autocast():
        return torch.autocast(
            dev.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None
        )

    split = TrainingSplit(data, cfg, torch, dev.device)
    t = cfg.train
    batches = {1: t.batch_size, 2: t.stage2_batch_size or t.batch_size}
    print(f"hardware: {dev.describe()}")
    print(
        f"profile={args.profile} overrides={args.set} precision={args.precision}; "
        f"{split.count} training images, embeddings {embedding_dim}-d; batches {batches}",
        flush=True,
    )
    channels_last = torch.channels_last

    def step_for(stage: int, lr: float, stage1_weights=None):
        generator, discriminator, stage1 = (
            None if net is None else net.to(dev.device)
            for net in torch_stackgan.build(
                cfg.model, stage, cfg.data.low_res, cfg.data.high_res, channels_last
            )
        )
        if stage1_weights is not None:
            stage1.load_state_dict(stage1_weights)
        return torch_stackgan.TrainStep(
            generator,
            discriminator,
            cfg.model,
            kl_weight=t.kl_weight,
            lr=lr,
            beta_1=t.beta_1,
            stage1=stage1,
            autocast=dtype,
        )

    # Stage-I, with its images of 8 fixed captions at 8 points of the run
    dev.reset_memory()
    step1 = step_for(1, t.learning_rate)
    fixed = data["eval_train_embeddings"][
        np.linspace(0, len(data["eval_train_embeddings"]) - 1, PROGRESS_CAPTIONS).astype(int)
    ]
    fixed_e = torch.from_numpy(fixed).to(dev.device)
    gen = torch.Generator(device=dev.device).manual_seed(args.seed)
    fixed_noise = torch.randn(len(fixed), cfg.model.z_dim, device=dev.device, generator=gen)
    fixed_eps = torch.randn(len(fixed), cfg.model.ca_dim, device=dev.device, generator=gen)
    progress, progress_steps = [], []

    def snapshot(iteration: int):
        g = step1.generator
        g.eval()
        with torch.no_grad(), autocast():
            progress.append(to_uint8(torch, g(fixed_e, fixed_noise, fixed_eps)[0]))
        progress_steps.append(iteration)
        g.train()

    schedule1 = Schedule(t, batches[1], t.learning_rate)
    steps1 = train(step1, split, 1, batches[1], schedule1, args.stage1_seconds, args.stage1_steps,
                   args.log_every, dev, snapshot)  # fmt: skip
    stage1 = step1.generator

    def stage1_forward():
        e = split.random_embeddings(batches[1])
        with autocast():
            stage1(e, torch.randn(len(e), cfg.model.z_dim, device=dev.device),
                   torch.randn(len(e), cfg.model.ca_dim, device=dev.device))  # fmt: skip

    precise_batchnorm(torch, stage1, stage1_forward)
    snapshot(steps1)
    stage1.eval()
    print(f"stage 1 peak memory: {dev.peak_memory_gib()[0]:.1f} GiB allocated", flush=True)

    # Stage-II on the frozen Stage-I
    dev.reset_memory()
    g2_lr = t.stage2_learning_rate or t.learning_rate
    step2 = step_for(2, g2_lr, stage1.state_dict())
    schedule2 = Schedule(t, batches[2], g2_lr)
    steps2 = train(step2, split, 2, batches[2], schedule2, args.stage2_seconds, args.stage2_steps,
                   args.log_every, dev, None)  # fmt: skip
    stage2 = step2.generator

    def stage2_forward():
        e = split.random_embeddings(batches[2])
        n = len(e)
        with autocast():
            low = stage1(e, torch.randn(n, cfg.model.z_dim, device=dev.device),
                         torch.randn(n, cfg.model.ca_dim, device=dev.device))[0]  # fmt: skip
            stage2(low.contiguous(memory_format=channels_last), e,
                   torch.randn(n, cfg.model.ca_dim, device=dev.device))  # fmt: skip

    precise_batchnorm(torch, stage2, stage2_forward)
    print(f"stage 2 peak memory: {dev.peak_memory_gib()[0]:.1f} GiB allocated", flush=True)

    os.makedirs(args.out, exist_ok=True)
    for number, split_name in enumerate(("train", "test")):
        embeddings = data[f"eval_{split_name}_embeddings"]
        low, high = generate(torch, stage1, stage2, cfg, embeddings, args.seed + number,
                             dev.device, autocast)  # fmt: skip
        extra = {}
        if split_name == "train":
            extra = {"progress": np.stack(progress), "progress_steps": np.asarray(progress_steps)}
        save_generated(args.out, split_name, embeddings, low, high, [steps1, steps2], **extra)


if __name__ == "__main__":
    main()

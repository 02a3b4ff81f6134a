"""Input pipeline throughput: batches/s of 64 at 64x64 (stage 1) and 256x256 (stage 2).

Converts a replica dataset (real CUB photos, random embeddings) with the paper profile's sizes
(76/304 stored) once per image encoding, then times `make_train_dataset(..., repeat=True)`
after a warm-up, twice: streamed from the files (`data.cache_decoded_mb=0`) and with the
decoded images kept in memory (the default where they fit; the warm-up then covers one whole
epoch, which fills the cache), each with the elements kept in order (`data.ordered=true`, the
default: reproducible runs) and, with `--orders ordered unordered`, without. The whole machine
is used (this project's CPU hosts have 2 cores). Run:

    .venv/bin/python bench/bench_input_pipeline.py [--images 640] [--batches 20]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import platform
import tempfile
import time
from pathlib import Path

import apache_beam as beam
from replica_dataset import write_replica

from stackgan import config
from stackgan.components.cub_example_gen import generate
from stackgan.tfrecords import input_pipeline

REPO = Path(__file__).resolve().parents[1]


def batches_per_second(
    pattern: str, cfg, stage: int, batch_size: int, batches: int, warmup: int
) -> float:
    ds = input_pipeline.make_train_dataset(pattern, cfg, stage, batch_size, repeat=True)
    iterator = iter(ds)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=640)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sample", type=Path, default=REPO.parent / "shared" / "cub-sample")
    parser.add_argument("--encodings", nargs="+", default=["png", "jpeg", "raw"])
    parser.add_argument(
        "--orders", nargs="+", default=["ordered"], choices=["ordered", "unordered"]
    )
    args = parser.parse_args()
    print(
        f"host: {platform.machine()}, {os.cpu_count()} CPUs, load average"
        f" {os.getloadavg()[0]:.1f}; {args.images} replica images, batch {args.batch_size}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = write_replica(args.sample, Path(tmp) / "data", args.images, embeddings=True)
        for encoding in args.encodings:
            cfg = config.paper().replace(data={"image_encoding": encoding, "shuffle_buffer": 512})
            out = Path(tmp) / f"examples-{encoding}"
            generate.generate_examples(
                root, cfg, str(out), lambda: beam.Pipeline(runner="FnApiRunner")
            )
            pattern = str(out / "Split-train" / "*.gz")
            epoch = -(-args.images * 8 // 10 // args.batch_size)  # ~80 % of them are train
            for stage, size in ((1, cfg.data.low_res), (2, cfg.data.high_res)):
                for mode, cache_mb, warmup in (("streamed", 0, 3), ("cached", 4096, epoch + 3)):
                    for order in args.orders:
                        run_cfg = cfg.replace(
                            data={"cache_decoded_mb": cache_mb, "ordered": order == "ordered"}
                        )
                        if (
                            cache_mb
                            and input_pipeline.decoded_cache_bytes(args.images, run_cfg, stage)
                            > cache_mb * 2**20
                        ):
                            continue
                        rate = batches_per_second(
                            pattern, run_cfg, stage, args.batch_size, args.batches, warmup
                        )
                        print(
                            f"{encoding:<5} stage {stage} ({size}x{size}) {mode:<8} {order:<9}:"
                            f" {rate:6.2f} batches/s = {rate * args.batch_size:7.0f} images/s"
                            " (+ as many wrong images)",
                            flush=True,
                        )


if __name__ == "__main__":
    main()

"""Chooses data.image_encoding: size on disk and tf.data decode cost of PNG / JPEG / raw.

Takes the 304x304 and 76x76 stored crops of the real images in the CUB sample, encodes them
each way, and reports bytes per record (also after the gzip the TFRecord shards get), encode
time (PIL, in the Beam workers) and decode throughput of the 304 crops in tf.data (the
trainers' hot path, one thread and all threads). Run:

    .venv/bin/python bench/bench_image_encoding.py [--data ../shared/cub-sample]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import platform
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from stackgan.components.cub_example_gen import convert
from stackgan.config import DataConfig
from stackgan.data import cub


def stored_crops(root: Path, data: DataConfig) -> list[tuple[Image.Image, Image.Image]]:
    crops = []
    for _, example in cub.CubDataset(root):
        image, _, _ = convert.load_rgb(example.image_path)
        crops.append(
            convert.stored_crops(image, example.bbox, data.high_res_stored, data.low_res_stored)
        )
    return crops


def decode_throughput(encoded: list[bytes], encoding: str, size: int, threads: int) -> float:
    import tensorflow as tf

    def decode(data):
        if encoding == "raw":
            return tf.reshape(tf.io.decode_raw(data, tf.uint8), [size, size, 3])
        return tf.io.decode_image(data, channels=3, expand_animations=False)

    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    repeats = max(1, 2000 // len(encoded))
    ds = (
        tf.data.Dataset.from_tensor_slices(encoded)
        .repeat(repeats)
        .map(decode, num_parallel_calls=threads)
        .with_options(options)
    )
    for _ in ds.take(len(encoded)):  # warm-up
        pass
    start = time.perf_counter()
    count = sum(1 for _ in ds)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "cub-sample"
    parser.add_argument("--data", type=Path, default=default)
    args = parser.parse_args()
    data = DataConfig()
    crops = stored_crops(args.data, data)
    print(
        f"{len(crops)} real CUB crops ({data.high_res_stored} + {data.low_res_stored}) on"
        f" {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(
        f"{'encoding':<14}{'bytes/rec':>10}{'gzipped':>10}{'encode ms':>11}"
        f"{'decode/s 1thr':>15}{'decode/s all':>14}{'max |err|':>10}"
    )
    reference = [np.asarray(high) for high, _ in crops]
    variants = [("png", None), ("png level 6", 6), ("jpeg q95", None), ("raw", None)]
    for name, level in variants:
        encoding = name.split()[0]
        start = time.perf_counter()
        encoded_high, total = [], 0
        for high, low in crops:
            if level is not None:
                saved = convert.PNG_COMPRESS_LEVEL
                convert.PNG_COMPRESS_LEVEL = level
            h, lo = convert.encode_image(high, encoding), convert.encode_image(low, encoding)
            if level is not None:
                convert.PNG_COMPRESS_LEVEL = saved
            encoded_high.append(h)
            total += len(h) + len(lo)
        encode_ms = 1000 * (time.perf_counter() - start) / len(crops)
        gzipped = sum(len(zlib.compress(h)) for h in encoded_high) / len(crops)
        gzipped *= total / sum(len(h) for h in encoded_high)  # scale in the 76 crops
        import tensorflow as tf

        error = 0
        for h, ref in zip(encoded_high[:20], reference[:20]):
            if encoding == "raw":
                decoded = np.frombuffer(h, np.uint8).reshape(ref.shape)
            else:
                decoded = tf.io.decode_image(h, channels=3).numpy()
            error = max(error, int(np.abs(decoded.astype(int) - ref).max()))
        size = data.high_res_stored
        one = decode_throughput(encoded_high, encoding, size, 1)
        every = decode_throughput(encoded_high, encoding, size, os.cpu_count() or 1)
        print(
            f"{name:<14}{total / len(crops):>10.0f}{gzipped:>10.0f}{encode_ms:>11.2f}"
            f"{one:>15.0f}{every:>14.0f}{error:>10}"
        )


if __name__ == "__main__":
    main()

"""Chooses data.image_encoding: size on disk, write cost and tf.data read cost of PNG / JPEG /
raw crops inside gzipped TFRecords (the format of the Examples artifact).

Takes the 304x304 and 76x76 stored crops of the real images in the CUB sample, and for each
encoding: encodes them as the converter does and writes them with its shard writer (gzip), then
reads the file back in tf.data and decodes the 304 crops (the trainers' hot path, with one
thread and with every core). Also the largest pixel error after decoding. Run:

    .venv/bin/python bench/bench_image_encoding.py [--data ../shared/cub-sample]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from stackgan.components.cub_example_gen import convert
from stackgan.config import DataConfig
from stackgan.data import cub
from stackgan.tfrecords.shard_writer import TFRecordShardWriter

REPEAT = 4  # each crop written this many times, so timings cover ~400 records


def stored_crops(root: Path, data: DataConfig):
    crops = []
    for _, example in cub.CubDataset(root):
        image, _, _ = convert.load_rgb(example.image_path)
        crops.append(
            convert.stored_crops(image, example.bbox, data.high_res_stored, data.low_res_stored)
        )
    return crops


def write(path: str, crops, encoding: str) -> float:
    """Seconds per record to encode both crops and write them, gzipped."""
    start = time.perf_counter()
    with TFRecordShardWriter(path) as writer:
        for _ in range(REPEAT):
            for high, low in crops:
                writer.write(convert.encode_image(high, encoding))
                writer.write(convert.encode_image(low, encoding))
    return (time.perf_counter() - start) / (REPEAT * len(crops))


def read_rate(path: str, encoding: str, size: int, threads: int) -> float:
    """304 crops per second through TFRecordDataset(GZIP) -> decode."""
    import tensorflow as tf

    def decode(data):
        if encoding == "raw":
            return tf.reshape(tf.io.decode_raw(data, tf.uint8), [size, size, 3])
        return tf.io.decode_image(data, channels=3, expand_animations=False)

    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    ds = (
        tf.data.TFRecordDataset(path, compression_type="GZIP")
        .shard(2, 0)  # the 304 crops (records alternate 304, 76)
        .map(decode, num_parallel_calls=threads)
        .with_options(options)
    )
    sum(1 for _ in ds.take(50))  # warm-up
    start = time.perf_counter()
    count = sum(1 for _ in ds)
    return count / (time.perf_counter() - start)


def max_error(crops, encoding: str) -> int:
    import tensorflow as tf

    error = 0
    for high, _ in crops:
        reference = np.asarray(high)
        encoded = convert.encode_image(high, encoding)
        if encoding == "raw":
            decoded = np.frombuffer(encoded, np.uint8).reshape(reference.shape)
        else:
            decoded = tf.io.decode_image(encoded, channels=3).numpy()
        error = max(error, int(np.abs(decoded.astype(int) - reference).max()))
    return error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "cub-sample"
    parser.add_argument("--data", type=Path, default=default)
    args = parser.parse_args()
    data = DataConfig()
    crops = stored_crops(args.data, data)
    print(
        f"{len(crops)} real CUB crops ({data.high_res_stored} + {data.low_res_stored}) x{REPEAT};"
        f" {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'encoding':<10}{'KB/record':>10}{'write ms/rec':>14}{'read 304/s 1 thread':>21}"
        f"{'read 304/s all':>16}{'max |err|':>11}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for encoding in convert.IMAGE_ENCODINGS:
            path = f"{tmp}/{encoding}.gz"
            write_s = write(path, crops, encoding)
            kb = os.path.getsize(path) / (REPEAT * len(crops)) / 1024
            one = read_rate(path, encoding, data.high_res_stored, 1)
            every = read_rate(path, encoding, data.high_res_stored, os.cpu_count() or 1)
            print(
                f"{encoding:<10}{kb:>10.1f}{1000 * write_s:>14.2f}{one:>21.0f}{every:>16.0f}"
                f"{max_error(crops, encoding):>11}"
            )


if __name__ == "__main__":
    main()

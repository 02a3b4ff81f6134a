"""How CubExampleGen writes a shard: images converted on several threads but written in order,
never more than a few in memory, gzip stored for JPEG/PNG records and deflated for raw ones."""

from __future__ import annotations

import gzip
import threading
import time

import pytest

from stackgan.components.cub_example_gen import transforms


def test_ordered_map_keeps_order_and_bounds_what_is_in_flight():
    lock = threading.Lock()
    consumed = 0
    seen_threads = set()

    def items():
        nonlocal consumed
        for i in range(40):
            with lock:
                consumed += 1
            yield i

    def slow_square(i):
        seen_threads.add(threading.current_thread().name)
        time.sleep(0.002 * (i % 3))  # finish out of order
        return i * i

    results = []
    for value in transforms.ordered_map(slow_square, items(), threads=3):
        # read ahead at most 2 x threads items beyond what was handed out
        assert consumed - len(results) <= 2 * 3
        results.append(value)
    assert results == [i * i for i in range(40)]
    assert len(seen_threads) > 1  # it did run on several threads


def test_ordered_map_passes_errors_on():
    def fail_on_five(i):
        if i == 5:
            raise ValueError("five")
        return i

    with pytest.raises(ValueError, match="five"):
        list(transforms.ordered_map(fail_on_five, range(10), threads=2))


@pytest.mark.parametrize(("encoding", "stored"), [("jpeg", True), ("png", True), ("raw", False)])
def test_shards_are_gzip_stored_or_deflated_by_encoding(tmp_path, encoding, stored):
    import numpy as np
    import tensorflow as tf

    level = transforms.GZIP_LEVELS[encoding]
    # raw-like records (smooth pixels) that deflate well
    records = [np.repeat(np.arange(256, dtype=np.uint8), 64).tobytes() for _ in range(5)]
    path = str(tmp_path / "shard.gz")
    with transforms._ShardFile(path, level) as writer:
        for record in records:
            writer.write(record)
    assert writer.count == 5
    size = (tmp_path / "shard.gz").stat().st_size
    framed = sum(len(r) + 16 for r in records)  # TFRecord framing: 16 bytes a record
    if stored:
        assert size >= framed  # level 0: stored blocks, nothing saved
    else:
        assert size < 0.2 * framed
    assert len(gzip.decompress((tmp_path / "shard.gz").read_bytes())) == framed
    read = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    assert read == records

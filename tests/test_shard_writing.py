"""How CubExampleGen writes a shard: images converted on several threads but written in order,
never more than a few in memory, gzip stored for JPEG/PNG records and deflated for raw ones;
the shard writer's gzip at any level is what tf.data reads with compression GZIP."""

from __future__ import annotations

import gzip
import threading
import time

import pytest

from stackgan.components.cub_example_gen import transforms
from stackgan.tfrecords import shard_writer


def _tf_records(path) -> list[bytes]:
    import tensorflow as tf

    return [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")]


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
    assert _tf_records(path) == records


def test_gzip_levels_are_the_documented_choice():
    # stored JPEG/PNG (deflate saves 0-3 % of them for ~1 ms a record), deflated raw pixels
    assert transforms.GZIP_LEVELS == {"jpeg": 0, "png": 0, "raw": 1}


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_every_level_writes_gzip_that_tf_data_reads(tmp_path, level):
    import numpy as np

    rng = np.random.default_rng(level)
    # a record that deflates (a repeated pattern) and one that does not (noise), an empty one
    records = [bytes(range(256)) * 300, rng.bytes(70_000), b""]
    path = tmp_path / "shard.gz"
    with shard_writer.TFRecordShardWriter(str(path), level) as writer:
        for record in records:
            writer.write(record)
    assert writer.count == 3
    data = path.read_bytes()
    assert data[:3] == b"\x1f\x8b\x08"  # gzip magic, deflate
    framed = sum(len(r) + 16 for r in records)
    assert len(gzip.decompress(data)) == framed
    if level == 0:
        assert len(data) >= framed  # stored blocks: nothing saved
    else:
        assert len(data) < framed - 0.9 * len(records[0])  # the pattern deflated
    assert _tf_records(path) == records


def test_default_level_writes_what_beams_gzip_writer_writes(tmp_path):
    """The caption embedder's shards keep Beam's GZIP bytes (zlib's default level 6)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.io.tfrecordio import _TFRecordUtil

    records = [bytes(range(256)) * 40, b"caption " * 500, b"x"]
    ours, beams = tmp_path / "ours.gz", tmp_path / "beams.gz"
    with shard_writer.TFRecordShardWriter(str(ours)) as writer:
        for record in records:
            writer.write(record)
    with FileSystems.create(str(beams), compression_type=CompressionTypes.GZIP) as f:
        for record in records:
            _TFRecordUtil.write_record(f, record)
    assert ours.read_bytes() == beams.read_bytes()


def test_a_level_outside_0_to_9_is_refused(tmp_path):
    with pytest.raises(ValueError, match="compresslevel must be 0-9, got 10"):
        shard_writer.TFRecordShardWriter(str(tmp_path / "shard.gz"), 10)


def test_a_shard_rewritten_at_another_level_replaces_the_first(tmp_path):
    path = str(tmp_path / "shard.gz")
    for level, records in ((6, [b"first"] * 3), (0, [b"second"])):
        with shard_writer.TFRecordShardWriter(path, level) as writer:
            for record in records:
                writer.write(record)
    assert _tf_records(path) == [b"second"]


def test_real_jpeg_records_are_stored_and_read_back(cub_sample_root, tmp_path):
    """Records of real CUB photos, written as CubExampleGen writes JPEG shards."""
    from stackgan import config
    from stackgan.components.cub_example_gen import convert
    from stackgan.data import cub

    data = config.paper().data
    assert data.image_encoding == "jpeg"
    examples = [example for _, example in cub.CubDataset(cub_sample_root)][:8]
    records = [convert.convert_example(e, data, None).example for e in examples]
    path = tmp_path / "shard.gz"
    with transforms._ShardFile(str(path), transforms.GZIP_LEVELS["jpeg"]) as writer:
        for record in records:
            writer.write(record)
    framed = sum(len(r) + 16 for r in records)
    # stored: gzip's 18 bytes of header and trailer, 5 bytes a block of at most 64 KB (a record
    # may end a block), and nothing saved
    blocks = framed // 65535 + len(records) + 1
    assert framed < path.stat().st_size <= framed + 18 + 5 * blocks
    assert _tf_records(path) == records

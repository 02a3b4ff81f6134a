"""Writes one gzipped TFRecord shard through Beam's file systems (local, gs://, hdfs://, ...).

Why not `beam.io.WriteToTFRecord`: with a fixed shard count it groups every record of a split
by shard key first, and Beam's DirectRunner holds a GroupByKey's input in memory, so the whole
split of encoded images would sit in RAM. Here a shard is one unit of work that streams its
records to disk, so memory stays at one image whatever the dataset size.
"""

from __future__ import annotations

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

# Beam's TFRecord framing (length, masked CRC32C of length, data, masked CRC32C of data), the
# same code WriteToTFRecord uses; it is not exported under a public name.
from apache_beam.io.tfrecordio import _TFRecordUtil

# TFX ExampleGen's file naming, so TFX tooling globbing Split-*/* finds the shards.
SHARD_PREFIX = "data_tfrecord"


def shard_name(index: int, num_shards: int) -> str:
    return f"{SHARD_PREFIX}-{index:05d}-of-{num_shards:05d}.gz"


class TFRecordShardWriter:
    """`with TFRecordShardWriter(path) as w: w.write(record)`; overwrites `path`, so a retried
    unit of work rewrites its shard from scratch."""

    def __init__(self, path: str):
        self.path = path
        self.count = 0
        self._file = None

    def __enter__(self) -> TFRecordShardWriter:
        self._file = FileSystems.create(self.path, compression_type=CompressionTypes.GZIP)
        return self

    def write(self, record: bytes) -> None:
        _TFRecordUtil.write_record(self._file, record)
        self.count += 1

    def __exit__(self, *exc_info) -> None:
        self._file.close()

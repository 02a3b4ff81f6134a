"""Writes one gzipped TFRecord shard through Beam's file systems (local, gs://, hdfs://, ...).

Why not `beam.io.WriteToTFRecord`: with a fixed shard count it groups every record of a split
by shard key first, and Beam's DirectRunner holds a GroupByKey's input in memory, so the whole
split of encoded images would sit in RAM. Here a shard is one unit of work that streams its
records to disk, so memory stays at one image whatever the dataset size.

The gzip stream is our own `zlib` compressor over an uncompressed Beam file, because Beam's
GZIP writer has no level (it always deflates at zlib's default, 6). Any level makes the same
format: a .gz file that tf.data reads with `compression_type="GZIP"` and TFX with its GZIP
payload format; level 0 stores the data (deflate's "stored" blocks, no compression).
"""

from __future__ import annotations

import zlib

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

# Beam's TFRecord framing (length, masked CRC32C of length, data, masked CRC32C of data), the
# same code WriteToTFRecord uses; it is not exported under a public name.
from apache_beam.io.tfrecordio import _TFRecordUtil

# TFX ExampleGen's file naming, so TFX tooling globbing Split-*/* finds the shards.
SHARD_PREFIX = "data_tfrecord"
# zlib's default, what Beam's own GZIP writer uses
DEFAULT_COMPRESSLEVEL = 6
# wbits 16 + 15: a gzip header and trailer around a deflate stream with a 32 KB window
_GZIP_WBITS = 31


def shard_name(index: int, num_shards: int) -> str:
    return f"{SHARD_PREFIX}-{index:05d}-of-{num_shards:05d}.gz"


class _GzipStream:
    """A write-only gzip stream over `raw` (a Beam file opened uncompressed)."""

    def __init__(self, raw, compresslevel: int):
        self._raw = raw
        self._compressor = zlib.compressobj(compresslevel, zlib.DEFLATED, _GZIP_WBITS)

    def write(self, data: bytes) -> None:
        compressed = self._compressor.compress(data)
        if compressed:
            self._raw.write(compressed)

    def close(self) -> None:
        try:
            self._raw.write(self._compressor.flush())
        finally:
            self._raw.close()


class TFRecordShardWriter:
    """`with TFRecordShardWriter(path) as w: w.write(record)`; overwrites `path`, so a retried
    unit of work rewrites its shard from scratch. `compresslevel`: zlib's 0 (stored) to 9."""

    def __init__(self, path: str, compresslevel: int = DEFAULT_COMPRESSLEVEL):
        if not 0 <= compresslevel <= 9:
            raise ValueError(f"compresslevel must be 0-9, got {compresslevel}")
        self.path = path
        self.compresslevel = compresslevel
        self.count = 0
        self._file: _GzipStream | None = None

    def __enter__(self) -> TFRecordShardWriter:
        raw = FileSystems.create(self.path, compression_type=CompressionTypes.UNCOMPRESSED)
        self._file = _GzipStream(raw, self.compresslevel)
        return self

    def write(self, record: bytes) -> None:
        _TFRecordUtil.write_record(self._file, record)
        self.count += 1

    def __exit__(self, *exc_info) -> None:
        self._file.close()

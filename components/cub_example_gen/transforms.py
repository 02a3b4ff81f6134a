"""The Beam side of CUB -> Examples: shard planning and the PTransform that writes shards.

A shard is the unit of work: `ShardTask` names the images of one shard (metadata only), and
`CubToTFRecordShards` turns each task into one gzipped TFRecord file, streaming image by image,
plus a `ShardResult` (counts, and which files were skipped or converted, and why). Nothing ever
holds a split's images in memory, on any runner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import socket
from pathlib import Path

import apache_beam as beam
from apache_beam.metrics import Metrics

from stackgan.components.cub_example_gen import convert
from stackgan.data import cub
from stackgan.tfrecords import shard_writer

# ~500 records of ~90 KB (JPEG crops ~50 KB + 40 KB of embeddings) = ~45 MB shards: the 8,855
# CUB training images make 18 shards, enough to spread over workers and interleave in tf.data.
RECORDS_PER_SHARD = 500
METRICS_NAMESPACE = "cub_example_gen"


@dataclasses.dataclass(frozen=True)
class ShardTask:
    split: str
    index: int
    num_shards: int
    examples: tuple[cub.CubExample, ...]
    missing: tuple[str, ...] = ()  # filenames the split names that are not on disk


@dataclasses.dataclass(frozen=True)
class Incident:
    """One skipped or converted image, for the report."""

    split: str
    filename: str
    image_id: int | None
    reason: str
    detail: str


@dataclasses.dataclass(frozen=True)
class ShardResult:
    split: str
    index: int
    path: str
    written: int
    skipped: tuple[Incident, ...]
    converted: tuple[Incident, ...]
    worker: str = ""  # "<host>:<pid>" of the process that wrote the shard


def num_shards_for(count: int, configured: int) -> int:
    """`data.num_shards` when set, else one shard per RECORDS_PER_SHARD records (at least 1)."""
    if configured > 0:
        return configured
    return max(1, math.ceil(count / RECORDS_PER_SHARD))


def plan_shards(dataset: cub.CubDataset, num_shards: int = 0) -> list[ShardTask]:
    """The shard tasks of both splits. Images go round-robin, so every shard mixes classes
    (split lists are sorted by class)."""
    tasks = []
    for split in cub.SPLITS:
        examples = dataset.split(split)
        missing = dataset.reports[split].missing
        shards = num_shards_for(len(examples), num_shards)
        for index in range(shards):
            tasks.append(
                ShardTask(
                    split=split,
                    index=index,
                    num_shards=shards,
                    examples=tuple(examples[index::shards]),
                    missing=tuple(missing[index::shards]),
                )
            )
    return tasks


def split_dir(output_dir: str, split: str) -> str:
    """TFX's layout of an Examples artifact: one `Split-<name>` folder per split."""
    return f"{output_dir.rstrip('/')}/Split-{split}"


class _WriteShardFn(beam.DoFn):
    def __init__(self, data_config, output_dir: str, embedding_files: tuple[Path, ...]):
        self._data_config = data_config
        self._output_dir = output_dir
        self._embedding_files = embedding_files
        self._embeddings: cub.EmbeddingStore | None = None

    def setup(self):
        # One load of each embeddings pickle per worker, from the worker's own disk view:
        # the arrays never travel through the pipeline graph.
        if self._embedding_files:
            self._embeddings = cub.EmbeddingStore()
            for path in self._embedding_files:
                self._embeddings.get((path, 0))

    def process(self, task: ShardTask):
        name = shard_writer.shard_name(task.index, task.num_shards)
        path = f"{split_dir(self._output_dir, task.split)}/{name}"
        skipped, converted = [], []
        with _ShardFile(path) as writer:
            outcomes = (
                convert.convert_example(e, self._data_config, self._embeddings)
                for e in task.examples
            )
            for outcome in outcomes:
                if outcome.skip_reason is not None:
                    skipped.append(_incident(task.split, outcome, outcome.skip_reason))
                    continue
                writer.write(outcome.example)
                Metrics.counter(METRICS_NAMESPACE, f"written_{task.split}").inc()
                for conversion in outcome.conversions:
                    Metrics.counter(METRICS_NAMESPACE, f"converted_{conversion}").inc()
                    converted.append(_incident(task.split, outcome, conversion))
        skipped.extend(
            _incident(task.split, convert.missing_outcome(name), convert.MISSING_FILE)
            for name in task.missing
        )
        for incident in skipped:
            Metrics.counter(METRICS_NAMESPACE, f"skipped_{incident.reason}").inc()
        yield ShardResult(
            split=task.split,
            index=task.index,
            path=path,
            written=writer.count,
            skipped=tuple(skipped),
            converted=tuple(converted),
            worker=f"{socket.gethostname()}:{os.getpid()}",
        )


class _ShardFile(shard_writer.TFRecordShardWriter):
    """The shard writer, naming its file in I/O errors (a full disk, a read-only bucket): the
    runner re-raises a worker's error as text, and "No space left on device" alone does not
    say where."""

    def __enter__(self) -> _ShardFile:
        with self._naming():
            return super().__enter__()

    def write(self, record: bytes) -> None:
        with self._naming():
            super().write(record)

    def __exit__(self, *exc_info) -> None:
        with self._naming():
            super().__exit__(*exc_info)

    @contextlib.contextmanager
    def _naming(self):
        try:
            yield
        except OSError as e:
            raise OSError(e.errno, f"writing {self.path}: {e.strerror or e}") from e


def _incident(split: str, outcome: convert.Outcome, reason: str) -> Incident:
    return Incident(split, outcome.filename, outcome.image_id, reason, outcome.detail)


class CubToTFRecordShards(beam.PTransform):
    """PCollection[ShardTask] -> PCollection[ShardResult]; writes
    `<output_dir>/Split-<split>/data_tfrecord-<i>-of-<n>.gz` for each task.

    `embedding_files`: the dataset's embeddings pickles (empty when it has none; then the
    Examples lack the `embedding` feature and no image is skipped for lacking one).
    """

    def __init__(self, data_config, output_dir: str, embedding_files: tuple[Path, ...] = ()):
        super().__init__()
        self._fn = _WriteShardFn(data_config, output_dir, tuple(embedding_files))

    def expand(self, tasks):
        return tasks | "ConvertAndWriteShard" >> beam.ParDo(self._fn)

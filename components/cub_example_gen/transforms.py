"""The Beam side of CUB -> Examples: shard planning and the PTransform that writes shards.

A shard is the unit of work: `ShardTask` names the images of one shard (metadata only), and
`CubToTFRecordShards` turns each task into one gzipped TFRecord file, streaming image by image,
plus a `ShardResult` (counts, and which files were skipped or converted, and why). Nothing ever
holds a split's images in memory, on any runner.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import math
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from stackgan.components.cub_example_gen import convert
from stackgan.data import cub
from stackgan.tfrecords import shard_writer

# ~500 records of ~90 KB (JPEG crops ~50 KB + 40 KB of embeddings) = ~45 MB shards: the 8,855
# CUB training images make 18 shards, enough to spread over workers and interleave in tf.data.
RECORDS_PER_SHARD = 500
METRICS_NAMESPACE = "cub_example_gen"
# The shards' gzip level by data.image_encoding (tfrecords/shard_writer.py). Writing the real
# CUB sample's paper-size records (`bench/bench_preprocess.py --gzip-levels`, 2-core Xeon):
#   jpeg, 52 KB a record: level 0 0.05 ms a record; level 1 0.92 ms, -2.5 %; level 6 1.0 ms, -2.6 %
#   png, 167 KB:          level 0 0.14 ms;          level 1 2.7 ms,  -0.2 %; level 6 2.9 ms, -0.2 %
#   raw, 296 KB:          level 0 0.23 ms;          level 1 4.7 ms,  -28 %;  level 6 7.5 ms, -29 %
# Deflating JPEG/PNG crops (compressed already) would add a quarter to an image's ~4 ms of
# conversion to save 0-3 %, so they are stored (level 0: still gzip, read with
# compression_type="GZIP"); raw pixels shrink by 28 % at level 1, 1.6x faster than at 6.
GZIP_LEVELS = {"jpeg": 0, "png": 0, "raw": 1}
# Images converted at once in one worker. PIL decodes, resizes and encodes without holding
# Python's GIL, so threads use the cores a single Beam worker would leave idle; a shard's
# records are still written in order, and at most 2 x this many images are held at a time.
CONVERT_THREADS = max(1, min(4, len(os.sched_getaffinity(0))))


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


def result_path(results_dir: str, split: str, index: int) -> str:
    return f"{results_dir.rstrip('/')}/{split}-{index:05d}.json"


def read_shard_results(results_dir: str) -> list[ShardResult]:
    """The ShardResults that `CubToTFRecordShards(..., results_dir=...)` wrote."""
    results = []
    pattern = f"{results_dir.rstrip('/')}/*.json"
    for match in FileSystems.match([pattern])[0].metadata_list:
        with FileSystems.open(match.path) as f:
            values = json.loads(f.read().decode())
        values["skipped"] = tuple(Incident(**i) for i in values["skipped"])
        values["converted"] = tuple(Incident(**i) for i in values["converted"])
        results.append(ShardResult(**values))
    return results


class _WriteShardFn(beam.DoFn):
    def __init__(
        self,
        data_config,
        output_dir: str,
        embedding_files: tuple[Path, ...],
        results_dir: str | None,
    ):
        self._data_config = data_config
        self._output_dir = output_dir
        self._embedding_files = embedding_files
        self._results_dir = results_dir
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
        level = GZIP_LEVELS[self._data_config.image_encoding]
        with _ShardFile(path, level) as writer:
            outcomes = ordered_map(
                lambda e: convert.convert_example(e, self._data_config, self._embeddings),
                task.examples,
                CONVERT_THREADS,
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
        result = ShardResult(
            split=task.split,
            index=task.index,
            path=path,
            written=writer.count,
            skipped=tuple(skipped),
            converted=tuple(converted),
            worker=f"{socket.gethostname()}:{os.getpid()}",
        )
        if self._results_dir is not None:
            result_file = result_path(self._results_dir, task.split, task.index)
            with _naming(result_file), FileSystems.create(result_file) as f:
                f.write(json.dumps(dataclasses.asdict(result)).encode())
        yield result


def ordered_map(function: Callable, items: Iterable, threads: int) -> Iterator:
    """`map(function, items)` on `threads` threads, in order, with at most 2 x `threads` items
    in flight (a shard's images are never all in memory)."""
    if threads <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="convert") as pool:
        pending: collections.deque = collections.deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _ShardFile(shard_writer.TFRecordShardWriter):
    """The shard writer naming its file in I/O errors (a full disk, a read-only bucket): the
    runner re-raises a worker's error as text, and "No space left on device" alone does not
    say where."""

    def __enter__(self) -> _ShardFile:
        with _naming(self.path):
            super().__enter__()
            return self

    def write(self, record: bytes) -> None:
        with _naming(self.path):
            super().write(record)

    def __exit__(self, *exc_info) -> None:
        with _naming(self.path):
            super().__exit__(*exc_info)


@contextlib.contextmanager
def _naming(path: str):
    """Re-raises an OSError naming `path`."""
    try:
        yield
    except OSError as e:
        raise OSError(e.errno, f"writing {path}: {e.strerror or e}") from e


def _incident(split: str, outcome: convert.Outcome, reason: str) -> Incident:
    return Incident(split, outcome.filename, outcome.image_id, reason, outcome.detail)


class CubToTFRecordShards(beam.PTransform):
    """PCollection[ShardTask] -> PCollection[ShardResult]; writes
    `<output_dir>/Split-<split>/data_tfrecord-<i>-of-<n>.gz` for each task.

    `embedding_files`: the dataset's embeddings pickles (empty when it has none; then the
    Examples lack the `embedding` feature and no image is skipped for lacking one).
    `results_dir`: where each task also writes its ShardResult as JSON when its shard is done
    (`read_shard_results` reads them back): a driver gets the results of any runner without a
    WriteToText after this step, whose extra stages cost ~0.25 s of a DirectRunner run.
    """

    def __init__(
        self,
        data_config,
        output_dir: str,
        embedding_files: tuple[Path, ...] = (),
        results_dir: str | None = None,
    ):
        super().__init__()
        self._fn = _WriteShardFn(data_config, output_dir, tuple(embedding_files), results_dir)

    def expand(self, tasks):
        return tasks | "ConvertAndWriteShard" >> beam.ParDo(self._fn)

"""The Beam job of the caption embedder: every Examples shard rewritten with embeddings.

One unit of work is one input shard, written to an output shard of the same name, so the
output keeps the input's Split-*/ layout and shard count and memory stays at one batch of
records. Each tf.Example keeps every feature byte for byte except `captions` (filled to
`captions_per_image` by `stackgan.text.caption_slots`) and `embedding` (one row per caption,
from the text-encoder SavedModel). Every written record is checked against the schema's
WITH_EMBEDDINGS environment. Each shard's counts come out of the transform as data (the
executor totals them from what the job wrote), and also go to Beam counters for monitoring:
not every runner reports committed metrics.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re

import apache_beam as beam
import numpy as np

from stackgan.schemas import conformance, features
from stackgan.text.caption_slots import fill_caption_slots
from stackgan.tfrecords.shard_writer import TFRecordShardWriter

NAMESPACE = "caption_embedder"
# Beam counters (namespace NAMESPACE)
WRITTEN = "examples_written"
SKIPPED_NO_CAPTIONS = "skipped_no_captions"  # no non-blank caption: nothing to embed
CYCLED = "examples_with_cycled_captions"  # fewer than captions_per_image, repeated
TRUNCATED = "examples_with_extra_captions"  # more than captions_per_image, extra dropped
BLANK_DROPPED = "blank_captions_dropped"
COUNTERS = (WRITTEN, SKIPPED_NO_CAPTIONS, CYCLED, TRUNCATED, BLANK_DROPPED)


def split_counter(split: str) -> str:
    """Counter of the examples written to one split (CubExampleGen's property name)."""
    return f"num_{split}"


@dataclasses.dataclass(frozen=True)
class ShardJob:
    split: str
    input_path: str
    output_path: str


def shard_jobs(input_uri: str, output_uri: str, splits: list[str]) -> list[ShardJob]:
    """One job per file under <input_uri>/Split-<split>/, written under the same name in
    <output_uri>/Split-<split>/."""
    import tensorflow as tf

    jobs = []
    for split in splits:
        in_dir = os.path.join(input_uri, f"Split-{split}")
        files = sorted(tf.io.gfile.glob(os.path.join(in_dir, "*")))
        if not files:
            raise FileNotFoundError(f"{in_dir}: no Examples shards")
        out_dir = os.path.join(output_uri, f"Split-{split}")
        tf.io.gfile.makedirs(out_dir)
        jobs.extend(ShardJob(split, f, os.path.join(out_dir, os.path.basename(f))) for f in files)
    return jobs


def _read_records(path: str):
    import tensorflow as tf

    compression = "GZIP" if path.endswith(".gz") else ""
    for record in tf.data.TFRecordDataset(path, compression_type=compression):
        yield record.numpy()


def shard_counts(job: ShardJob, counts: collections.Counter) -> dict:
    """The JSON-able record of one shard: its split, input file and every COUNTERS count."""
    return {"split": job.split, "input_path": job.input_path, **{n: counts[n] for n in COUNTERS}}


class EmbedShard(beam.DoFn):
    """ShardJob -> its output shard written; yields the shard's `shard_counts`."""

    def __init__(self, encoder_dir: str, batch_records: int = 64):
        self._encoder_dir = encoder_dir
        self._batch_records = batch_records

    def setup(self):
        from stackgan.text.export import TextEncoder

        self._encoder = TextEncoder(self._encoder_dir)
        self._slots, dim = features.feature_shape(features.EMBEDDING)
        if self._encoder.embedding_dim != dim:
            raise ValueError(
                f"{self._encoder_dir}: the text encoder makes {self._encoder.embedding_dim}-d"
                f" embeddings, the Examples schema ({features.SCHEMA_PATH}) declares {dim}"
            )

    def process(self, job: ShardJob):
        from tensorflow.core.example import example_pb2

        counts = collections.Counter()
        with TFRecordShardWriter(job.output_path) as writer:
            pending = []  # (record index, Example, captions)
            for index, serialized in enumerate(_read_records(job.input_path)):
                try:
                    example = example_pb2.Example.FromString(serialized)
                except Exception as e:  # protobuf's DecodeError and friends
                    raise ValueError(
                        f"{job.input_path}: record {index}: not a tf.Example ({e})"
                    ) from None
                slots = self._fill(example, counts)
                if not slots:
                    continue
                pending.append((index, example, slots))
                if len(pending) == self._batch_records:
                    counts[WRITTEN] += self._flush(job, pending, writer)
                    pending = []
            counts[WRITTEN] += self._flush(job, pending, writer)
        for name in COUNTERS:
            beam.metrics.Metrics.counter(NAMESPACE, name).inc(counts[name])
        beam.metrics.Metrics.counter(NAMESPACE, split_counter(job.split)).inc(counts[WRITTEN])
        yield shard_counts(job, counts)

    def _fill(self, example, counts: collections.Counter) -> tuple[str, ...]:
        raw = example.features.feature[features.CAPTIONS].bytes_list.value
        slots = fill_caption_slots((c.decode("utf-8", errors="replace") for c in raw), self._slots)
        counts[BLANK_DROPPED] += slots.blank_dropped
        if not slots.captions:
            counts[SKIPPED_NO_CAPTIONS] += 1
        elif slots.cycled:
            counts[CYCLED] += 1
        if slots.truncated:
            counts[TRUNCATED] += 1
        return slots.captions

    def _flush(self, job: ShardJob, pending, writer: TFRecordShardWriter) -> int:
        if not pending:
            return 0
        embeddings = self._encoder.embed([c for _, _, captions in pending for c in captions])
        embeddings = embeddings.reshape(len(pending), self._slots, -1)
        records = []
        for (_, example, captions), embedding in zip(pending, embeddings, strict=True):
            feature = example.features.feature
            feature[features.CAPTIONS].bytes_list.value[:] = [c.encode("utf-8") for c in captions]
            feature[features.EMBEDDING].float_list.value[:] = np.asarray(embedding).reshape(-1)
            records.append(example.SerializeToString())
        errors = conformance.conformance_errors(records, features.WITH_EMBEDDINGS)
        if errors:
            # conformance numbers the examples of this batch; name the input records instead
            indices = [index for index, _, _ in pending]
            named = [
                re.sub(r"^example (\d+):", lambda m: f"record {indices[int(m[1])]}:", e)
                for e in errors
            ]
            raise ValueError(
                f"{job.input_path}: rewritten records break the schema {features.SCHEMA_PATH}"
                f" ({len(named)} problems): " + "; ".join(named[:5])
            )
        for record in records:
            writer.write(record)
        return len(records)


class EmbedCaptions(beam.PTransform):
    """PCollection[ShardJob] -> PCollection[shard_counts dict], one per shard."""

    def __init__(self, encoder_dir: str):
        super().__init__()
        self._encoder_dir = encoder_dir

    def expand(self, jobs):
        return (
            jobs
            | "Distribute" >> beam.Reshuffle()
            | "EmbedShard" >> beam.ParDo(EmbedShard(self._encoder_dir))
        )

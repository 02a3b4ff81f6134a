"""Runs the CUB -> Examples Beam pipeline and publishes the result only when it is complete.

Shared by the TFX executor and `stackgan prepare`. Shards are written under
`<output_dir>/.staging-<id>/` and moved to `<output_dir>/Split-<split>/` only after the run
succeeded and the skipped fraction is within `data.max_skipped_fraction`; on any failure the
staging folder is deleted, so no `Split-*` folder that looks complete is ever left behind.
`preprocessing_report.json` (counts, every skipped or converted file with the reason, and the
`<host>:<pid>` of each process that wrote shards) is written in both cases, and after a full disk where it still fits; `schema.pbtxt` goes next to
the splits on success. The embeddings pickles are checked before the Beam job starts.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import uuid
from collections.abc import Callable
from pathlib import Path

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from stackgan.components.cub_example_gen import convert, transforms
from stackgan.data import cub
from stackgan.errors import UserError, disk_full
from stackgan.schemas import features

REPORT_NAME = "preprocessing_report.json"
SCHEMA_NAME = "schema.pbtxt"


class PreprocessingError(UserError, RuntimeError):
    """The run produced no usable Examples (too many bad images, an empty split, a full disk)."""


class OutputExistsError(UserError, FileExistsError):
    """The output folder already holds Examples."""


@dataclasses.dataclass(frozen=True)
class SplitCounts:
    listed: int  # images the split names
    present: int  # of those, on disk when planned
    written: int
    skipped: dict[str, int]  # reason -> count (includes "missing_file" for absent images)
    converted: dict[str, int]

    @property
    def skipped_fraction(self) -> float:
        """Skipped among the images present (absent ones are a partial download, governed by
        data.strict, not a data-quality problem)."""
        return (self.present - self.written) / self.present if self.present else 0.0


@dataclasses.dataclass(frozen=True)
class Report:
    output_dir: str
    splits: dict[str, SplitCounts]
    has_embeddings: bool
    incidents: list[dict]
    workers: list[str] = dataclasses.field(default_factory=list)  # "<host>:<pid>" that wrote

    def summary(self) -> str:
        lines = [f"{self.output_dir}: embeddings {'yes' if self.has_embeddings else 'no'}"]
        for name, c in self.splits.items():
            skipped = ", ".join(f"{k} {v}" for k, v in sorted(c.skipped.items())) or "none"
            converted = ", ".join(f"{k} {v}" for k, v in sorted(c.converted.items())) or "none"
            lines.append(
                f"  {name}: {c.written} written of {c.present} present ({c.listed} listed);"
                f" skipped: {skipped}; converted: {converted}"
            )
        return "\n".join(lines)


def embedding_files(dataset: cub.CubDataset) -> tuple[Path, ...]:
    files = (dataset.birds_dir / split / cub.EMBEDDINGS_FILE for split in cub.SPLITS)
    return tuple(path for path in files if path.is_file())


def _check_output_dir(output_dir: str) -> None:
    # Folders exist on local disks; object stores (gs://) only know the files inside them.
    folders = [transforms.split_dir(output_dir, s) for s in cub.SPLITS]
    files = FileSystems.match([f"{output_dir}/Split-*/*"])[0].metadata_list
    existing = [f for f in folders if FileSystems.exists(f)] + [f.path for f in files]
    if existing:
        raise OutputExistsError(
            f"{output_dir} already holds {existing[0]}: remove it or choose another output"
        )


def _run_pipeline(
    make_pipeline: Callable[[], beam.Pipeline],
    tasks: list[transforms.ShardTask],
    data_config,
    staging: str,
    embeddings: tuple[Path, ...],
) -> list[transforms.ShardResult]:
    results_dir = f"{staging}/results"
    with make_pipeline() as pipeline:
        _ = (
            pipeline
            | "PlanShards" >> beam.Create(tasks)
            | "CubToTFRecordShards"
            >> transforms.CubToTFRecordShards(data_config, staging, embeddings, results_dir)
        )
    results = transforms.read_shard_results(results_dir)
    if sorted((r.split, r.index) for r in results) != sorted((t.split, t.index) for t in tasks):
        raise RuntimeError(f"{results_dir}: shard results do not match the planned shards")
    return results


def _report(dataset, results, output_dir, has_embeddings) -> Report:
    splits = {}
    for split in cub.SPLITS:
        mine = [r for r in results if r.split == split]
        splits[split] = SplitCounts(
            listed=dataset.reports[split].listed,
            present=dataset.reports[split].present,
            written=sum(r.written for r in mine),
            skipped=dict(collections.Counter(i.reason for r in mine for i in r.skipped)),
            converted=dict(collections.Counter(i.reason for r in mine for i in r.converted)),
        )
    incidents = [
        {"kind": kind, **dataclasses.asdict(i)}
        for r in sorted(results, key=lambda r: (r.split, r.index))
        for kind, group in (("skipped", r.skipped), ("converted", r.converted))
        for i in group
    ]
    workers = sorted({r.worker for r in results})
    return Report(output_dir, splits, has_embeddings, incidents, workers)


def _write_report(report: Report, status: str, problem: str = "") -> str:
    path = f"{report.output_dir.rstrip('/')}/{REPORT_NAME}"
    body = {
        "status": status,
        "problem": problem,
        "has_embeddings": report.has_embeddings,
        "splits": {
            name: {**dataclasses.asdict(c), "skipped_fraction": c.skipped_fraction}
            for name, c in report.splits.items()
        },
        "incidents": report.incidents,
        "workers": report.workers,
    }
    with FileSystems.create(path) as f:
        f.write(json.dumps(body, indent=1).encode())
    return path


def _problem(report: Report, max_skipped_fraction: float) -> str:
    for name, c in report.splits.items():
        if c.skipped_fraction > max_skipped_fraction:
            first = [i for i in report.incidents if i["kind"] == "skipped" and i["split"] == name]
            examples = "; ".join(
                f"{i['filename']} ({i['reason']}: {i['detail']})" for i in first[:3]
            )
            return (
                f"{name}: {c.present - c.written} of {c.present} images skipped"
                f" ({c.skipped_fraction:.1%} > data.max_skipped_fraction"
                f" {max_skipped_fraction:.1%}); reasons {c.skipped}; e.g. {examples}"
            )
        if c.written == 0:
            return f"{name}: no image written ({c.listed} listed, {c.present} present)"
    return ""


def _report_disk_full(output_dir: str, has_embeddings: bool, what: str) -> PreprocessingError:
    problem = f"the disk is full: {what}; nothing was published"
    try:
        path = _write_report(Report(output_dir, {}, has_embeddings, []), "failed", problem)
        written = f"report: {path}"
    except OSError as e:
        written = f"the report could not be written either ({e})"
    return PreprocessingError(
        f"{output_dir}: {problem} ({written}). Free space there, or choose another output"
        " folder, and run again"
    )


def _publish(staging: str, output_dir: str, results: list[transforms.ShardResult],
             report: Report) -> None:  # fmt: skip
    """Moves the staged shards into Split-*/, writes the schema and the "complete" report. A
    failure part-way (a full disk) removes what it had published, so the folder never holds
    splits without their schema or a report that says nothing was published beside them."""
    schema = f"{output_dir.rstrip('/')}/{SCHEMA_NAME}"
    published = [transforms.split_dir(output_dir, split) for split in cub.SPLITS] + [schema]
    try:
        for split in cub.SPLITS:
            FileSystems.mkdirs(transforms.split_dir(output_dir, split))
        sources = [r.path for r in results]
        destinations = [r.path.replace(staging, output_dir.rstrip("/"), 1) for r in results]
        FileSystems.rename(sources, destinations)
        with FileSystems.create(schema) as f:
            f.write(features.SCHEMA_PATH.read_bytes())
        _write_report(report, "complete")
    except Exception:
        existing = [path for path in published if FileSystems.exists(path)]
        if existing:
            FileSystems.delete(existing)
        raise


def generate_examples(
    data_root: str | Path,
    config,
    output_dir: str,
    make_pipeline: Callable[[], beam.Pipeline] = beam.Pipeline,
) -> Report:
    """Writes `<output_dir>/Split-{train,test}/` from the CUB layout at `data_root`.

    `config` is a `stackgan.config.Config` (its `data` section is used); `make_pipeline`
    returns the Beam pipeline to run in (its options pick the runner). Raises CubFormatError
    for unreadable metadata, PreprocessingError when too many images are bad.
    """
    data = config.data
    features.check_config(data)
    if data.image_encoding not in convert.IMAGE_ENCODINGS:
        raise ValueError(
            f"data.image_encoding must be one of {convert.IMAGE_ENCODINGS},"
            f" got {data.image_encoding!r}"
        )
    dataset = cub.CubDataset(data_root, split=data.split, strict=data.strict)
    if not dataset.has_captions:
        raise cub.CubFormatError(f"{dataset.birds_dir / 'text_c10'}: captions folder not found")
    # a malformed pickle fails here, named, not in every Beam worker's setup()
    dataset.check_embeddings(data.captions_per_image, data.embedding_dim)
    output_dir = str(output_dir).rstrip("/")
    _check_output_dir(output_dir)
    embeddings = embedding_files(dataset)
    tasks = transforms.plan_shards(dataset, data.num_shards)
    staging = f"{output_dir}/.staging-{uuid.uuid4().hex}"
    try:
        results = _run_pipeline(make_pipeline, tasks, data, staging, embeddings)
        report = _report(dataset, results, output_dir, bool(embeddings))
        problem = _problem(report, data.max_skipped_fraction)
        if problem:
            path = _write_report(report, "failed", problem)
            raise PreprocessingError(f"{data_root}: {problem}. Full list: {path}")
        _publish(staging, output_dir, results, report)
    except Exception as e:
        full = disk_full(e)
        if full is None:
            raise
        raise _report_disk_full(output_dir, bool(embeddings), full) from e
    finally:
        if FileSystems.exists(staging):
            FileSystems.delete([staging])
    logging.info("%s", report.summary())
    return report

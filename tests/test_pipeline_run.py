"""The whole DAG, run for real with LocalDagRunner and an SQLite MLMD store (tiny profile).

One first run on the synthetic dataset (release-style embedding pickles: the paper's path) is
shared by the module (`first_run`): the end-to-end checks and an unchanged second run served
from MLMD's cache; then one changed field per test, each re-run from a copy of the first run's
work dir restored at the same path, reading from MLMD which components ran and which were
CACHED. A separate run on the real CUB sample, which has no embeddings, so the DAG trains the
text encoder and embeds every caption itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stackgan.cli import main as cli_main
from stackgan.pipeline import layout, results

PIPELINE = "stackgan"
TRAINING_NODES = (
    "CubExampleGen",
    "ClassifierTrainer",
    "TextEncoderTrainer",  # the synthetic set ships embeddings: distilled from them
    "Stage1Trainer",
    "Stage2Trainer",
    "Evaluator",
)


RESOLVER = "latest_blessed_model_resolver"
DAG_NODES = (*TRAINING_NODES, "Pusher")


@dataclasses.dataclass(frozen=True)
class FirstRun:
    work: Path
    snapshot: Path  # the work dir as the first run left it
    printed: str  # what `stackgan run` printed
    progress: str  # what it wrote to stderr from Python: the progress lines

    def restore(self) -> Path:
        """The work dir as the first run left it, at the same path: MLMD's artifact URIs and
        the components' exec properties (data root, checkpoint and serving dirs) hold absolute
        paths, so a copy elsewhere would miss the cache for reasons of its own."""
        if self.work.exists():
            shutil.rmtree(self.work)
        shutil.copytree(self.snapshot, self.work, symlinks=True)  # keeps mtimes: same fingerprint
        return self.work


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> FirstRun:
    """One tiny-profile `stackgan run` on the synthetic dataset, for every test of the module
    that starts from a finished DAG."""
    root = tmp_path_factory.mktemp("dag")
    work, printed, progress = root / "work", io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(progress):
        assert cli_main(["run", "--work-dir", str(work), "--profile", "tiny"]) == 0
    shutil.copytree(work, root / "snapshot", symlinks=True)
    return FirstRun(work, root / "snapshot", printed.getvalue(), progress.getvalue())


def _run(work: Path, *assignments: str) -> None:
    argv = ["run", "--work-dir", str(work), "--profile", "tiny"]
    assert cli_main(argv + [f"--set={a}" for a in assignments]) == 0


def _this_run_states(work: Path) -> dict[str, str]:
    """node -> the state of its execution in the newest run (COMPLETE: it ran; CACHED: TFX
    reused an earlier execution's outputs)."""
    import ml_metadata as mlmd

    store = results.open_store(str(work))
    this_run = results.latest_run_executions(store, PIPELINE)
    states = {}
    for context in store.get_contexts_by_type("node"):
        node = context.name.removeprefix(f"{PIPELINE}.")
        [execution] = [e for e in store.get_executions_by_context(context.id) if e.id in this_run]
        states[node] = mlmd.proto.Execution.State.Name(execution.last_known_state)
    return states


def _assert_reran(work: Path, reran: set[str]) -> None:
    """Exactly the `reran` components ran in the newest run; every other one was CACHED."""
    states = _this_run_states(work)
    # the Resolver looks up the latest blessed model on every run; it trains nothing
    assert states.pop(RESOLVER) == "COMPLETE"
    assert states == {node: "COMPLETE" if node in reran else "CACHED" for node in DAG_NODES}


def _training_summary(work: Path, node: str) -> dict:
    store = results.open_store(str(work))
    this_run = results.latest_run_executions(store, PIPELINE)
    run_dir = results.node_outputs(store, PIPELINE, node, this_run)["model_run"]
    with open(os.path.join(run_dir, "training_summary.json")) as f:
        return json.load(f)


def _outputs(work_dir):
    store = results.open_store(str(work_dir))
    return store, {
        node: results.node_outputs(store, PIPELINE, node)
        for node in (*TRAINING_NODES, "Pusher", "CaptionEmbedder")
    }


def _assert_products(work_dir, outputs):
    examples = outputs["CubExampleGen"]["examples"]
    for split in ("train", "test"):
        shards = os.listdir(os.path.join(examples, f"Split-{split}"))
        assert shards and all(s.endswith(".gz") for s in shards)
    for node in ("Stage1Trainer", "Stage2Trainer", "ClassifierTrainer"):
        model = outputs[node]["model"]
        assert os.path.exists(os.path.join(model, "Format-Serving", "saved_model.pb")), node
    evaluation = outputs["Evaluator"]["evaluation"]
    with open(os.path.join(evaluation, "metrics.json")) as f:
        metrics = json.load(f)
    flat = json.dumps(metrics)
    assert "inception_score" in flat and "fid" in flat
    assert any(name.endswith(".png") for name in os.listdir(evaluation))
    serving = layout.serving_dir(str(work_dir))
    versions = [v for v in os.listdir(serving) if v.isdigit()]
    assert len(versions) == 1
    version_dir = os.path.join(serving, versions[0])
    assert os.path.exists(os.path.join(version_dir, "saved_model.pb"))
    return metrics, version_dir


class _Store:
    """An MLMD store laid out as TFX records runs: pipeline, pipeline_run and node contexts."""

    def __init__(self, work_dir):
        import ml_metadata as mlmd
        from tfx.orchestration import metadata

        self.pb = mlmd.proto
        os.makedirs(os.path.dirname(layout.metadata_path(str(work_dir))))
        path = layout.metadata_path(str(work_dir))
        self.store = mlmd.MetadataStore(metadata.sqlite_metadata_connection_config(path))
        self.types = {
            name: self.store.put_context_type(self.pb.ContextType(name=name))
            for name in ("pipeline", "pipeline_run", "node")
        }
        self.execution_type = self.store.put_execution_type(self.pb.ExecutionType(name="C"))
        self.artifact_type = self.store.put_artifact_type(self.pb.ArtifactType(name="A"))
        self.pipeline = self._context("pipeline", PIPELINE)

    def _context(self, type_name: str, name: str):
        context = self.pb.Context(type_id=self.types[type_name], name=name)
        [context.id] = self.store.put_contexts([context])
        return context

    def run(self, run_id: str, outputs: dict[str, tuple[str, str, dict]]):
        """One run: node -> (output key, artifact uri, artifact custom properties)."""
        run = self._context("pipeline_run", run_id)
        for node, (key, uri, properties) in outputs.items():
            contexts = self.store.get_contexts_by_type("node")
            node_context = next((c for c in contexts if c.name == f"{PIPELINE}.{node}"), None)
            node_context = node_context or self._context("node", f"{PIPELINE}.{node}")
            artifact = self.pb.Artifact(type_id=self.artifact_type, uri=uri)
            for name, value in properties.items():
                field = "int_value" if isinstance(value, int) else "string_value"
                setattr(artifact.custom_properties[name], field, value)
            event = self.pb.Event(type=self.pb.Event.OUTPUT)
            event.path.steps.add().key = key
            execution = self.pb.Execution(
                type_id=self.execution_type, last_known_state=self.pb.Execution.COMPLETE
            )
            self.store.put_execution(
                execution, [(artifact, event)], [self.pipeline, run, node_context]
            )


def _evaluation_dir(tmp_path, name: str, blessed: bool, reasons: list[str]) -> str:
    row = {"count": 16, "top1_correct": 0, "top1_accuracy": 0.0, "inception_score_mean": 1.0}
    row.update(inception_score_std=0.0, fid=9.0)
    metrics = {
        "table": [{"images": "generated", **row}, {"images": "real (ceiling)", **row}],
        "chance": 0.5,
        "refinement": None,
        "baseline": None,
        "gate": {"reasons": reasons},
        "blessed": blessed,
    }
    path = tmp_path / name
    path.mkdir()
    (path / "metrics.json").write_text(json.dumps(metrics))
    return str(path)


def test_summary_tells_this_runs_blessing_and_push_not_an_earlier_runs(tmp_path):
    work = tmp_path / "work"
    store = _Store(work)
    serving = layout.serving_dir(str(work))
    old_version = os.path.join(serving, "1700000000")
    os.makedirs(old_version)  # the first run's push, still in the serving folder
    store.run(
        "run-1",
        {
            "Evaluator": ("evaluation", _evaluation_dir(tmp_path, "e1", True, []), {}),
            "Pusher": ("pushed_model", "/p1", {"pushed": 1, "pushed_destination": old_version}),
        },
    )
    first = results.summarize(str(work), PIPELINE, 1.0, "/data", text_signature=True)
    assert f"pushed model:  {old_version}" in first and "blessed:       yes" in first

    reason = (
        "generated top-1 0.000 (0/16) < chance 0.500 + 0.5 x (real top-1 1.000 - chance) = 0.750"
    )
    store.run(
        "run-2",
        {
            "Evaluator": ("evaluation", _evaluation_dir(tmp_path, "e2", False, [reason]), {}),
            "Pusher": ("pushed_model", "/p2", {"pushed": 0}),
        },
    )
    second = results.summarize(str(work), PIPELINE, 1.0, "/data", text_signature=True)
    assert f"  not blessed: {reason}; nothing pushed" in second
    assert old_version not in second and "pushed model" not in second
    assert "generated: top-1 0.000 (0/16; chance 0.500)" in second


def _finite_numbers(value):
    """Every number in a JSON value, however deep in dicts and lists."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for v in value:
            yield from _finite_numbers(v)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


def test_finite_numbers_looks_inside_lists_and_dicts():
    metrics = {"table": [{"inception_score_mean": math.nan}], "seeds": [[1, 2]], "ok": True}
    assert [v for v in _finite_numbers(metrics) if not math.isfinite(v)] != []
    assert sorted(v for v in _finite_numbers(metrics) if math.isfinite(v)) == [1, 2]


def _count_records(examples_uri: str, split: str) -> int:
    import tensorflow as tf

    files = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def _assert_evaluator_metrics(metrics, num_test_images: int):
    """The Evaluator's numbers are there and finite, for both image sets and both stages."""
    assert all(math.isfinite(v) for v in _finite_numbers(metrics))
    generated, real = metrics["table"]
    # the tiny profile's eval.num_samples (test) captions, and every real test image once
    assert (generated["count"], real["count"]) == (16, num_test_images)
    for row in (generated, real):
        assert 0 <= row["top1_correct"] <= row["count"]
        assert row["top1_accuracy"] == pytest.approx(row["top1_correct"] / row["count"])
        assert row["inception_score_mean"] >= 1.0 - 1e-6
    assert 0 < metrics["chance"] <= 1
    refinement = metrics["refinement"]  # the DAG's generator has a Stage-II
    assert refinement["count"] == generated["count"]
    assert (refinement["stage1_size"], refinement["stage2_size"]) == (16, 64)  # tiny profile
    assert {"consistency_mad", "detail_gain", "edge_sharpness_gain"} <= set(refinement)
    assert metrics["gate"]["min_class_accuracy_ratio"] == 0.0  # tiny: always blessable
    assert metrics["blessed"] is True
    assert metrics["sampling"] == {"truncation": 1.0}  # the tiny profile's, read from the export


def _assert_grid_shows(grid, images):
    """`stackgan generate`'s grid (render_sheet: 8 px padding, each image enlarged by the
    smallest integer factor that reaches 128 px, its caption under it) shows `images` (uint8
    [N,S,S,3], N <= 4: one row), pixel for pixel and in order."""
    import numpy as np
    from PIL import Image

    sheet = np.asarray(Image.open(grid).convert("RGB"))
    count, size = len(images), images.shape[1]
    scale = -(-128 // size)
    cell = size * scale
    assert sheet.shape[1] == 8 + count * (cell + 8), sheet.shape
    assert sheet.shape[0] > 8 + cell + 4 + 8, sheet.shape  # a row of images, then captions
    for i, image in enumerate(images):
        left = 8 + i * (cell + 8)
        tile = sheet[8 : 8 + cell, left : left + cell]
        np.testing.assert_array_equal(tile, image.repeat(scale, 0).repeat(scale, 1), f"image {i}")
        assert sheet[8 + cell + 4 :, left : left + cell].min() < 100  # dark caption text
    assert min(float(image.std()) for image in images) > 0.0  # no image is one flat colour
    assert len({image.tobytes() for image in images}) == count  # each image its own


@pytest.mark.slow
def test_dag_end_to_end_on_synthetic_data_then_cached(tmp_path, first_run):
    work, printed = first_run.restore(), first_run.printed
    store, outputs = _outputs(work)
    metrics, version_dir = _assert_products(work, outputs)
    _assert_evaluator_metrics(metrics, _count_records(outputs["CubExampleGen"]["examples"], "test"))
    assert metrics["baseline"] is None  # nothing was blessed before the first run
    # the synthetic data ships embedding pickles: the paper's path (no CaptionEmbedder), and
    # an encoder distilled from the pickle's embeddings for the export's text signatures
    assert outputs["CaptionEmbedder"] == {}
    with open(os.path.join(outputs["TextEncoderTrainer"]["model_run"], "metrics.json")) as f:
        distilled = json.load(f)
    assert distilled["objective"] == "distill"
    assert distilled["test_captions"]["captions"] > 0
    assert f"pushed model:  {version_dir}" in printed and "baseline: none" in printed
    evaluation = outputs["Evaluator"]["evaluation"]
    for sheet in ("comparison.png", "samples.png"):
        assert f"  sample sheet:  {os.path.join(evaluation, sheet)}" in printed, sheet
    # the tiny profile's scored captions are of one class (chance 1): no line between classes
    assert metrics["chance"] == 1.0 and metrics["interpolation"] is None
    assert not os.path.exists(os.path.join(evaluation, "interpolation.png"))
    assert "  seeds: train.seed=0, classifier.seed=0, text.seed=0 (the same seeds" in printed
    assert "top-1" in printed and "Stage-I -> Stage-II: consistency" in printed
    # the Evaluator's progress while it generates: its last batch of the 16 captions of 8
    evaluator_lines = [x for x in first_run.progress.splitlines() if x.startswith("Evaluator ")]
    assert evaluator_lines and evaluator_lines[-1].startswith("Evaluator step 2/2"), evaluator_lines
    assert "img/s" in evaluator_lines[-1]
    for node in ("ClassifierTrainer", "TextEncoderTrainer", "Stage1Trainer", "Stage2Trainer"):
        run_dir = outputs[node]["model_run"]
        assert f"  {node} run:  {run_dir}  (tensorboard --logdir {run_dir})" in printed, node
    # Stage-II's TensorBoard curves of how it refines Stage-I, at each sample sheet (the tiny
    # profile's sample_every_steps 2 of its 4 steps)
    for score in ("consistency_mad", "detail_gain", "edge_sharpness_gain"):
        curve = _scalars(outputs["Stage2Trainer"]["model_run"], f"refinement/{score}")
        assert sorted(curve) == [2, 4], score
        assert all(math.isfinite(v) and v > 0 for v in curve.values()), (score, curve)

    # the pushed model generates in this process from its signature alone, given the
    # embedding alone
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)
    out = loaded.signatures["serving_default"](
        embedding=tf.constant(np.random.default_rng(0).normal(size=(2, 1024)), tf.float32)
    )
    assert out["image_64"].dtype == tf.uint8 and out["image_64"].shape[0] == 2

    # `stackgan generate` draws a captioned grid from the pushed model (a TF Serving base dir)
    from stackgan.serving.generator import load_generator

    embeddings = tmp_path / "embeddings.npy"
    vectors = np.random.default_rng(1).normal(size=(3, 10, 1024)).astype(np.float32)
    np.save(embeddings, vectors)
    grid = tmp_path / "grid.png"
    serving = layout.serving_dir(str(work))
    assert (
        cli_main(
            [
                "generate",
                "--model",
                serving,
                "--embeddings",
                str(embeddings),
                "--n",
                "3",
                "--seed",
                "0",
                "--out",
                str(grid),
            ]
        )
        == 0
    )
    # the first caption embedding of each image, seed 0, the largest images
    _assert_grid_shows(
        grid, load_generator(version_dir).generate(vectors[:, 0], seed=0)["image_256"]
    )
    # ... and from sentences, through the distilled encoder, as the summary suggests
    assert "try it:        stackgan generate --model" in printed
    assert "--caption 'a small red bird with black wings'" in printed
    argv = ["generate", "--model", serving, "--caption", "a small red bird with black wings"]
    assert cli_main([*argv, "--n", "2", "--seed", "0", "--out", str(grid)]) == 0

    # a second run with nothing changed is served from the MLMD cache, except the Evaluator:
    # its baseline input is new, the first run's blessed generator, which is this same model
    _run(work)
    _assert_reran(work, {"Evaluator", "Pusher"})
    _, outputs = _outputs(work)
    with open(os.path.join(outputs["Evaluator"]["evaluation"], "metrics.json")) as f:
        second = json.load(f)
    assert second["baseline"]["model"] == outputs["Stage2Trainer"]["model"]
    assert second["baseline"]["same_as_candidate"] is True
    # same model, seeds and classifier: the same counts, and scores up to float reordering
    for again, before in zip(second["table"], metrics["table"], strict=True):
        assert again["top1_correct"] == before["top1_correct"]
        assert again["fid"] == pytest.approx(before["fid"], rel=1e-3)
    assert second["baseline"]["table"] == second["table"]


def _assert_same_numbers(got, want, path="metrics"):
    """Equal JSON, floats to within rounding (see the test below), NaN nowhere."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), path
        for key in want:
            _assert_same_numbers(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_same_numbers(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert math.isfinite(want) and got == pytest.approx(want, rel=1e-4, abs=1e-6), path
    else:
        assert got == want, path


@pytest.mark.slow
def test_a_second_run_in_a_new_work_dir_trains_the_same_models(tmp_path, first_run):
    """The same command again, from nothing (a new work dir: new data, no cache, no
    checkpoints), with the DAG run by TFX's BeamDagRunner (`--runner beam`) and the components'
    Beam jobs in two worker processes (`--beam-arg` multi_processing) this time, trains
    the same four models in this process: the same scores, generator weights and sample sheet;
    run once more, the Beam runner serves the trainers from the cache. The trainers seed
    from `train.seed` (the classifier from `classifier.seed`, the text encoder from
    `text.seed`) and their input pipelines keep their order (`data.ordered`). Compared to within
    rounding, not bit for bit: with two intra-op threads oneDNN may, rarely, split a reduction
    otherwise (a 1-ulp difference; see DETERMINISTIC below). When the classifier seeded after
    building its datasets, the second run's top-1 was 0.4375 against 0.0625."""
    import keras
    from PIL import Image

    first = first_run.restore()
    second = tmp_path / "work"
    # and its Beam jobs (the Examples, the caption embeddings) in two worker processes
    beam = [
        "--beam-arg=--direct_running_mode=multi_processing",
        "--beam-arg=--direct_num_workers=2",
    ]
    argv = ["run", "--work-dir", str(second), "--profile", "tiny", "--runner", "beam", *beam]
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(argv) == 0
    states = _this_run_states(second)
    assert states.pop(RESOLVER) == "COMPLETE"
    assert states == {node: "COMPLETE" for node in DAG_NODES}
    (_, ran_first), (_, ran_second) = _outputs(first), _outputs(second)

    def evaluation(outputs, work):
        folder = outputs["Evaluator"]["evaluation"]
        with open(os.path.join(folder, "metrics.json")) as f:
            # artifact URIs end in their execution's id, which each runner numbers its own way
            text = re.sub(r"(pipeline_root/[\w/]+?/)\d+", r"\1<id>", f.read())
            metrics = json.loads(text.replace(str(work), "<work>"))
        sheet = np.asarray(Image.open(os.path.join(folder, "samples.png")), np.int16)
        return metrics, sheet

    (metrics, sheet), (again, sheet_again) = (
        evaluation(ran_first, first),
        evaluation(ran_second, second),
    )
    assert metrics["table"][0]["images"] == "generated"
    _assert_same_numbers(again, metrics)
    assert sheet_again.shape == sheet.shape and np.abs(sheet_again - sheet).max() <= 1
    for node in ("Stage1Trainer", "Stage2Trainer"):
        weights = [
            keras.saving.load_model(
                os.path.join(outputs[node]["model"], "generator.keras"), compile=False
            ).get_weights()
            for outputs in (ran_first, ran_second)
        ]
        assert len(weights[0]) == len(weights[1]) > 0
        for i, (a, b) in enumerate(zip(*weights, strict=True)):
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=f"{node} generator weight {i}")

    # as under the local runner: all cached but the Evaluator, whose baseline input is new (the
    # blessed generator of the run before), and so the Pusher
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(argv) == 0
    _assert_reran(second, {"Evaluator", "Pusher"})


@pytest.mark.slow
def test_an_eval_change_reruns_only_evaluator_and_pusher(first_run):
    work = first_run.restore()
    _run(work, "eval.num_samples=8")
    _assert_reran(work, {"Evaluator", "Pusher"})
    _, outputs = _outputs(work)
    with open(os.path.join(outputs["Evaluator"]["evaluation"], "metrics.json")) as f:
        assert json.load(f)["num_samples"] == 8


@pytest.mark.slow
def test_a_gate_the_generator_cannot_pass_pushes_nothing_and_says_why(first_run):
    work = first_run.restore()
    serving = layout.serving_dir(str(work))
    pushed_before = sorted(os.listdir(serving))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        # the generated images' top-1 as high as the real images', and their colour gain 100x
        _run(work, "eval.min_class_accuracy_ratio=1.0", "eval.min_colour_gain_ratio=100")
    _assert_reran(work, {"Evaluator", "Pusher"})
    _, outputs = _outputs(work)
    with open(os.path.join(outputs["Evaluator"]["evaluation"], "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["blessed"] is False
    summary = printed.getvalue()
    assert "  not blessed: " in summary and "; nothing pushed" in summary
    reasons = summary.split("  not blessed: ")[1].split("; nothing pushed")[0]
    assert "generated top-1" in reasons and "colour" in reasons  # both checks named
    assert "pushed model:  " not in summary
    assert sorted(os.listdir(serving)) == pushed_before  # the earlier push, and nothing new


@pytest.mark.slow
def test_a_classifier_change_reruns_the_classifier_and_its_consumers_only(first_run):
    work = first_run.restore()
    _, before = _outputs(work)
    _run(work, "classifier.head_epochs=2", "classifier.batch_size=3")
    # not the preprocessing, not the GANs, not the text encoder distilled from the embedding
    # pickles (it reads no classifier field, not even the batch size the ds_sje encoder reads
    # images with; tests/test_config_view.py covers the READS), so not Stage-II either
    _assert_reran(work, {"ClassifierTrainer", "Evaluator", "Pusher"})
    _, after = _outputs(work)
    assert after["ClassifierTrainer"]["model"] != before["ClassifierTrainer"]["model"]
    assert after["Stage2Trainer"]["model"] == before["Stage2Trainer"]["model"]
    with open(os.path.join(after["Evaluator"]["evaluation"], "metrics.json")) as f:
        assert json.load(f)["classifier"]["uri"] == after["ClassifierTrainer"]["model"]


@pytest.mark.slow
def test_another_gan_seed_keeps_the_classifier_and_the_text_encoder(first_run):
    """`--set train.seed=N` trains other GANs; the classifier (the measuring instrument) and
    the text encoder keep their own seeds, so both come from the cache."""
    work = first_run.restore()
    _, before = _outputs(work)
    _run(work, "train.seed=1")
    _assert_reran(work, {"Stage1Trainer", "Stage2Trainer", "Evaluator", "Pusher"})
    _, after = _outputs(work)
    for node in ("ClassifierTrainer", "TextEncoderTrainer"):
        assert after[node]["model"] == before[node]["model"], node
    # other GANs from the start, not the first seed's resumed from its checkpoints
    assert _training_summary(work, "Stage1Trainer")["resumed_from_step"] == 0


@pytest.mark.slow
def test_a_data_change_reruns_everything(first_run):
    """One caption file edited in the dataset (same path, same config): its files are
    fingerprinted, so CubExampleGen runs again, and the rest because its Examples are new."""
    import tensorflow as tf

    work = first_run.restore()
    caption_file = sorted((work / "data" / "birds" / "text_c10").rglob("*.txt"))[0]
    lines = caption_file.read_text().splitlines()
    edited = "this bird is entirely orange with an orange beak"
    caption_file.write_text("\n".join([edited, *lines[1:]]) + "\n")
    _run(work)
    _assert_reran(work, set(DAG_NODES))
    _, outputs = _outputs(work)
    files = tf.io.gfile.glob(os.path.join(outputs["CubExampleGen"]["examples"], "Split-*", "*"))
    per_image = [
        [c.decode() for c in tf.train.Example.FromString(record.numpy()).features.feature[
            "captions"].bytes_list.value]
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]  # fmt: skip
    assert [edited, *lines[1:]] in per_image  # the edited image's captions, as the file has them
    for node in ("Stage1Trainer", "Stage2Trainer"):  # new data: trained from scratch
        assert _training_summary(work, node)["resumed_from_step"] == 0, node


def _scalars(run_dir: str, tag: str) -> dict[int, float]:
    """step -> value of one TensorBoard scalar a trainer wrote to `<run_dir>/logs`."""
    import tensorflow as tf

    values = {}
    for path in tf.io.gfile.glob(os.path.join(run_dir, "logs", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


@pytest.mark.slow
def test_a_larger_max_steps_resumes_stage1_from_its_last_checkpoint(first_run):
    work = first_run.restore()
    before = {node: _training_summary(work, node) for node in ("Stage1Trainer", "Stage2Trainer")}
    assert before["Stage1Trainer"]["total_steps"] == 4  # the tiny profile's max_steps
    _run(work, "train.max_steps=6")
    _assert_reran(work, {"Stage1Trainer", "Stage2Trainer", "Evaluator", "Pusher"})
    stage1 = _training_summary(work, "Stage1Trainer")
    assert (stage1["resumed_from_step"], stage1["total_steps"]) == (4, 6)
    assert stage1["checkpoint_dir"] == before["Stage1Trainer"]["checkpoint_dir"]
    # The step counter and the optimizers' iterations (the lr schedule's clock) went on from
    # 4: this execution logged steps 5 and 6 only, at the lr of iterations 5 and 6 (12 images
    # / batch 4 = 3 steps an epoch; the tiny profile halves the lr every epoch from 2e-4).
    lr = _scalars(_outputs(work)[1]["Stage1Trainer"]["model_run"], "lr")
    assert lr == pytest.approx({5: 1e-4, 6: 5e-5})
    # Stage-II's key covers Stage-I's weights, which changed: it starts afresh
    stage2 = _training_summary(work, "Stage2Trainer")
    assert (stage2["resumed_from_step"], stage2["total_steps"]) == (0, 6)
    assert stage2["checkpoint_dir"] != before["Stage2Trainer"]["checkpoint_dir"]


# The kill test's settings: stages long enough to kill one after a checkpoint, no sample sheets
# on the way, and the lr halved every 30 steps (12 images at batch 4: 3 steps an epoch), not
# every 3 as in the tiny profile, so that every step of the 40 moves the weights
KILL_SETTINGS = ("train.max_steps=40", "train.sample_every_steps=1000", "train.lr_decay_epochs=10")


# The training input pipeline keeps its order (`data.ordered`), so a resumed stage can be
# compared with its replay weight for weight, given one intra-op thread: oneDNN splits a
# kernel's reductions by the threads it gets, and it gets one when the kernel runs on a thread of
# the intra-op pool, all of them otherwise, which depends on scheduling. CI once saw a resumed
# Stage-I differ from its replay by 1 ulp in 29 % of a kernel (7e-9) that way.
DETERMINISTIC = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1"}


def _lr(step: int) -> float:
    return 2e-4 * 0.5 ** (step // 30)


def _start_run(work: Path, log: Path) -> subprocess.Popen:
    """`stackgan run` in a process (group) of its own, as a user would start it."""
    argv = [sys.executable, "-m", "stackgan.cli", "run", "--work-dir", str(work)]
    argv += ["--profile", "tiny", *(f"--set={a}" for a in KILL_SETTINGS)]
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=DETERMINISTIC
        )


def _latest_step(checkpoint_dir: str) -> int:
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(checkpoint_dir)
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def _kill_after_checkpoint(process, checkpoint_dirs, after_step: int, timeout_s: float = 900):
    """SIGKILLs `process` (and its group) once a checkpoint past `after_step` is written in
    one of `checkpoint_dirs()`; returns (that directory, the step of its latest checkpoint)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for directory in checkpoint_dirs():
            if _latest_step(directory) > after_step:
                os.killpg(process.pid, signal.SIGKILL)
                assert process.wait() == -signal.SIGKILL
                return directory, _latest_step(directory)
        assert process.poll() is None, f"stackgan run ended ({process.returncode}) before a kill"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError(f"no checkpoint past step {after_step} in {timeout_s} s")


def _new_dirs(root: str, old: set[str]) -> list[str]:
    return (
        [os.path.join(root, d) for d in set(os.listdir(root)) - old] if os.path.isdir(root) else []
    )


def _replay(jobs: list[dict], scratch: Path) -> list[dict]:
    """tests/stage_replay.py in a process of its own, as deterministic as the runs: each stage
    restored from a copy of the checkpoints a kill left and trained to the end; returns the
    generator weights (`weights`) and the step each resumed from."""
    path = scratch / "jobs.json"
    path.write_text(json.dumps(jobs))
    script = Path(__file__).with_name("stage_replay.py")
    done = subprocess.run(
        [sys.executable, str(script), str(path)], env=DETERMINISTIC, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    replays = []
    for job in jobs:
        with np.load(job["out"]) as saved:
            count = len(saved.files) - 1
            weights = [saved[f"arr_{i}"] for i in range(count)]
            replays.append(
                {"weights": weights, "resumed_from_step": int(saved["resumed_from_step"])}
            )
    return replays


def _assert_checkpoint_state(checkpoint_dir: str, step: int) -> None:
    """The latest checkpoint's own values: the step, both optimizers' iterations (the clock of
    the learning-rate schedule) and their Adam moments, non-zero."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(checkpoint_dir)
    values = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    assert values["step/.ATTRIBUTES/VARIABLE_VALUE"] == step
    for optimizer in ("d_optimizer", "g_optimizer"):
        assert values[f"{optimizer}/_iterations/.ATTRIBUTES/VARIABLE_VALUE"] == step
        moments = [v for k, v in values.items() if k.startswith(f"{optimizer}/_variables/")]
        moments = [v for v in moments if np.ndim(v)]
        assert moments and all(np.abs(m).max() > 0 for m in moments), optimizer


def _assert_same_weights(got: list, want: list, what: str) -> None:
    assert len(got) == len(want), what
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"{what}: weight {i} of {len(got)}")


@pytest.mark.slow
def test_a_killed_run_resumes_each_stage_from_its_checkpoint(tmp_path, first_run):
    """SIGKILL `stackgan run` during Stage-I after a checkpoint, run again, SIGKILL it during
    Stage-II after a checkpoint, run again: each stage continues from the checkpoint the kill
    left (step, optimizer state, learning rate, noise state, weights), and the DAG finishes.

    The resumed input stream is reseeded with the resumed step (stackgan/training/runner.py),
    so a killed run's weights legitimately differ from those of a run never killed. What must
    hold is that the resumed stage is exactly the uninterrupted continuation of the checkpoint
    the kill left: its final weights equal, bit for bit, those of the same stage restored in
    another process from a copy of that checkpoint and trained to the end (every process with
    one intra-op thread, see DETERMINISTIC)."""
    import keras

    from stackgan import config as config_lib

    work = first_run.restore()
    _, outputs = _outputs(work)
    examples = outputs["CubExampleGen"]["examples"]
    config = config_lib.tiny().with_overrides(list(KILL_SETTINGS))
    stage2_root = os.path.join(layout.checkpoint_dir(str(work)), "stage2")
    old_stage2 = set(os.listdir(stage2_root))
    log = tmp_path / "runs.log"

    # 1. killed during Stage-I after a checkpoint (another lr schedule: another key, from 0)
    stage1_root = os.path.join(layout.checkpoint_dir(str(work)), "stage1")
    old_stage1 = set(os.listdir(stage1_root))
    stage1_dir, step1 = _kill_after_checkpoint(
        _start_run(work, log), lambda: _new_dirs(stage1_root, old_stage1), 0
    )
    assert 0 < step1 < 40
    shutil.copytree(stage1_dir, tmp_path / "stage1_at_kill")
    _assert_checkpoint_state(str(tmp_path / "stage1_at_kill"), step1)

    # 2. Stage-I resumes and finishes; killed during Stage-II, after a checkpoint
    stage2_dir, step2 = _kill_after_checkpoint(
        _start_run(work, log), lambda: _new_dirs(stage2_root, old_stage2), 0
    )
    assert 0 < step2 < 40
    shutil.copytree(stage2_dir, tmp_path / "stage2_at_kill")
    _assert_checkpoint_state(str(tmp_path / "stage2_at_kill"), step2)
    resumed1 = _training_summary(work, "Stage1Trainer")
    assert (resumed1["resumed_from_step"], resumed1["total_steps"]) == (step1, 40)
    assert resumed1["checkpoint_dir"] == stage1_dir
    stage1_model = _outputs(work)[1]["Stage1Trainer"]["model"]
    lr1 = _scalars(_outputs(work)[1]["Stage1Trainer"]["model_run"], "lr")
    # the step counter went on from the checkpoint, and the lr with the optimizers' iterations
    assert lr1 == pytest.approx({s: _lr(s) for s in range(step1 + 1, 41)})

    # 3. Stage-II resumes, the DAG finishes
    process = _start_run(work, log)
    assert process.wait(timeout=900) == 0, log.read_text()[-3000:]
    _assert_reran(work, {"Stage2Trainer", "Evaluator", "Pusher"})  # Stage-I: done in run 2
    resumed2 = _training_summary(work, "Stage2Trainer")
    assert (resumed2["resumed_from_step"], resumed2["total_steps"]) == (step2, 40)
    assert resumed2["checkpoint_dir"] == stage2_dir
    lr2 = _scalars(_outputs(work)[1]["Stage2Trainer"]["model_run"], "lr")
    assert lr2 == pytest.approx({s: _lr(s) for s in range(step2 + 1, 41)})
    stage2_model = _outputs(work)[1]["Stage2Trainer"]["model"]

    # each resumed stage = its checkpoint continued without interruption, weight for weight
    common = {"config": config.to_json(), "examples": examples}
    replay1, replay2 = _replay(
        [
            {**common, "stage": 1, "checkpoints": str(tmp_path / "stage1_at_kill"),
             "scratch": str(tmp_path / "replay1"), "out": str(tmp_path / "replay1.npz")},
            {**common, "stage": 2, "checkpoints": str(tmp_path / "stage2_at_kill"),
             "scratch": str(tmp_path / "replay2"), "out": str(tmp_path / "replay2.npz"),
             "stage1_model_path": os.path.join(stage1_model, "generator.keras")},
        ],
        tmp_path,
    )  # fmt: skip
    assert (replay1["resumed_from_step"], replay2["resumed_from_step"]) == (step1, step2)
    for model_dir, replay, what in ((stage1_model, replay1, "I"), (stage2_model, replay2, "II")):
        served = keras.saving.load_model(os.path.join(model_dir, "generator.keras"))
        _assert_same_weights(served.get_weights(), replay["weights"], f"Stage-{what}")
    print(f"killed at Stage-I step {step1} and Stage-II step {step2} of 40")


@pytest.mark.slow
def test_dag_on_real_cub_sample_trains_the_text_encoder(tmp_path, cub_sample_root):
    work = tmp_path / "work"
    argv = ["run", "--work-dir", str(work), "--profile", "tiny", "--data", str(cub_sample_root)]
    assert cli_main(argv) == 0
    _, outputs = _outputs(work)
    assert outputs["TextEncoderTrainer"] and outputs["CaptionEmbedder"]
    metrics, version_dir = _assert_products(work, outputs)
    _assert_evaluator_metrics(
        metrics, _count_records(outputs["CaptionEmbedder"]["examples"], "test")
    )
    # scored captions of several species: the interpolation sheet runs between two of them
    line = metrics["interpolation"]
    assert (line["steps"], line["rows"]) == (6, 3) and line["from"] != line["to"]
    from PIL import Image

    with Image.open(os.path.join(outputs["Evaluator"]["evaluation"], line["file"])) as sheet:
        assert sheet.width == 8 + 6 * (128 + 8)  # 6 columns of 64 px images enlarged to 128

    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)
    assert "text" in loaded.signatures
    out = loaded.signatures["text"](
        caption=tf.constant(["this bird is red with black wings", "a small grey bird"])
    )
    assert out["image_64"].shape[0] == 2 and out["image_64"].dtype == tf.uint8

    grid = tmp_path / "grid.png"
    captions = ["this bird is red with black wings", "a small grey bird"]
    argv = ["generate", "--model", layout.serving_dir(str(work)), "--n", "2", "--seed", "5"]
    argv += ["--caption", captions[0], "--caption", captions[1], "--out", str(grid)]
    assert cli_main(argv) == 0
    from stackgan.serving.generator import load_generator

    served = load_generator(version_dir).generate_from_captions(captions, seed=5)
    _assert_grid_shows(grid, served["image_256"])

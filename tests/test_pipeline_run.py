"""The whole DAG, run for real with LocalDagRunner and an SQLite MLMD store (tiny profile).

Two runs: on the synthetic dataset (release-style embedding pickles: the paper's path), twice,
to show the second run is served from MLMD's cache; and on the real CUB sample, which has no
embeddings, so the DAG trains the text encoder and embeds every caption itself.
"""

from __future__ import annotations

import json
import math
import os

import pytest

from stackgan.cli import main as cli_main
from stackgan.pipeline import layout, results

PIPELINE = "stackgan"
TRAINING_NODES = (
    "CubExampleGen",
    "ClassifierTrainer",
    "Stage1Trainer",
    "Stage2Trainer",
    "Evaluator",
)


def _outputs(work_dir):
    store = results.open_store(str(work_dir))
    return store, {
        node: results.node_outputs(store, PIPELINE, node)
        for node in (*TRAINING_NODES, "Pusher", "TextEncoderTrainer", "CaptionEmbedder")
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

    reason = "generated top-1 0.000 (0/16) < 0.5 x real top-1 1.000 = 0.500"
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
    assert {"consistency_mad", "sharpness_gain"} <= set(refinement)
    assert metrics["gate"]["min_class_accuracy_ratio"] == 0.0  # tiny: always blessable
    assert metrics["blessed"] is True


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
def test_dag_end_to_end_on_synthetic_data_then_cached(tmp_path, capsys):
    work = tmp_path / "work"
    assert cli_main(["run", "--work-dir", str(work), "--profile", "tiny"]) == 0
    printed = capsys.readouterr().out
    store, outputs = _outputs(work)
    metrics, version_dir = _assert_products(work, outputs)
    _assert_evaluator_metrics(metrics, _count_records(outputs["CubExampleGen"]["examples"], "test"))
    assert metrics["baseline"] is None  # nothing was blessed before the first run
    # the synthetic data ships embedding pickles: the paper's path, no text encoder
    assert outputs["TextEncoderTrainer"] == {} and outputs["CaptionEmbedder"] == {}
    assert f"pushed model:  {version_dir}" in printed and "baseline: none" in printed
    assert "top-1" in printed and "Stage-I -> Stage-II: consistency" in printed

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

    # a second run with nothing changed is served from the MLMD cache, except the Evaluator:
    # its baseline input is new, the first run's blessed generator, which is this same model
    assert cli_main(["run", "--work-dir", str(work), "--profile", "tiny"]) == 0
    states = results.execution_states(store, PIPELINE)
    for node in TRAINING_NODES:
        if node != "Evaluator":
            assert states[node][-1] == "CACHED", (node, states[node])
    assert states["Evaluator"] == ["COMPLETE", "COMPLETE"]
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

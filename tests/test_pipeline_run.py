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


def _finite_numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _finite_numbers(v)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


@pytest.mark.slow
def test_dag_end_to_end_on_synthetic_data_then_cached(tmp_path, capsys):
    work = tmp_path / "work"
    assert cli_main(["run", "--work-dir", str(work), "--profile", "tiny"]) == 0
    printed = capsys.readouterr().out
    store, outputs = _outputs(work)
    metrics, version_dir = _assert_products(work, outputs)
    assert all(math.isfinite(v) for v in _finite_numbers(metrics))
    # the synthetic data ships embedding pickles: the paper's path, no text encoder
    assert outputs["TextEncoderTrainer"] == {} and outputs["CaptionEmbedder"] == {}
    assert "pushed model:" in printed and version_dir in printed

    # the pushed model generates in this process from its signature alone
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)
    out = loaded.signatures["serving_default"](
        embedding=tf.constant(np.random.default_rng(0).normal(size=(2, 1024)), tf.float32),
        seed=tf.constant(3, tf.int64),
    )
    assert out["image_64"].dtype == tf.uint8 and out["image_64"].shape[0] == 2

    # `stackgan generate` draws a captioned grid from the pushed model (a TF Serving base dir)
    from PIL import Image

    embeddings = tmp_path / "embeddings.npy"
    np.save(embeddings, np.random.default_rng(1).normal(size=(3, 10, 1024)).astype(np.float32))
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
                "--out",
                str(grid),
            ]
        )
        == 0
    )
    assert Image.open(grid).size[0] > 3 * 64

    # a second run with nothing changed is served from the MLMD cache
    assert cli_main(["run", "--work-dir", str(work), "--profile", "tiny"]) == 0
    states = results.execution_states(store, PIPELINE)
    for node in TRAINING_NODES:
        assert states[node][-1] == "CACHED", (node, states[node])


@pytest.mark.slow
def test_dag_on_real_cub_sample_trains_the_text_encoder(tmp_path, cub_sample_root):
    work = tmp_path / "work"
    argv = ["run", "--work-dir", str(work), "--profile", "tiny", "--data", str(cub_sample_root)]
    assert cli_main(argv) == 0
    _, outputs = _outputs(work)
    assert outputs["TextEncoderTrainer"] and outputs["CaptionEmbedder"]
    _, version_dir = _assert_products(work, outputs)

    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)
    assert "text" in loaded.signatures
    out = loaded.signatures["text"](
        caption=tf.constant(["this bird is red with black wings", "a small grey bird"]),
        seed=tf.constant(1, tf.int64),
    )
    assert out["image_64"].shape[0] == 2 and out["image_64"].dtype == tf.uint8

    grid = tmp_path / "grid.png"
    argv = [
        "generate",
        "--model",
        layout.serving_dir(str(work)),
        "--caption",
        "this bird is red with black wings",
        "--n",
        "2",
        "--seed",
        "5",
        "--out",
        str(grid),
    ]
    assert cli_main(argv) == 0 and grid.stat().st_size > 0

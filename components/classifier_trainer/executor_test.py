"""ClassifierTrainer's executor on a tiny Examples artifact (stackgan.training.tiny_examples)."""

from __future__ import annotations

import json
import logging
import os
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from keras.src.utils import file_utils
from killed_fit import killed_at_epoch
from tfx.types import standard_artifacts
from tiny_examples import write_tiny_examples

from stackgan import config
from stackgan.components.classifier_trainer.component import READS
from stackgan.components.classifier_trainer.executor import Executor
from stackgan.evaluation import classifier
from stackgan.evaluation.classifier_data import decode_image
from stackgan.evaluation.classifier_job import RUN_FILE, TENSORBOARD_DIR
from stackgan.schemas import features


def read_images(pattern: str, data_cfg: config.DataConfig) -> dict[int, tuple[int, np.ndarray]]:
    """image id -> (label, uint8 image_high) of the Examples at `pattern`."""
    spec = features.parse_spec(
        features.WITHOUT_EMBEDDINGS, (features.IMAGE_ID, features.LABEL, features.IMAGE_HIGH)
    )
    images = {}
    for serialized in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern), compression_type="GZIP"):
        example = tf.io.parse_single_example(serialized, spec)
        image = decode_image(example[features.IMAGE_HIGH], data_cfg).numpy()
        images[int(example[features.IMAGE_ID])] = (int(example[features.LABEL]), image)
    return images


def _output(artifact_type, uri):
    artifact = artifact_type()
    artifact.uri = uri
    os.makedirs(uri)
    return artifact


@pytest.fixture
def no_downloads(monkeypatch):
    attempts = []

    def refuse(fname, *args, **kwargs):
        attempts.append(fname)
        raise AssertionError(f"download attempted: {fname}")

    monkeypatch.setattr(file_utils, "get_file", refuse)
    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)
    return attempts


@pytest.mark.slow  # a Keras fit, an export and a load of MobileNetV2: 17-24 s on a busy 2-core box
def test_trains_on_test_classes_and_exports_the_contract(
    tmp_path, monkeypatch, no_downloads, caplog, capsys
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))
    cfg = config.tiny().replace(classifier={"classes": "test", "weights": "imagenet"})
    # class-disjoint like StackGAN's split: classes 0, 1 train; 2, 3 test; 6 images each
    examples = write_tiny_examples(
        str(tmp_path / "examples"), cfg, train_classes=(0, 1), test_classes=(2, 3), per_class=6
    )
    model = _output(standard_artifacts.Model, str(tmp_path / "model"))
    model_run = _output(standard_artifacts.ModelRun, str(tmp_path / "model_run"))

    with caplog.at_level(logging.WARNING):
        Executor().Do(
            {"examples": [examples]},
            {"model": [model], "model_run": [model_run]},
            READS.exec_properties(cfg),
        )

    assert no_downloads == []
    # a line per epoch (Keras' verbose=2), as the text encoder prints
    epochs = cfg.classifier.head_epochs + cfg.classifier.finetune_epochs
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch ")]
    assert printed == [f"Epoch {e}/{epochs}" for e in range(1, epochs + 1)]
    assert any("FROM SCRATCH" in r.getMessage() for r in caplog.records)
    run = json.loads((tmp_path / "model_run" / RUN_FILE).read_text())
    assert "FROM SCRATCH" in run["warning"] and run["weights_source"] == "none"
    assert run["class_ids"] == [2, 3] and run["class_names"] == ["003.Bird", "004.Bird"]
    # 20% of 6 images per class, rounded: 1 held out per class
    assert (run["num_train_images"], run["num_holdout_images"]) == (10, 2)
    assert [p["phase"] for p in run["phases"]] == ["scratch"]
    assert model.get_float_custom_property("holdout_top1_accuracy") == run["holdout_top1_accuracy"]
    assert "FROM SCRATCH" in model.get_string_custom_property("warning")
    assert tf.io.gfile.glob(str(tmp_path / "model_run" / TENSORBOARD_DIR / "*" / "events.out.*"))
    # no checkpoint_dir: the epoch backups lived in the run and went once the model was out
    assert sorted(os.listdir(tmp_path / "model_run")) == sorted([RUN_FILE, TENSORBOARD_DIR])

    # TFX's Pusher and TF Serving expect the SavedModel in <uri>/Format-Serving
    loaded = classifier.load_classifier(tmp_path / "model" / "Format-Serving")
    assert loaded.info["class_ids"] == [2, 3]
    # the reported accuracy is the exported model's on the held-out centre crops
    test_images = read_images(str(tmp_path / "examples" / "Split-test" / "*"), cfg.data)
    held = run["holdout_image_ids"]
    assert len(held) == 2 and {test_images[i][0] for i in held} == {2, 3}
    offset = (cfg.data.high_res_stored - cfg.data.high_res) // 2
    crops = np.stack(
        [
            test_images[i][1][
                offset : offset + cfg.data.high_res, offset : offset + cfg.data.high_res
            ]
            for i in held
        ]
    )
    images = tf.image.resize(crops, [32, 32], antialias=True) / 127.5 - 1.0
    predicted = loaded(images)["logits"].numpy().argmax(axis=1)
    expected = np.mean(predicted == np.array([test_images[i][0] - 2 for i in held]))
    assert run["holdout_top1_accuracy"] == pytest.approx(expected)


@pytest.mark.slow  # two runs of a from-scratch fit: ~30 s on a 2-core box
def test_a_killed_run_resumes_from_its_last_epoch(tmp_path, monkeypatch, no_downloads, capsys):
    """A run killed after 2 of its 4 epochs, started again with new output artifacts (as TFX
    gives every execution) and the same `checkpoint_dir`, trains only the 2 epochs left and
    reports all 4; the backup is gone once the model is exported."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))
    cfg = config.tiny().replace(
        classifier={"classes": "test", "weights": "none", "head_epochs": 2, "finetune_epochs": 2}
    )
    examples = write_tiny_examples(
        str(tmp_path / "examples"), cfg, train_classes=(0, 1), test_classes=(2, 3), per_class=6
    )
    properties = {**READS.exec_properties(cfg), "checkpoint_dir": str(tmp_path / "checkpoints")}

    def run(name: str):
        model = _output(standard_artifacts.Model, str(tmp_path / name / "model"))
        model_run = _output(standard_artifacts.ModelRun, str(tmp_path / name / "run"))
        Executor().Do(
            {"examples": [examples]}, {"model": [model], "model_run": [model_run]}, properties
        )
        return model

    with killed_at_epoch(monkeypatch, 2):
        run("killed")
    assert os.listdir(tmp_path / "killed" / "model") == []  # no model that looks finished
    assert os.listdir(tmp_path / "checkpoints")  # the unfinished run's backup
    capsys.readouterr()

    model = run("resumed")
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch ")]
    assert printed == ["Epoch 3/4", "Epoch 4/4"]  # only the epochs the kill left
    run_json = json.loads((tmp_path / "resumed" / "run" / RUN_FILE).read_text())
    [phase] = run_json["phases"]
    assert phase["phase"] == "scratch" and len(phase["history"]["loss"]) == 4
    assert all(np.isfinite(phase["history"]["loss"]))
    assert not os.path.exists(tmp_path / "checkpoints") or not os.listdir(tmp_path / "checkpoints")
    loaded = classifier.load_classifier(os.path.join(model.uri, "Format-Serving"))
    assert loaded.info["class_ids"] == [2, 3]

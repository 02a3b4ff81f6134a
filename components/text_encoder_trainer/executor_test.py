"""TextEncoderTrainer's executor on a tiny Examples artifact of one-colour birds and a stand-in
classifier whose features are the mean colour."""

from __future__ import annotations

import csv
import io
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from killed_fit import killed_at_epoch
from PIL import Image
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.channel_utils import as_channel

from stackgan import config as config_lib
from stackgan.components.text_encoder_trainer.component import (
    DISTILL_READS,
    READS,
    TextEncoderTrainer,
)
from stackgan.components.text_encoder_trainer.executor import Executor
from stackgan.evaluation import classifier
from stackgan.text.encoder_job import METRICS_FILE, TENSORBOARD_DIR
from stackgan.tfrecords import example_codec
from stackgan.tfrecords.shard_writer import TFRecordShardWriter, shard_name
from stackgan.training.epoch_backup import HISTORY_FILE

# label k is painted and described in COLOURS[k]; class 3 is another red species, never seen
# in training: a zero-shot class whose captions use a word the encoder learned
COLOURS = ("red", "blue", "green", "red")
RGB = {"red": (220, 20, 20), "blue": (20, 20, 220), "green": (20, 220, 20)}


def _png(rgb, size: int, seed: int) -> bytes:
    noise = np.random.default_rng(seed).integers(-30, 30, (size, size, 3))
    array = np.clip(np.asarray(rgb) + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _colour_embedding(colour: str, dim: int) -> np.ndarray:
    """The dataset's embedding of a caption naming `colour`: a fixed random direction per
    colour (nearly orthogonal to the others), elements of order 1 as in the releases'."""
    vector = np.random.default_rng(sorted(RGB).index(colour)).standard_normal(dim)
    return (vector * np.sqrt(dim) / np.linalg.norm(vector)).astype(np.float32)


def _examples(uri, data_cfg, splits: dict[str, list[int]], captions_of=None, embeddings=False):
    """Examples at `uri`: per split, 3 images of each listed label; label k is painted and
    described in COLOURS[k] (with `embeddings`, each caption embedded as `_colour_embedding`)."""
    artifact = standard_artifacts.Examples()
    artifact.uri = str(uri)
    artifact.split_names = artifact_utils.encode_split_names(list(splits))
    image_id = 0
    for split, labels in splits.items():
        os.makedirs(uri / f"Split-{split}")
        with TFRecordShardWriter(str(uri / f"Split-{split}" / shard_name(0, 1))) as writer:
            for label in labels:
                for _ in range(3):
                    image_id += 1
                    colour = COLOURS[label]
                    rgb = RGB[colour]
                    captions = (captions_of or (lambda c, i: f"a {c} bird, picture {i}"))(
                        colour, image_id
                    )
                    captions = captions if isinstance(captions, tuple) else (captions,) * 10
                    writer.write(
                        example_codec.encode(
                            example_codec.ImageRecord(
                                image_id=image_id,
                                filename=f"{label + 1:03d}.C/C_{image_id}",
                                label=label,
                                class_id=label + 1,
                                class_name=f"{label + 1:03d}.C",
                                image_high=_png(rgb, data_cfg.high_res_stored, image_id),
                                image_low=_png(rgb, data_cfg.low_res_stored, image_id),
                                captions=captions,
                                embedding=(
                                    np.stack(
                                        [_colour_embedding(colour, data_cfg.embedding_dim)] * 10
                                    )
                                    if embeddings
                                    else None
                                ),
                            )
                        )
                    )
    return artifact


def _colour_classifier(num_classes: int) -> classifier.ClassifierModels:
    """A stand-in with the classifier contract (image -> logits, features) whose features are
    each image's mean colour. An untrained MobileNetV2's features are the same for every image
    (std ~1e-11), which leaves the text encoder nothing to align captions to."""
    image = keras.Input((None, None, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D(name="mean_colour")(image)
    logits = keras.layers.Dense(num_classes, name="logits")(features)
    model = keras.Model(image, {"logits": logits, "features": features})
    return classifier.ClassifierModels(model, model, model, pretrained=False)


@pytest.fixture(scope="module")
def classifier_model(tmp_path_factory):
    uri = tmp_path_factory.mktemp("classifier")
    classifier.export_classifier(
        _colour_classifier(4),
        uri / "Format-Serving",
        {"class_ids": [0, 1, 2, 3], "weights_source": "none", "warning": "mean colour, a test"},
    )
    artifact = standard_artifacts.Model()
    artifact.uri = str(uri)
    return artifact


def _outputs(tmp_path):
    model, run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, run.uri = str(tmp_path / "model"), str(tmp_path / "run")
    os.makedirs(model.uri)
    os.makedirs(run.uri)
    return model, run


def _captions(colour: str, image_id: int):
    # image 2 has only blank captions (skipped), image 3 one real caption among blanks
    if image_id == 2:
        return ("",) * 10
    if image_id == 3:
        return (f"a {colour} bird",) + (" ",) * 9
    return f"a {colour} bird, picture {image_id}"


def test_trains_exports_a_string_encoder_and_reports_zero_shot_retrieval(
    classifier_model, tmp_path, capsys
):
    cfg = config_lib.tiny().replace(text={"epochs": 2})
    examples = _examples(
        tmp_path / "examples", cfg.data, {"train": [0, 1, 2], "test": [3, 1]}, _captions
    )
    model, run = _outputs(tmp_path)
    Executor().Do(
        {"examples": [examples], "classifier": [classifier_model]},
        {"model": [model], "model_run": [run]},
        {**READS.exec_properties(cfg), "objective": "ds_sje"},
    )
    loaded = tf.saved_model.load(os.path.join(model.uri, "Format-Serving"))
    out = loaded.signatures["serving_default"](caption=tf.constant(["a new sentence", ""]))
    assert out["embedding"].shape == (2, cfg.text.embedding_dim)

    with open(os.path.join(run.uri, HISTORY_FILE)) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {"loss", "val_loss"} <= set(rows[0])
    # progress while it runs (a line per epoch) and its curves for TensorBoard
    assert "Epoch 2/2" in capsys.readouterr().out
    events = tf.io.gfile.glob(os.path.join(run.uri, TENSORBOARD_DIR, "train", "events.out.*"))
    tags = {
        value.tag
        for path in events
        for event in tf.compat.v1.train.summary_iterator(path)
        for value in event.summary.value
    }
    assert "epoch_loss" in tags, tags
    metrics = json.loads((tmp_path / "run" / METRICS_FILE).read_text())
    zero_shot = metrics["zero_shot"]
    assert (zero_shot["images"], zero_shot["classes"], zero_shot["chance"]) == (6, 2, 0.5)
    # Chance is 1/2 (2 test classes). The unseen red class and the blue one differ in colour
    # and in a caption word the encoder learned: measured 1.0 for text.seed 0-7, after 2 epochs.
    assert zero_shot["top1"] >= 5 / 6, zero_shot
    assert metrics["image_features_warning"] == ""
    assert metrics["splits"]["train"] == {
        "images_read": 9, "skipped_no_captions": 1, "blank_captions_dropped": 19
    }  # fmt: skip
    assert metrics["seen_classes"]["images"] == 8
    assert metrics["seen_classes"]["top1"] >= 7 / 8  # chance 1/3; measured 1.0 (seeds 0-7)
    assert metrics["classifier"]["weights_source"] == "none"
    assert len(metrics["history"]["loss"]) == 2


def test_distills_the_datasets_embeddings_without_a_classifier(tmp_path):
    """The "distill" objective: captions -> the dataset's embeddings of them, scored on the
    test split's captions, exported with the caption signature alone."""
    cfg = config_lib.tiny().replace(text={"distill_epochs": 30})
    examples = _examples(
        tmp_path / "examples", cfg.data, {"train": [0, 1, 2], "test": [3, 1]}, embeddings=True
    )
    model, run = _outputs(tmp_path)
    Executor().Do(
        {"examples": [examples]},
        {"model": [model], "model_run": [run]},
        {**DISTILL_READS.exec_properties(cfg), "objective": "distill"},
    )
    loaded = tf.saved_model.load(os.path.join(model.uri, "Format-Serving"))
    assert sorted(loaded.signatures) == ["serving_default"]  # no image side
    embed = loaded.signatures["serving_default"]
    out = embed(caption=tf.constant(["a blue bird", "a red bird, picture 99"]))["embedding"]
    for row, colour in zip(out.numpy(), ("blue", "red"), strict=True):
        target = _colour_embedding(colour, cfg.data.embedding_dim)
        assert np.dot(row, target) / np.linalg.norm(row) / np.linalg.norm(target) > 0.9

    metrics = json.loads((tmp_path / "run" / METRICS_FILE).read_text())
    assert metrics["objective"] == "distill"
    test = metrics["test_captions"]
    assert test["captions"] == 60
    # one embedding for every caption (the training mean of red, blue, green) reaches about
    # 1/sqrt(3) in direction; the encoder must read the colour word to pass 0.9
    assert test["input_blind_cosine"] == pytest.approx(1 / np.sqrt(3), abs=0.05)
    assert test["cosine"] > 0.9, test
    assert metrics["splits"]["train"] == {"images_read": 9, "blank_captions_dropped": 0}
    assert len(metrics["history"]["loss"]) == 30


def test_a_killed_distillation_resumes_from_its_last_epoch(tmp_path, monkeypatch):
    """The Quickstart's path (data with embeddings: the "distill" objective) killed after 2 of
    its 4 epochs resumes from the same `checkpoint_dir` and reports all 4."""
    cfg = config_lib.tiny().replace(text={"distill_epochs": 4})
    examples = _examples(
        tmp_path / "examples", cfg.data, {"train": [0, 1, 2], "test": [3, 1]}, embeddings=True
    )
    properties = {
        **DISTILL_READS.exec_properties(cfg),
        "objective": "distill",
        "checkpoint_dir": str(tmp_path / "checkpoints"),
    }
    model, run = _outputs(tmp_path / "killed")
    with killed_at_epoch(monkeypatch, 2):
        Executor().Do({"examples": [examples]}, {"model": [model], "model_run": [run]}, properties)
    assert os.listdir(model.uri) == []  # no model that looks finished

    # other captions and embeddings: a fresh start, never the killed run's weights
    other = _examples(
        tmp_path / "other", cfg.data, {"train": [0, 1], "test": [3, 1]}, embeddings=True
    )
    model, run = _outputs(tmp_path / "other_data")
    Executor().Do({"examples": [other]}, {"model": [model], "model_run": [run]}, properties)
    metrics = json.loads((tmp_path / "other_data" / "run" / METRICS_FILE).read_text())
    assert metrics["resumed_from_epoch"] == 0 and len(metrics["history"]["loss"]) == 4

    model, run = _outputs(tmp_path / "resumed")
    Executor().Do({"examples": [examples]}, {"model": [model], "model_run": [run]}, properties)
    metrics = json.loads((tmp_path / "resumed" / "run" / METRICS_FILE).read_text())
    assert metrics["objective"] == "distill" and metrics["resumed_from_epoch"] == 2
    assert len(metrics["history"]["loss"]) == 4  # the 2 before the kill and the 2 after
    assert not os.path.exists(tmp_path / "checkpoints")  # done: the backup removed
    assert os.path.isdir(os.path.join(model.uri, "Format-Serving"))


def test_a_missing_train_split_is_an_error_naming_the_artifact(classifier_model, tmp_path):
    cfg = config_lib.tiny()
    examples = _examples(tmp_path / "examples", cfg.data, {"test": [0, 1]})
    model, run = _outputs(tmp_path)
    with pytest.raises(ValueError, match=r"examples: no 'train' split"):
        Executor().Do(
            {"examples": [examples], "classifier": [classifier_model]},
            {"model": [model], "model_run": [run]},
            {**READS.exec_properties(cfg), "objective": "ds_sje"},
        )
    assert os.listdir(model.uri) == []  # nothing that looks like a finished model


def test_component_declares_its_channels():
    component = TextEncoderTrainer(
        examples=as_channel([standard_artifacts.Examples()]),
        classifier=as_channel([standard_artifacts.Model()]),
        config=config_lib.tiny(),
    )
    assert set(component.inputs) == {"examples", "classifier"}
    assert set(component.outputs) == {"model", "model_run"}
    distiller = TextEncoderTrainer(
        examples=as_channel([standard_artifacts.Examples()]),
        classifier=None,
        config=config_lib.tiny(),
        objective="distill",
    )
    assert set(distiller.inputs) == {"examples"}
    assert distiller.exec_properties["objective"] == "distill"
    with pytest.raises(ValueError, match="image side of ds_sje"):
        TextEncoderTrainer(
            examples=as_channel([standard_artifacts.Examples()]),
            classifier=None,
            config=config_lib.tiny(),
        )


@pytest.mark.parametrize("where", ["local", "url"])
def test_a_killed_run_resumes_from_its_last_epoch(classifier_model, tmp_path, monkeypatch, where):
    """A run killed after 2 of its 4 epochs, started again (new output artifacts, as TFX gives
    every execution, the same `checkpoint_dir`), trains the 2 epochs left and reports all 4;
    the backup is gone once the model is exported. Also with the checkpoint dir as a file://
    URL, which Keras and tf.io.gfile treat as remote, as they do gs:// (Kubeflow's)."""

    cfg = config_lib.tiny().replace(text={"epochs": 4})
    examples = _examples(
        tmp_path / "examples", cfg.data, {"train": [0, 1, 2], "test": [3, 1]}, _captions
    )
    properties = {
        **READS.exec_properties(cfg),
        "objective": "ds_sje",
        "checkpoint_dir": ("file://" if where == "url" else "") + str(tmp_path / "checkpoints"),
    }

    model, run = _outputs(tmp_path / "killed")
    with killed_at_epoch(monkeypatch, 2):
        Executor().Do(
            {"examples": [examples], "classifier": [classifier_model]},
            {"model": [model], "model_run": [run]},
            properties,
        )
    assert os.listdir(model.uri) == []  # no model that looks finished
    assert len(os.listdir(tmp_path / "checkpoints")) == 1  # the unfinished run's backup

    model, run = _outputs(tmp_path / "resumed")
    Executor().Do(
        {"examples": [examples], "classifier": [classifier_model]},
        {"model": [model], "model_run": [run]},
        properties,
    )
    metrics = json.loads((tmp_path / "resumed" / "run" / METRICS_FILE).read_text())
    assert metrics["resumed_from_epoch"] == 2
    assert len(metrics["history"]["loss"]) == 4  # the 2 before the kill and the 2 after
    with open(os.path.join(run.uri, HISTORY_FILE)) as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1", "2", "3"]
    assert metrics["zero_shot"]["top1"] >= 5 / 6, metrics["zero_shot"]
    assert not os.path.exists(tmp_path / "checkpoints")  # done: the backup removed
    assert os.path.isdir(os.path.join(model.uri, "Format-Serving"))

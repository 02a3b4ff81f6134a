"""ClassifierTrainer's executor on a hand-written tiny Examples artifact."""

from __future__ import annotations

import io
import json
import logging
import os
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from keras.src.utils import file_utils
from PIL import Image
from tfx.types import standard_artifacts

from stackgan import config
from stackgan.components.classifier_trainer.executor import RUN_FILE, SERVING_DIR, Executor
from stackgan.evaluation import classifier

# class -> colour of its images, so that labels are learnable in principle
COLOURS = {0: (200, 30, 30), 1: (30, 200, 30), 2: (30, 30, 200), 3: (200, 200, 30)}


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def make_image(label: int, image_id: int, size: int) -> np.ndarray:
    """A uint8 [size, size, 3] image: the class colour plus per-image noise."""
    rng = np.random.default_rng(image_id)
    noise = rng.integers(-40, 40, (size, size, 3))
    return np.clip(np.array(COLOURS[label]) + noise, 0, 255).astype(np.uint8)


def write_examples(
    uri: str,
    splits: dict[str, list[tuple[int, int]]],
    data_cfg: config.DataConfig,
    with_embeddings: bool = False,
) -> standard_artifacts.Examples:
    """An Examples artifact at `uri` with `splits` {name: [(image_id, label), ...]}, laid out as
    CubExampleGen writes it (Split-<name>/ of gzipped TFRecords, features of schema.pbtxt)."""

    def feature(values, kind):
        if kind == "int":
            return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        if kind == "float":
            return tf.train.Feature(float_list=tf.train.FloatList(value=values))
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    for split, images in splits.items():
        os.makedirs(os.path.join(uri, f"Split-{split}"))
        path = os.path.join(uri, f"Split-{split}", "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for image_id, label in images:
                high = make_image(label, image_id, data_cfg.high_res_stored)
                low = np.asarray(
                    Image.fromarray(high).resize((data_cfg.low_res_stored,) * 2, Image.BICUBIC)
                )
                name = f"{label + 1:03d}.Class_{label}"
                captions = [
                    f"bird {image_id} of class {label}, caption {i}".encode()
                    for i in range(data_cfg.captions_per_image)
                ]
                features = {
                    "image_id": feature([image_id], "int"),
                    "filename": feature([f"{name}/Bird_{image_id}".encode()], "bytes"),
                    "label": feature([label], "int"),
                    "class_id": feature([label + 1], "int"),
                    "class_name": feature([name.encode()], "bytes"),
                    "image_high": feature([_png(high)], "bytes"),
                    "image_low": feature([_png(low)], "bytes"),
                    "captions": feature(captions, "bytes"),
                }
                if with_embeddings:
                    rng = np.random.default_rng(image_id)
                    shape = (data_cfg.captions_per_image, data_cfg.embedding_dim)
                    features["embedding"] = feature(rng.normal(size=shape).ravel(), "float")
                example = tf.train.Example(features=tf.train.Features(feature=features))
                writer.write(example.SerializeToString())
    examples = standard_artifacts.Examples()
    examples.uri = uri
    examples.split_names = json.dumps(sorted(splits))
    return examples


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


def _centre_crop(image: np.ndarray, crop: int) -> np.ndarray:
    offset = (image.shape[0] - crop) // 2
    return image[offset : offset + crop, offset : offset + crop]


def test_trains_on_test_classes_and_exports_the_contract(
    tmp_path, monkeypatch, no_downloads, caplog
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))
    cfg = config.tiny().replace(classifier={"classes": "test", "weights": "imagenet"})
    # class-disjoint like StackGAN's split: classes 0, 1 train; 2, 3 test; 6 images each
    train = [(i, i % 2) for i in range(1, 13)]
    test = [(i, 2 + i % 2) for i in range(13, 25)]
    examples = write_examples(str(tmp_path / "examples"), {"train": train, "test": test}, cfg.data)
    model = _output(standard_artifacts.Model, str(tmp_path / "model"))
    model_run = _output(standard_artifacts.ModelRun, str(tmp_path / "model_run"))

    with caplog.at_level(logging.WARNING):
        Executor().Do(
            {"examples": [examples]},
            {"model": [model], "model_run": [model_run]},
            {"config_json": cfg.to_json()},
        )

    assert no_downloads == []
    assert any("FROM SCRATCH" in r.getMessage() for r in caplog.records)
    run = json.loads((tmp_path / "model_run" / RUN_FILE).read_text())
    assert "FROM SCRATCH" in run["warning"] and run["weights_source"] == "none"
    assert run["class_ids"] == [2, 3] and run["class_names"] == ["003.Class_2", "004.Class_3"]
    # 20% of 6 images per class, rounded: 1 held out per class
    assert (run["num_train_images"], run["num_holdout_images"]) == (10, 2)
    assert [p["phase"] for p in run["phases"]] == ["scratch"]

    loaded = classifier.load_classifier(tmp_path / "model" / SERVING_DIR)
    assert loaded.info["class_ids"] == [2, 3]
    # the reported accuracy is the exported model's on the held-out centre crops
    held = run["holdout_image_ids"]
    assert len(held) == 2 and all(13 <= i <= 24 for i in held)
    labels = dict(test)
    crops = [
        _centre_crop(make_image(labels[i], i, cfg.data.high_res_stored), cfg.data.high_res)
        for i in held
    ]
    images = tf.image.resize(np.stack(crops), [32, 32], antialias=True) / 127.5 - 1.0
    predicted = loaded(images)["logits"].numpy().argmax(axis=1)
    expected = np.mean(predicted == np.array([labels[i] - 2 for i in held]))
    assert run["holdout_top1_accuracy"] == pytest.approx(expected)

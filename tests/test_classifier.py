"""The MobileNetV2 CUB classifier: weights lookup without downloads, fine-tuning phases, export."""

from __future__ import annotations

import dataclasses
import urllib.request

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.utils import file_utils

from stackgan.evaluation import classifier as clf


class DownloadAttempted(AssertionError):
    pass


@pytest.fixture
def no_downloads(monkeypatch):
    """Any attempt by Keras to fetch a file fails the test; the attempted names are recorded."""
    attempts: list[str] = []

    def refuse(fname, *args, **kwargs):
        attempts.append(fname)
        raise DownloadAttempted(f"download attempted: {fname}")

    monkeypatch.setattr(file_utils, "get_file", refuse)
    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)
    return attempts


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path / "keras_home"


@pytest.fixture
def tiny_cfg(tiny_config):
    return tiny_config.classifier


def _backbone(cfg):
    return keras.applications.MobileNetV2(
        input_shape=(cfg.image_size, cfg.image_size, 3),
        alpha=cfg.alpha,
        include_top=False,
        weights=None,
        pooling="avg",
    )


def _random_batches(num_images=24, num_classes=3, size=40, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (num_images, size, size, 3)).astype("float32")
    labels = np.arange(num_images) % num_classes
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)


def test_cache_file_name_is_the_one_keras_would_download(tiny_cfg, no_downloads):
    for size in (32, 96):
        cfg = dataclasses.replace(tiny_cfg, image_size=size)
        with pytest.raises(DownloadAttempted):
            keras.applications.MobileNetV2(
                input_shape=(size, size, 3), alpha=cfg.alpha, include_top=False, weights="imagenet"
            )
        assert no_downloads[-1] == clf.imagenet_weights_file(cfg).name
    assert no_downloads == [
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5",
    ]


def test_missing_imagenet_weights_train_from_scratch_with_a_loud_warning(
    tiny_cfg, empty_keras_home, no_downloads
):
    cfg = dataclasses.replace(tiny_cfg, weights="imagenet")
    choice = clf.choose_weights(cfg)
    assert choice.path is None and not choice.pretrained
    assert "FROM SCRATCH" in choice.warning
    assert str(empty_keras_home / "models") in choice.warning
    models = clf.build_classifier(cfg, num_classes=3, weights=choice)
    outputs = models.classifier(np.zeros((2, 40, 40, 3), "float32"))
    assert outputs["logits"].shape == (2, 3) and outputs["features"].shape == (2, 1280)
    assert no_downloads == []


def test_weights_are_taken_from_the_keras_cache(tiny_cfg, empty_keras_home, no_downloads):
    cfg = dataclasses.replace(tiny_cfg, weights="imagenet")
    reference = _backbone(cfg)
    path = clf.imagenet_weights_file(cfg)
    path.parent.mkdir(parents=True)
    reference.save(path)  # the legacy HDF5 layout of the published weight files

    choice = clf.choose_weights(cfg)
    assert (choice.path, choice.source, choice.warning) == (str(path), "keras-cache", "")
    models = clf.build_classifier(cfg, num_classes=3, weights=choice)
    for expected, loaded in zip(reference.weights, models.backbone.weights, strict=True):
        np.testing.assert_array_equal(loaded.numpy(), expected.numpy())
    assert no_downloads == []


def test_weights_path_option(tiny_cfg, tmp_path, empty_keras_home):
    given = tmp_path / "mine.h5"
    _backbone(tiny_cfg).save(given)
    cfg = dataclasses.replace(tiny_cfg, weights="imagenet", weights_path=str(given))
    assert clf.choose_weights(cfg) == clf.WeightsChoice(str(given), "weights_path", "")
    absent = dataclasses.replace(cfg, weights_path=str(tmp_path / "absent.h5"))
    with pytest.raises(FileNotFoundError, match="ClassifierConfig.weights_path"):
        clf.choose_weights(absent)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"weights": "resnet"}, "ClassifierConfig.weights must be"),
        ({"weights": "imagenet", "alpha": 0.4}, "ClassifierConfig.alpha=0.4 has no ImageNet"),
    ],
)
def test_bad_weight_settings_are_rejected(tiny_cfg, fields, message):
    with pytest.raises(ValueError, match=message):
        clf.choose_weights(dataclasses.replace(tiny_cfg, **fields))


def test_pretrained_fine_tuning_freezes_the_backbone_then_trains_its_upper_layers(
    tiny_cfg, empty_keras_home, no_downloads
):
    cfg = dataclasses.replace(
        tiny_cfg, weights="imagenet", head_epochs=1, finetune_epochs=1, finetune_from_block=100
    )
    path = clf.imagenet_weights_file(cfg)
    path.parent.mkdir(parents=True)
    _backbone(cfg).save(path)
    models = clf.build_classifier(cfg, num_classes=3, weights=clf.choose_weights(cfg))
    layers = models.backbone.layers
    snapshots = [[w.numpy().copy() for w in models.backbone.weights]]

    class Snapshot(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            snapshots.append([w.numpy().copy() for w in models.backbone.weights])

    data = _random_batches()
    phases = clf.fine_tune(models, data, data, cfg, callbacks=[Snapshot()])

    assert [p["phase"] for p in phases] == ["head", "finetune"]
    assert [p["learning_rate"] for p in phases] == [
        cfg.learning_rate_head,
        cfg.learning_rate_finetune,
    ]
    assert all(len(p["history"]["val_loss"]) == 1 for p in phases)
    before, after_head, after_finetune = snapshots
    assert all(np.array_equal(a, b) for a, b in zip(before, after_head, strict=True))
    lower = {id(v) for layer in layers[:100] for v in layer.weights}
    changed = {
        id(v)
        for v, a, b in zip(models.backbone.weights, after_head, after_finetune, strict=True)
        if not np.array_equal(a, b)
    }
    assert changed and not (changed & lower)


def test_from_scratch_trains_every_layer_in_one_phase(tiny_cfg, no_downloads):
    models = clf.build_classifier(tiny_cfg, num_classes=3, weights=clf.choose_weights(tiny_cfg))
    first_conv = models.backbone.get_layer("Conv1").kernel.numpy().copy()
    data = _random_batches()
    phases = clf.fine_tune(models, data, data, tiny_cfg)
    assert [p["phase"] for p in phases] == ["scratch"]
    epochs = tiny_cfg.head_epochs + tiny_cfg.finetune_epochs
    assert len(phases[0]["history"]["loss"]) == epochs
    assert not np.array_equal(models.backbone.get_layer("Conv1").kernel.numpy(), first_conv)


def test_top1_accuracy_counts_argmax_hits():
    # an identity "classifier": the images are their own logits
    identity = keras.Sequential([keras.Input((3,)), keras.layers.Identity()])
    models = clf.ClassifierModels(identity, identity, identity, pretrained=False)
    logits = np.array([[3, 1, 0], [0, 2, 1], [1, 0, 2], [5, 0, 0]], "float32")
    labels = np.array([0, 1, 0, 2])  # hits, hits, misses, misses
    data = tf.data.Dataset.from_tensor_slices((logits, labels)).batch(3)
    assert clf.top1_accuracy(models, data) == 0.5


def test_export_and_load_follow_the_classifier_contract(tiny_cfg, tmp_path):
    models = clf.build_classifier(tiny_cfg, num_classes=4, weights=clf.choose_weights(tiny_cfg))
    info = {"class_ids": [3, 5, 8, 13], "holdout_top1_accuracy": 0.75}
    export_dir = tmp_path / "Format-Serving"
    clf.export_classifier(models, export_dir, info)

    loaded = clf.load_classifier(export_dir)
    assert loaded.info == info and loaded.num_classes == 4
    signature = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"image"}
    assert set(signature.structured_outputs) == {"logits", "features"}
    rng = np.random.default_rng(0)
    for size in (20, 48):  # any input size: resized inside to image_size
        images = rng.uniform(-1, 1, (5, size, size, 3)).astype("float32")
        outputs = loaded(images)
        expected = models.classifier(images, training=False)
        assert outputs["logits"].shape == (5, 4) and outputs["features"].shape == (5, 1280)
        for key in ("logits", "features"):
            np.testing.assert_allclose(outputs[key].numpy(), expected[key].numpy(), atol=1e-5)
    batched = loaded.predict(images, batch_size=2)
    np.testing.assert_allclose(batched["logits"], outputs["logits"].numpy(), atol=1e-5)


def test_loading_something_else_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="classifier.json"):
        clf.load_classifier(tmp_path)

"""The MobileNetV2 CUB classifier: weights lookup without downloads, fine-tuning phases, export."""

from __future__ import annotations

import dataclasses
import urllib.request

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.utils import file_utils
from PIL import Image
from tiny_examples import write_tiny_examples

from stackgan.components.classifier_trainer.executor_test import read_images
from stackgan.data import synth_birds
from stackgan.evaluation import classifier as clf
from stackgan.evaluation import classifier_data


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


# Keras warns that it has no 32-pixel weights and would use the 224 ones: that is the point
@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square")
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
    # the from-scratch changes (zeroed residual scales, fused BatchNorm) stay out of fine-tuning
    assert not any(
        isinstance(layer, clf.FusedBatchNormalization) for layer in models.backbone.layers
    )
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


@pytest.mark.slow  # two Keras fits of MobileNetV2: ~10 s alone, more on a shared machine
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


@pytest.mark.parametrize("where", ["local", "url"])
def test_fine_tuning_killed_in_its_second_phase_restores_the_first_and_resumes_the_second(
    tiny_cfg, empty_keras_home, no_downloads, tmp_path, where
):
    """With epoch backups a run killed in the "finetune" phase is, started again in new
    models: the "head" phase restored as it ended (its weights, its history) and not run
    again, the "finetune" phase resumed after its last finished epoch. Also with the backups
    under a file:// URL, which Keras and tf.io.gfile treat as remote, as they do gs://."""
    from stackgan.training.epoch_backup import open_backup

    cfg = dataclasses.replace(
        tiny_cfg, weights="imagenet", head_epochs=2, finetune_epochs=3, finetune_from_block=100
    )
    path = clf.imagenet_weights_file(cfg)
    path.parent.mkdir(parents=True)
    _backbone(cfg).save(path)
    data = _random_batches()

    def backups(phase):
        root = ("file://" if where == "url" else "") + str(tmp_path / "backup")
        return open_backup(root, {"phase": phase}, min_interval_s=0)

    class Watch(keras.callbacks.Callback):
        """Records each fit's starting weights and epochs; kills the run at `kill`."""

        def __init__(self, models, kill=None):
            super().__init__()
            self.models, self.kill, self.fits = models, kill, []

        def on_train_begin(self, logs=None):  # before the backup's own restore
            self.fits.append({"start": [w.numpy().copy() for w in self.models.trainable.weights],
                              "epochs": []})  # fmt: skip

        def on_epoch_begin(self, epoch, logs=None):
            if (len(self.fits), epoch) == self.kill:
                raise KeyboardInterrupt("killed")
            self.fits[-1]["epochs"].append(epoch)

    killed_models = clf.build_classifier(cfg, num_classes=3, weights=clf.choose_weights(cfg))
    killed = Watch(killed_models, kill=(2, 1))  # the second fit (finetune), its second epoch
    with pytest.raises(KeyboardInterrupt):
        clf.fine_tune(killed_models, data, data, cfg, callbacks=[killed], backups=backups)
    assert [f["epochs"] for f in killed.fits] == [[0, 1], [0]]
    head_end = killed.fits[1]["start"]  # the weights the head phase ended with

    models = clf.build_classifier(cfg, num_classes=3, weights=clf.choose_weights(cfg))
    again = Watch(models)
    phases = clf.fine_tune(models, data, data, cfg, callbacks=[again], backups=backups)
    assert [f["epochs"] for f in again.fits] == [[1, 2]]  # no head fit; finetune from epoch 1
    for a, b in zip(head_end, again.fits[0]["start"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert [p["phase"] for p in phases] == ["head", "finetune"]
    assert [len(p["history"]["val_loss"]) for p in phases] == [2, 3]


def test_precise_batchnorm_sets_moving_statistics_to_the_mean_over_batches(tiny_cfg):
    models = clf.build_classifier(tiny_cfg, num_classes=3, weights=clf.choose_weights(tiny_cfg))
    backbone = models.backbone
    rng = np.random.default_rng(0)
    batches = [rng.uniform(-0.2, 1.0, (4, 32, 32, 3)).astype("float32") for _ in range(3)]
    data = tf.data.Dataset.from_tensor_slices((np.concatenate(batches), np.zeros(12, "int64")))
    conv1 = keras.Model(backbone.input, backbone.get_layer("Conv1").output)
    expected = np.mean([conv1(b).numpy().mean(axis=(0, 1, 2)) for b in batches], axis=0)
    bn = backbone.get_layer("bn_Conv1")
    assert not np.allclose(bn.moving_mean.numpy(), expected, atol=1e-3)  # initial zeros

    clf.recalibrate_batchnorm(backbone, data.batch(4), max_batches=3)

    np.testing.assert_allclose(bn.moving_mean.numpy(), expected, rtol=1e-4, atol=1e-6)
    assert bn.momentum == 0.999  # MobileNetV2's own value, restored for training


def test_scratch_backbone_starts_its_residual_blocks_as_identities(tiny_cfg):
    models = clf.build_classifier(tiny_cfg, num_classes=3, weights=clf.choose_weights(tiny_cfg))
    layers = models.backbone.layers
    batchnorms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(batchnorms) == 52
    assert all(isinstance(layer, clf.FusedBatchNormalization) for layer in batchnorms)
    residual = {
        layer.name.removesuffix("_add") + "_project_BN"
        for layer in layers
        if isinstance(layer, keras.layers.Add)
    }
    assert len(residual) == 10  # MobileNetV2's blocks 2, 4, 5, 7, 8, 9, 11, 12, 14, 15
    for layer in batchnorms:
        expected = 0.0 if layer.name in residual else 1.0
        np.testing.assert_array_equal(layer.gamma.numpy(), expected, err_msg=layer.name)
    # so each residual block passes its input through unchanged at the start
    block = keras.Model(models.backbone.input, models.backbone.get_layer("block_2_add").output)
    skip = keras.Model(
        models.backbone.input, models.backbone.get_layer("block_1_project_BN").output
    )
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(block(images).numpy(), skip(images).numpy(), atol=1e-6)


def test_fused_batchnorm_matches_keras_batchnorm():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (4, 5, 5, 6)).astype("float32"))
    reference = keras.layers.BatchNormalization(momentum=0.9)
    fused = clf.FusedBatchNormalization(momentum=0.9)
    for layer in (reference, fused):
        layer.build(x.shape)
    reference.gamma.assign(rng.uniform(0.5, 1.5, 6).astype("float32"))
    reference.beta.assign(rng.uniform(-1, 1, 6).astype("float32"))
    fused.set_weights(reference.get_weights())
    upstream = tf.constant(rng.normal(size=x.shape).astype("float32"))
    results = []
    for layer in (reference, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        grads = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
        stats = [layer.moving_mean.numpy(), layer.moving_variance.numpy()]
        results.append([y.numpy(), *[g.numpy() for g in grads], *stats])
        results[-1].append(layer(x, training=False).numpy())
    for expected, actual in zip(*results, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(results[0][4], 0.0)  # the moving mean did move


def test_fused_adam_takes_the_same_steps_as_keras_adam():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5)).astype("float32")
    y = rng.integers(0, 3, 32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, 4, warmup_target=0.05, warmup_steps=2)
    weights = []
    for optimizer in (keras.optimizers.Adam(schedule), clf.FusedAdam(schedule)):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8), keras.layers.Dense(3)])
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=False,
        )
        initial = [w.copy() for w in model.get_weights()]
        model.fit(data, epochs=2, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    for expected, actual, start in zip(*weights, initial, strict=True):
        assert not np.allclose(expected, start)
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_scratch_schedule_warms_up_then_decays_to_zero(tiny_cfg):
    cfg = dataclasses.replace(
        tiny_cfg, head_epochs=5, finetune_epochs=5, warmup_epochs=2, learning_rate_head=0.01
    )
    schedule = clf.scratch_schedule(cfg, steps_per_epoch=10)
    rates = np.array([float(schedule(step)) for step in range(101)])
    assert rates[0] == 0.0 and rates[20] == pytest.approx(0.01) and rates[100] == pytest.approx(0)
    assert np.all(np.diff(rates[:21]) > 0) and np.all(np.diff(rates[20:]) < 0)
    # a run shorter than the warm-up warms up for half of it
    short = clf.scratch_schedule(dataclasses.replace(cfg, head_epochs=1, finetune_epochs=1), 10)
    assert float(short(10)) == pytest.approx(0.01) and float(short(9)) < 0.01


def _species_images(species, per_class: int, size: int, seed: int):
    """Synthetic birds of `species` (stackgan.data.synth_birds) on their scenes, cropped around
    the bird as CubExampleGen crops CUB's boxes, `size` pixels, in [-1, 1]; labels = index."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, sp in enumerate(species):
        for _ in range(per_class):
            canvas = synth_birds.draw_background((96, 80), rng)
            (x, y, w, h), _ = synth_birds.draw_bird(canvas, sp, rng)
            half, cx, cy = 0.625 * max(w, h), x + w / 2, y + h / 2
            crop = canvas.crop(
                (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
            )
            pixels = np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), "float32")
            images.append(pixels / 127.5 - 1.0)
            labels.append(label)
    return np.stack(images), np.array(labels)


@pytest.mark.parametrize("labels", ["true", "shuffled"])
def test_from_scratch_classifier_generalises_to_unseen_birds(tiny_cfg, labels):
    """4 synthetic species (told apart by which part has which colour, on varied scenes): 20
    training and 10 held-out birds each. Trained on the true labels the from-scratch MobileNetV2
    recognises held-out birds (measured 0.95-1.00 over seeds 0-4; chance 0.25); trained on
    shuffled labels, the same images and steps, it cannot (0.20-0.23 over seeds 0-2): what it
    learns is the species, not the images."""
    species = synth_birds.make_species(4, np.random.default_rng(0))
    train_x, train_y = _species_images(species, 20, 32, seed=1)
    held_x, held_y = _species_images(species, 10, 32, seed=2)
    if labels == "shuffled":
        train_y = np.random.default_rng(3).permutation(train_y)
    cfg = dataclasses.replace(
        tiny_cfg,
        batch_size=16,
        head_epochs=12,
        finetune_epochs=12,
        warmup_epochs=2,
        learning_rate_head=1e-2,
    )
    keras.utils.set_random_seed(0)
    train = (
        tf.data.Dataset.from_tensor_slices((train_x, train_y))
        .shuffle(len(train_x), seed=0)
        .map(lambda image, label: (tf.image.random_flip_left_right(image), label))
        .batch(cfg.batch_size)
    )
    held = tf.data.Dataset.from_tensor_slices((held_x, held_y)).batch(64)
    models = clf.build_classifier(cfg, 4, clf.choose_weights(cfg))
    phases = clf.fine_tune(models, train, held, cfg)

    assert [p["phase"] for p in phases] == ["scratch"] and len(phases[0]["history"]["loss"]) == 24
    accuracy = clf.top1_accuracy(models, held)
    if labels == "true":
        assert accuracy >= 0.75
    else:
        assert accuracy <= 0.45


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
    # the Model artifact's folder resolves to its Format-Serving (stackgan.saved_models)
    assert clf.load_classifier(tmp_path).path == str(export_dir)
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
    with pytest.raises(FileNotFoundError, match="no SavedModel there, in its Format-Serving"):
        clf.load_classifier(tmp_path)
    module = tf.Module()
    module.f = tf.function(lambda: tf.constant(1.0), input_signature=[])
    tf.saved_model.save(module, str(tmp_path / "other"))  # a SavedModel, not a classifier
    with pytest.raises(FileNotFoundError, match="classifier.json: missing"):
        clf.load_classifier(tmp_path / "other")


# -- which images the classifier sees (stackgan.evaluation.classifier_data) ----------------------


def _index(ids, labels):
    return classifier_data.ImageIndex(
        np.array(ids, np.int64), np.array(labels, np.int64), {int(c): f"c{c}" for c in labels}
    )


def test_classes_default_to_the_test_split_or_all(tiny_cfg):
    train, test = _index([1, 2, 3], [0, 1, 1]), _index([4, 5, 6], [7, 5, 7])
    for choice, expected in (("test", [5, 7]), ("all", [0, 1, 5, 7])):
        cfg = dataclasses.replace(tiny_cfg, classes=choice)
        assert classifier_data.choose_classes(cfg, train, test) == expected
    one_class = _index([4, 5], [7, 7])
    with pytest.raises(ValueError, match="gives 1 class"):
        classifier_data.choose_classes(
            dataclasses.replace(tiny_cfg, classes="test"), train, one_class
        )


def test_holdout_is_per_class_and_seeded():
    # class 0: 10 images, class 1: 3, class 2: 1 (cannot be split), class 9: not chosen
    ids = list(range(1, 15)) + [99]
    labels = [0] * 10 + [1] * 3 + [2] + [9]
    index = _index(ids, labels)
    held = classifier_data.choose_holdout([index], [0, 1, 2], fraction=0.2, seed=0)
    by_class = {c: sorted(set(held) & set(np.array(ids)[np.array(labels) == c])) for c in (0, 1, 2)}
    assert [len(by_class[c]) for c in (0, 1, 2)] == [2, 1, 0]
    assert 99 not in held
    again = classifier_data.choose_holdout([index], [0, 1, 2], fraction=0.2, seed=0)
    np.testing.assert_array_equal(held, again)
    with pytest.raises(ValueError, match="holdout_fraction"):
        classifier_data.choose_holdout([index], [0], fraction=1.0, seed=0)


def test_datasets_hold_the_chosen_classes_with_indexed_labels(tiny_config, tmp_path):
    data_cfg, cfg = tiny_config.data, tiny_config.classifier
    # image ids are 1000 * label + k: train 0..2, 1000..1002; test 2000..2002, 3000..3002
    write_tiny_examples(
        str(tmp_path), tiny_config, train_classes=(0, 1), test_classes=(2, 3), per_class=3
    )
    patterns = [str(tmp_path / f"Split-{s}" / "*") for s in ("train", "test")]
    indexes = [classifier_data.scan_split(p) for p in patterns]
    np.testing.assert_array_equal(indexes[1].image_ids, [2000, 2001, 2002, 3000, 3001, 3002])
    assert indexes[0].class_names == {0: "001.Bird", 1: "002.Bird"}

    # classes 0, 1, 2 (class 3 is dropped); ids 1 and 2001 held out
    classes, holdout = [0, 1, 2], np.array([1, 2001])
    train, held = classifier_data.make_datasets(
        patterns, indexes, data_cfg, cfg, classes, holdout, 0
    )
    train_labels = np.concatenate([labels.numpy() for _, labels in train])
    assert sorted(train_labels) == [0, 0, 1, 1, 1, 2, 2]
    images, labels = next(iter(held))
    assert labels.numpy().tolist() == [0, 2]  # class 2 is index 2 of `classes`
    assert images.shape == (2, cfg.image_size, cfg.image_size, 3)
    stored = read_images(patterns[0], data_cfg)[1][1]
    crop = stored[6:70, 6:70]  # the centre 64 of 76
    expected = tf.image.resize(crop[None], [32, 32], antialias=True) / 127.5 - 1.0
    np.testing.assert_allclose(images[0].numpy(), expected[0].numpy(), atol=1e-5)
    for batch, _ in train:
        assert batch.shape[1:] == (32, 32, 3)
        assert batch.numpy().min() >= -1.0 and batch.numpy().max() <= 1.0


def _two_splits(tmp_path, tiny_config, per_class):
    """Tiny Examples of classes 0, 1 (train split) and 2 (test split): (patterns, indexes,
    classes [0, 1, 2], hold-out ids [1, 2001])."""
    write_tiny_examples(
        str(tmp_path), tiny_config, train_classes=(0, 1), test_classes=(2,), per_class=per_class
    )
    patterns = [str(tmp_path / f"Split-{s}" / "*") for s in ("train", "test")]
    indexes = [classifier_data.scan_split(p) for p in patterns]
    return patterns, indexes, [0, 1, 2], np.array([1, 2001])


def test_cached_training_images_are_random_crops_of_the_shrunk_stored_image(tiny_config, tmp_path):
    data_cfg = tiny_config.data
    cfg = dataclasses.replace(tiny_config.classifier, cache_images=True)
    patterns, indexes, classes, holdout = _two_splits(tmp_path, tiny_config, per_class=3)
    train, held = classifier_data.make_datasets(
        patterns, indexes, data_cfg, cfg, classes, holdout, 0
    )
    # the 64 of 76 stored pixels that the GAN trains on become 32, so the whole image 38
    stored = {**read_images(patterns[0], data_cfg), **read_images(patterns[1], data_cfg)}
    windows = {0: [], 1: [], 2: []}
    for image_id, (label, image) in stored.items():
        if image_id not in holdout:
            shrunk = tf.image.resize(image, [38, 38], antialias=True).numpy()
            shrunk = np.round(shrunk) / 127.5 - 1.0
            crops = [shrunk[y : y + 32, x : x + 32] for y in range(7) for x in range(7)]
            windows[label] += crops + [crop[:, ::-1] for crop in crops]
    for epoch in range(2):  # the second epoch reads the cache
        labels = []
        for images, batch_labels in train:
            for image, label in zip(images.numpy(), batch_labels.numpy(), strict=True):
                distance = min(np.abs(window - image).max() for window in windows[label])
                assert distance < 1e-5, (epoch, label)
                labels.append(int(label))
        assert sorted(labels) == [0, 0, 1, 1, 1, 2, 2]
    # held-out images stay exactly the uncached path's centre crops
    uncached_cfg = dataclasses.replace(cfg, cache_images=False)
    _, uncached = classifier_data.make_datasets(
        patterns, indexes, data_cfg, uncached_cfg, classes, holdout, 0
    )
    for (images, labels), (expected, expected_labels) in zip(held, uncached, strict=True):
        np.testing.assert_array_equal(labels.numpy(), expected_labels.numpy())
        np.testing.assert_allclose(images.numpy(), expected.numpy(), atol=1e-6)


@pytest.mark.parametrize("cache_images", [False, True])
def test_training_augmentation_repeats_exactly_for_a_seed_and_changes_each_epoch(
    tiny_config, tmp_path, cache_images
):
    """The classifier's crops and flips come from its seed alone (stateless, not drawn by
    whichever map thread runs first), so the same seed gives the same training batches in a
    new pipeline, epoch for epoch; each epoch crops anew, and another seed crops otherwise."""
    cfg = dataclasses.replace(tiny_config.classifier, cache_images=cache_images)
    patterns, indexes, classes, holdout = _two_splits(tmp_path, tiny_config, per_class=4)

    def epochs(seed):
        train, _ = classifier_data.make_datasets(
            patterns, indexes, tiny_config.data, cfg, classes, holdout, seed
        )
        return [np.concatenate([images.numpy() for images, _ in train]) for _ in range(2)]

    first, again, other = epochs(0), epochs(0), epochs(1)
    for epoch in range(2):
        np.testing.assert_array_equal(first[epoch], again[epoch], err_msg=f"epoch {epoch}")
    assert np.abs(first[0] - first[1]).max() > 0.1  # reshuffled and cropped anew
    assert np.abs(first[0] - other[0]).max() > 0.1

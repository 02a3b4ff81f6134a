"""Training the char-CNN-RNN with DS-SJE on captions that carry class information, zero-shot
retrieval on held-out classes, and the exported SavedModel on raw strings."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from stackgan.text.char_cnn_rnn import build_char_cnn_rnn, sequence_length_after_cnn
from stackgan.text.export import TextEncoder, export_text_encoder
from stackgan.text.pairs import CaptionedFeatures, pair_dataset
from stackgan.text.retrieval import zero_shot_top1
from stackgan.text.training import (
    degenerate_features_warning,
    evaluate_zero_shot,
    train_joint_embedding,
)

COLOURS = ("red", "blue", "green", "yellow", "black", "white")
BEAKS = ("long", "short", "hooked", "flat")
FEATURE_DIM = 24


def _attribute_birds(seed: int = 0) -> tuple[CaptionedFeatures, CaptionedFeatures]:
    """Classes are (colour, beak) combinations; image features add one vector per attribute
    plus noise, captions name the attributes in varied wording. 18 classes train, 6 unseen
    classes test: zero-shot retrieval works only if the encoder learnt the words."""
    rng = np.random.default_rng(seed)
    colour_vec = rng.normal(size=(len(COLOURS), FEATURE_DIM))
    beak_vec = rng.normal(size=(len(BEAKS), FEATURE_DIM))
    classes = [(c, b) for c in range(len(COLOURS)) for b in range(len(BEAKS))]
    order = rng.permutation(len(classes))

    def split(class_ids):
        features, captions, labels = [], [], []
        for k in class_ids:
            c, b = classes[k]
            colour, beak = COLOURS[c], BEAKS[b]
            for _ in range(6):
                features.append(colour_vec[c] + beak_vec[b] + 0.5 * rng.normal(size=FEATURE_DIM))
                captions.append(
                    [
                        f"a {colour} bird with a {beak} beak",
                        f"this bird has a {beak} bill and {colour} wings.",
                        f"{colour.upper()} feathers; {beak} beak",
                    ]
                )
                labels.append(k)
        return CaptionedFeatures(np.asarray(features, np.float32), captions, np.asarray(labels))

    return split(order[6:]), split(order[:6])


@pytest.fixture(scope="module")
def trained(tiny_config):
    train, test = _attribute_birds()
    cfg = tiny_config.replace(text={"epochs": 10}).text
    model, history = train_joint_embedding(train, cfg, validation=test, seed=0)
    return model, history, train, test


def test_training_reduces_the_ds_sje_loss(trained):
    _, history, _, _ = trained
    assert history["loss"][-1] < 0.3 * history["loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]


def test_zero_shot_retrieval_on_unseen_classes_beats_chance_clearly(trained):
    model, _, _, test = trained
    result = evaluate_zero_shot(model, test)
    assert result.num_classes == 6 and result.num_images == 36
    assert result.top1 >= 3 * result.chance  # chance 1/6; measured 0.9+


def test_exported_encoder_maps_raw_strings_to_the_trained_embeddings(trained, tmp_path):
    model, _, _, test = trained
    export_text_encoder(model, tmp_path / "encoder")
    del model  # nothing below may lean on the in-memory model's state

    loaded = tf.saved_model.load(str(tmp_path / "encoder"))
    signature = loaded.signatures["serving_default"]
    out = signature(caption=tf.constant(["A red bird with a short beak", "", "ça ☃"]))
    assert set(out) == {"embedding"}
    assert out["embedding"].shape == (3, 1024) and out["embedding"].dtype == tf.float32
    assert np.isfinite(out["embedding"].numpy()).all()

    encoder = TextEncoder(tmp_path / "encoder")
    assert (encoder.embedding_dim, encoder.feature_dim) == (1024, FEATURE_DIM)
    captions, _, caption_labels = test.flat_captions()
    # retrieval through the SavedModel alone
    result = zero_shot_top1(
        encoder.embed_image_features(test.features),
        test.labels,
        encoder.embed(captions),
        caption_labels,
    )
    assert result.top1 >= 3 * result.chance
    # the same caption in different case and spacing is the same input
    a, b = encoder.embed(["A RED  bird", "a red bird"])
    np.testing.assert_allclose(a, b)


def test_text_encoder_loader_names_a_folder_without_a_saved_model(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        TextEncoder(tmp_path)


def test_pair_dataset_yields_every_caption_once_with_its_image(tiny_config):
    data = CaptionedFeatures(
        np.arange(6, dtype=np.float32).reshape(3, 2),
        [["a"], ["b", "c"], ["d", "e", "f"]],
        np.array([0, 1, 1]),
    )
    batches = list(pair_dataset(data, max_chars=8, batch_size=4, seed=1))
    assert len(batches) == 1  # 6 pairs, the partial batch dropped
    seen = {
        (chr(int(ids[0]) - 2 + ord("a")), tuple(f.tolist()), int(y))
        for b in batches
        for ids, f, y in zip(b["char_ids"].numpy(), b["features"].numpy(), b["label"].numpy())
    }
    expected = {
        ("a", (0.0, 1.0), 0),
        ("b", (2.0, 3.0), 1),
        ("c", (2.0, 3.0), 1),
        ("d", (4.0, 5.0), 1),
        ("e", (4.0, 5.0), 1),
        ("f", (4.0, 5.0), 1),
    }
    assert len(seen) == 4 and seen <= expected


def test_char_cnn_rnn_shapes_follow_reed_et_al(tiny_config):
    # 201 characters -> 198 -> 66 -> 63 -> 21 -> 18 RNN steps, as in their HybridCNN
    assert sequence_length_after_cnn(201, 3) == 18
    model = build_char_cnn_rnn(tiny_config.text)
    assert model.input_shape == (None, 64) and model.output_shape == (None, 1024)
    with pytest.raises(ValueError, match="max_chars=20 is too short"):
        build_char_cnn_rnn(tiny_config.replace(text={"max_chars": 20}).text)


def test_constant_image_features_are_flagged():
    rng = np.random.default_rng(0)
    assert degenerate_features_warning(rng.normal(size=(10, 4))) == ""
    constant = np.full((10, 4), 0.5) + 1e-9 * rng.normal(size=(10, 4))
    assert "nearly) the same for every image" in degenerate_features_warning(constant)


def test_exported_image_signature_standardises_features_as_in_training(trained, tmp_path):
    model, _, train, _ = trained
    export_text_encoder(model, tmp_path / "encoder")
    encoder = TextEncoder(tmp_path / "encoder")
    shifted = train.features[:4] * 3.0 + 100.0  # far from the training statistics
    np.testing.assert_allclose(
        encoder.embed_image_features(shifted), model.embed_images(shifted), rtol=1e-4, atol=1e-3
    )
    mean = np.asarray(model.feature_normalization.mean).reshape(-1)
    np.testing.assert_allclose(mean, train.features.mean(axis=0), rtol=1e-4, atol=1e-4)

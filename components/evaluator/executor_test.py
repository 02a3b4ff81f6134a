"""Evaluator's executor on a tiny Examples artifact, an exported (untrained) tiny Stage-I
generator and an exported hand-made classifier whose predictions are known."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image
from tfx.components.util import model_utils
from tfx.types import standard_artifacts

from stackgan import config
from stackgan.components.evaluator.executor import METRICS_FILE, SHEET_FILE, TABLE_FILE, Executor
from stackgan.evaluation import classifier
from stackgan.models import build_stage1_generator
from stackgan.serving.export import export_generator
from stackgan.training.tiny_examples import write_tiny_examples


def _artifact(artifact_type, uri, make_dir=True):
    artifact = artifact_type()
    artifact.uri = uri
    if make_dir:
        os.makedirs(uri)
    return artifact


def red_channel_classifier() -> classifier.ClassifierModels:
    """features: mean RGB; logits: a confident vote for class 3 (yellow, red 220) over class 2
    (blue, red 50) by the sign of the mean red value in [-1, 1]. Gray images get ~[0.5, 0.5]."""
    image = keras.Input((None, None, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D(name="mean_rgb")(image)
    dense = keras.layers.Dense(2, name="logits")
    logits = dense(features)
    dense.set_weights([np.array([[-30.0, 30.0], [0, 0], [0, 0]]), np.zeros(2)])
    model = keras.Model(image, {"logits": logits, "features": features})
    return classifier.ClassifierModels(model, model, model, pretrained=False)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(config, examples, generator model, classifier model) shared by the tests below."""
    root = tmp_path_factory.mktemp("evaluator_inputs")
    cfg = config.tiny()
    # 6 test images, 3 blue (class 2) and 3 yellow (class 3), 10 captions each: 60 pairs, of
    # which num_samples=16 are generated
    examples = write_tiny_examples(
        str(root / "examples"), cfg, train_classes=(0, 1), test_classes=(2, 3), per_class=3
    )
    generator = _artifact(standard_artifacts.Model, str(root / "generator"))
    generator.id = 7
    export_generator(
        os.path.join(generator.uri, "Format-Serving"),
        cfg.model,
        build_stage1_generator(cfg.model, cfg.data.low_res),
    )
    classifier_model = _artifact(standard_artifacts.Model, str(root / "classifier"))
    models = red_channel_classifier()
    info = {"class_ids": [2, 3], "holdout_top1_accuracy": 0.5, "warning": "trained from scratch"}
    classifier.export_classifier(models, os.path.join(classifier_model.uri, "Format-Serving"), info)
    return cfg, examples, generator, classifier_model


def _run(inputs, out_dir, min_inception_score):
    cfg, examples, generator, classifier_model = inputs
    # one split, so the real images' score is exp(entropy of their class frequencies)
    cfg = cfg.replace(eval={"min_inception_score": min_inception_score, "is_splits": 1})
    evaluation = _artifact(standard_artifacts.ModelEvaluation, str(out_dir / "evaluation"))
    blessing = _artifact(standard_artifacts.ModelBlessing, str(out_dir / "blessing"))
    Executor().Do(
        {"examples": [examples], "model": [generator], "classifier": [classifier_model]},
        {"evaluation": [evaluation], "blessing": [blessing]},
        {"config_json": cfg.to_json()},
    )
    return evaluation, blessing


@pytest.fixture(scope="module")
def blessed_run(inputs, tmp_path_factory):
    """One run whose threshold the generator reaches: (output dir, evaluation, blessing)."""
    out_dir = tmp_path_factory.mktemp("blessed_run")
    return (out_dir, *_run(inputs, out_dir, min_inception_score=1.0))


def test_scores_the_generator_and_blesses_it(inputs, blessed_run):
    tmp_path, evaluation, blessing = blessed_run

    metrics = json.loads((tmp_path / "evaluation" / METRICS_FILE).read_text())
    assert metrics["num_samples"] == 16  # tiny: EvalConfig.num_samples
    assert metrics["num_real_images"] == 6
    assert metrics["is_splits"] == 1 and len(metrics["batch_seeds"]) == 2  # 16 / batch 8
    assert metrics["generated_image_size"] == 16  # the tiny Stage-I output
    assert metrics["classifier"]["holdout_top1_accuracy"] == 0.5
    assert metrics["classifier"]["warning"] == "trained from scratch"
    generated, real = metrics["table"]
    assert (generated["images"], real["images"]) == ("generated", "real (ceiling)")
    # real: 3 blue and 3 yellow birds, each recognised with confidence: exp(entropy) = 2
    assert real["inception_score_mean"] == pytest.approx(2.0, abs=1e-3)
    # generated: the untrained generator's near-gray images get near-uniform predictions
    assert generated["inception_score_mean"] < 1.05
    assert generated["fid"] > 0.1 and real["fid"] > 0.0
    assert metrics["blessed"] is True
    assert evaluation.get_float_custom_property("inception_score") == pytest.approx(
        generated["inception_score_mean"]
    )

    # what TFX's Pusher checks before pushing
    assert model_utils.is_model_blessed(blessing)
    assert os.listdir(blessing.uri) == ["BLESSED"]
    assert blessing.get_string_custom_property("current_model") == inputs[2].uri
    assert blessing.get_int_custom_property("current_model_id") == 7

    table = (tmp_path / "evaluation" / TABLE_FILE).read_text()
    assert "| real (ceiling) | 6 |" in table
    with Image.open(tmp_path / "evaluation" / SHEET_FILE) as sheet:
        # 16 samples, 8 per row, 16-px images enlarged to 128: two rows of 8 cells
        assert sheet.width > 8 * 128 and sheet.height > 2 * 128


def test_below_the_threshold_is_not_blessed_and_scores_repeat(inputs, blessed_run, tmp_path):
    # the real images reach 2.0, the generated ones about 1.0
    _, blessing = _run(inputs, tmp_path, min_inception_score=1.5)
    assert not model_utils.is_model_blessed(blessing)
    assert blessing.get_int_custom_property("blessed") == 0
    assert os.listdir(blessing.uri) == ["NOT_BLESSED"]
    first = json.loads((blessed_run[0] / "evaluation" / METRICS_FILE).read_text())
    second = json.loads((tmp_path / "evaluation" / METRICS_FILE).read_text())
    # same seeds, same generator and classifier: the same numbers
    assert first["table"] == second["table"] and first["batch_seeds"] == second["batch_seeds"]
    assert second["blessed"] is False

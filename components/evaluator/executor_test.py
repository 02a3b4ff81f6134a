"""Evaluator's executor on a tiny Examples artifact, an exported hand-made classifier whose
predictions are known, and exported generators: hand-made ones whose class accuracy is known
(the caption's class, or always the other class) and an untrained two-stage one."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tfx.components.util import model_utils
from tfx.types import standard_artifacts
from tiny_examples import COLOURS, write_tiny_examples

from stackgan import config
from stackgan.components.evaluator.component import READS
from stackgan.components.evaluator.executor import Executor
from stackgan.evaluation import classifier, evaluator_job
from stackgan.evaluation.evaluator_job import (
    COMPARISON_FILE,
    INTERPOLATION_FILE,
    METRICS_FILE,
    SHEET_FILE,
    TABLE_FILE,
)
from stackgan.models import build_stage1_generator, build_stage2_generator
from stackgan.serving.export import export_generator
from stackgan.serving.generator import load_generator

BLUE, YELLOW = 2, 3  # the test classes; the classifier tells them apart by their red value


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


def colour_generator(cfg: config.Config, faithful: bool) -> keras.Model:
    """A Stage-I generator (same inputs and outputs) that paints the whole image red (yellow's
    side) for yellow captions and red-free (blue's side) for blue ones, or, not `faithful`, the
    other way round. The tiny Examples' embeddings are a class direction plus 0.1 noise, so the
    side of the midpoint between the two directions tells the caption's class."""
    size, dim = cfg.data.low_res, cfg.model.embedding_dim
    directions = np.random.default_rng(1234).normal(size=(len(COLOURS), dim))
    towards_yellow = directions[YELLOW] - directions[BLUE]
    offset = -(directions[YELLOW] @ directions[YELLOW] - directions[BLUE] @ directions[BLUE]) / 2
    sign = 1.0 if faithful else -1.0
    red_only = np.zeros([size, size, 3])
    red_only[..., 0] = sign
    embedding = keras.Input((dim,), name="embedding")
    noise = keras.Input((cfg.model.z_dim,), name="noise")
    ca_noise = keras.Input((cfg.model.ca_dim,), name="ca_noise")
    paint = keras.layers.Dense(size * size * 3, activation="tanh", name="paint")
    flat = paint(embedding)
    paint.set_weights([np.outer(towards_yellow, red_only.ravel()), offset * red_only.ravel()])
    image = keras.layers.Reshape((size, size, 3))(flat)
    mu = keras.layers.Dense(cfg.model.ca_dim, name="mu")(ca_noise)
    return keras.Model([embedding, noise, ca_noise], [image, mu, mu])


def _export(root, name: str, model_id: int, cfg, stage1, stage2=None):
    model = _artifact(standard_artifacts.Model, str(root / name))
    model.id = model_id
    export_generator(os.path.join(model.uri, "Format-Serving"), cfg.model, stage1, stage2)
    return model


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """config, examples, classifier and generators shared by the tests below."""
    root = tmp_path_factory.mktemp("evaluator_inputs")
    cfg = config.tiny()
    # 6 test images, 3 blue (class 2) and 3 yellow (class 3), 10 captions each: 60 pairs, of
    # which num_samples=16, evenly spaced, are generated: 8 of each class
    examples = write_tiny_examples(
        str(root / "examples"), cfg, train_classes=(0, 1), test_classes=(BLUE, YELLOW), per_class=3
    )
    classifier_model = _artifact(standard_artifacts.Model, str(root / "classifier"))
    info = {"class_ids": [BLUE, YELLOW], "holdout_top1_accuracy": 0.5, "warning": "from scratch"}
    classifier.export_classifier(
        red_channel_classifier(), os.path.join(classifier_model.uri, "Format-Serving"), info
    )
    generators = {
        "faithful": _export(root, "faithful", 7, cfg, colour_generator(cfg, faithful=True)),
        # sampled at another noise scale, which its colour (the caption's alone) ignores: the
        # report says which scale each model was scored at
        "swapped": _export(
            root,
            "swapped",
            8,
            cfg.replace(model={"truncation": 0.7}),
            colour_generator(cfg, faithful=False),
        ),
        "untrained": _export(
            root,
            "untrained",
            9,
            cfg,
            build_stage1_generator(cfg.model, cfg.data.low_res),
            build_stage2_generator(cfg.model, cfg.data.low_res),
        ),
    }
    return {"config": cfg, "examples": examples, "classifier": classifier_model, **generators}


def _run(inputs, out_dir, model: str, baseline: str | None = None, **eval_fields):
    """Runs the executor on `inputs[model]` (against `inputs[baseline]`); returns (metrics,
    evaluation, blessing)."""
    # one split, so the real images' score is exp(entropy of their class frequencies)
    cfg = inputs["config"].replace(eval={"is_splits": 1, **eval_fields})
    evaluation = _artifact(standard_artifacts.ModelEvaluation, str(out_dir / "evaluation"))
    blessing = _artifact(standard_artifacts.ModelBlessing, str(out_dir / "blessing"))
    input_dict = {
        "examples": [inputs["examples"]],
        "model": [inputs[model]],
        "classifier": [inputs["classifier"]],
    }
    if baseline is not None:
        input_dict["baseline_model"] = [inputs[baseline]]
    Executor().Do(
        input_dict,
        {"evaluation": [evaluation], "blessing": [blessing]},
        READS.exec_properties(cfg),
    )
    metrics = json.loads((out_dir / "evaluation" / METRICS_FILE).read_text())
    return metrics, evaluation, blessing


@pytest.fixture(scope="module")
def faithful_run(inputs, tmp_path_factory):
    """The faithful generator, no baseline, the default gate: (dir, metrics, evaluation,
    blessing)."""
    out_dir = tmp_path_factory.mktemp("faithful_run")
    return (out_dir, *_run(inputs, out_dir, "faithful", min_class_accuracy_ratio=0.5))


def _top1(row):
    return row["top1_correct"], row["count"], row["top1_accuracy"]


def test_scores_the_generator_and_blesses_it(inputs, faithful_run):
    tmp_path, metrics, evaluation, blessing = faithful_run
    assert metrics["num_samples"] == 16  # tiny: EvalConfig.num_samples
    assert metrics["num_real_images"] == 6
    assert metrics["is_splits"] == 1 and len(metrics["batch_seeds"]) == 2  # 16 / batch 8
    assert metrics["generated_image_size"] == 16  # the Stage-I output
    assert metrics["classifier"]["holdout_top1_accuracy"] == 0.5
    assert metrics["classifier"]["warning"] == "from scratch"
    generated, real = metrics["table"]
    assert (generated["images"], real["images"]) == ("generated", "real (ceiling)")
    # every generated bird has its caption's colour, every real bird is recognised
    assert _top1(generated) == (16, 16, 1.0) and _top1(real) == (6, 6, 1.0)
    assert metrics["chance"] == 0.5  # 8 blue and 8 yellow captions
    # real: 3 blue and 3 yellow birds, each recognised with confidence: exp(entropy) = 2
    assert real["inception_score_mean"] == pytest.approx(2.0, abs=1e-3)
    assert generated["inception_score_mean"] == pytest.approx(2.0, abs=1e-3)
    assert generated["fid"] > 0.1 and real["fid"] > 0.0
    assert metrics["refinement"] is None and metrics["baseline"] is None
    assert metrics["sampling"] == {"truncation": 1.0}
    assert metrics["gate"] == {
        "min_class_accuracy_ratio": 0.5,
        "required_top1": 0.75,  # chance 0.5 + 0.5 x (real 1.0 - chance)
        "baseline_tolerance": 0.02,
        "baseline_required_top1": None,
        "min_colour_gain_ratio": 0.0,
        "required_colour_gain": None,
        "baseline_required_colour_gain": None,
        "reasons": [],
    }
    assert metrics["blessed"] is True
    assert evaluation.get_float_custom_property("generated_top1_accuracy") == 1.0
    assert evaluation.get_float_custom_property("inception_score") == pytest.approx(
        generated["inception_score_mean"]
    )

    # what TFX's Pusher checks before pushing
    assert model_utils.is_model_blessed(blessing)
    assert os.listdir(blessing.uri) == ["BLESSED"]
    assert blessing.get_string_custom_property("current_model") == inputs["faithful"].uri
    assert blessing.get_int_custom_property("current_model_id") == 7
    assert blessing.get_string_custom_property("blessing_message") == "blessed"

    table = (tmp_path / "evaluation" / TABLE_FILE).read_text()
    assert "| generated | 16 | 1.000 (16) |" in table and "| real (ceiling) | 6 |" in table
    assert "Baseline: none" in table and "Blessed: yes." in table
    assert "Generated images sampled at truncation 1 (the paper): the noise z" in table
    with Image.open(tmp_path / "evaluation" / SHEET_FILE) as image:
        sheet = np.asarray(image.convert("RGB"))
    # 16 samples, 8 per row, 16-px images enlarged to 128, 8 px apart: two rows of 8 cells,
    # each the generator's flat colour: full red (a yellow caption) or none (a blue one), green
    # and blue at tanh(0) = 128
    assert sheet.shape[1] == 8 + 8 * (128 + 8)
    filled = (sheet[:, 8 : 8 + 128] != 255).any(axis=-1).all(axis=-1)  # the first cell's rows
    tops = [y for y in range(1, len(filled)) if filled[y] and not filled[y - 1]]
    assert tops[0] == 8 and len(tops) == 2 and all(filled[y : y + 128].all() for y in tops)
    cells = np.stack(
        [sheet[y : y + 128, 8 + c * 136 : 8 + c * 136 + 128] for y in tops for c in range(8)]
    )
    assert (cells == cells[:, :1, :1]).all()  # every cell one flat colour
    assert (
        sorted(map(tuple, cells[:, 0, 0].tolist())) == [(0, 128, 128)] * 8 + [(255, 128, 128)] * 8
    )

    # the interpolation sheet: from the first caption (a blue bird's) to the first of another
    # class (a yellow bird's), 6 steps, 3 rows; this generator paints red by the side of the
    # midpoint between the classes that the embedding lies on (saturated): the line crosses it
    # halfway, between t = 0.4 and 0.6
    entry = metrics["interpolation"]
    assert (entry["file"], entry["steps"], entry["rows"]) == (INTERPOLATION_FILE, 6, 3)
    assert "blue" in entry["from"] and "yellow" in entry["to"]
    with Image.open(tmp_path / "evaluation" / INTERPOLATION_FILE) as image:
        line = np.asarray(image.convert("RGB"))
    assert line.shape[1] == 8 + 6 * (128 + 8)
    row = np.stack([line[8 : 8 + 128, 8 + c * 136 : 8 + c * 136 + 128] for c in range(6)])
    assert (row == row[:, :1, :1]).all()  # flat cells
    assert row[:, 0, 0, 0].tolist() == [0, 0, 0, 255, 255, 255]


def test_a_generator_that_draws_the_wrong_class_is_refused_against_the_baseline(
    inputs, faithful_run, tmp_path
):
    metrics, _, blessing = _run(inputs, tmp_path, "swapped", baseline="faithful")
    assert _top1(metrics["table"][0]) == (0, 16, 0.0)
    baseline = metrics["baseline"]
    assert baseline["model"] == inputs["faithful"].uri and baseline["model_id"] == 7
    assert baseline["same_as_candidate"] is False
    assert (metrics["sampling"]["truncation"], baseline["truncation"]) == (0.7, 1.0)
    # re-scored on the same captions with the same seeds: the faithful run's numbers
    assert baseline["table"] == faithful_run[1]["table"]
    assert baseline["batch_seeds"] == metrics["batch_seeds"] == faithful_run[1]["batch_seeds"]
    assert metrics["gate"]["baseline_required_top1"] == pytest.approx(0.98)
    # the tiny profile's ratio is 0: only the baseline refuses it
    assert metrics["gate"]["reasons"] == [
        "generated top-1 0.000 < the last blessed model's 1.000 - 0.02 = 0.980"
    ]
    assert metrics["blessed"] is False
    assert not model_utils.is_model_blessed(blessing)
    assert blessing.get_int_custom_property("blessed") == 0
    assert os.listdir(blessing.uri) == ["NOT_BLESSED"]
    assert blessing.get_string_custom_property("blessing_message").startswith(
        "generated top-1 0.000 < the last blessed"
    )
    assert blessing.get_int_custom_property("baseline_model_id") == 7


def test_default_gate_refuses_a_generator_below_the_real_images_and_chance(inputs, tmp_path):
    metrics, _, blessing = _run(inputs, tmp_path, "swapped", min_class_accuracy_ratio=0.5)
    assert metrics["gate"]["reasons"] == [
        "generated top-1 0.000 (0/16) < chance 0.500 + 0.5 x (real top-1 1.000 - chance) = 0.750",
        "generated top-1 0.000 is not above chance 0.500 (the largest class share among the"
        " captions)",
    ]
    assert not model_utils.is_model_blessed(blessing)
    assert (
        "Blessed: no: generated top-1 0.000 (0/16)"
        in (tmp_path / "evaluation" / TABLE_FILE).read_text()
    )


def test_a_better_model_than_the_baseline_is_blessed(inputs, tmp_path):
    metrics, _, blessing = _run(inputs, tmp_path, "faithful", baseline="swapped")
    assert _top1(metrics["baseline"]["table"][0]) == (0, 16, 0.0)
    assert metrics["gate"]["baseline_required_top1"] == pytest.approx(-0.02)
    assert metrics["blessed"] is True and model_utils.is_model_blessed(blessing)
    assert blessing.get_string_custom_property("baseline_model") == inputs["swapped"].uri
    assert (
        f"{inputs['swapped'].uri}, generated top-1 0.000, sampled at truncation 0.7 (the paper: 1)."
        in (tmp_path / "evaluation" / TABLE_FILE).read_text()
    )


def test_a_baseline_that_is_the_candidate_is_not_rescored(inputs, faithful_run, tmp_path):
    # a re-run with the trainers cached: the Resolver returns the model being evaluated
    metrics, _, blessing = _run(inputs, tmp_path, "faithful", baseline="faithful")
    assert metrics["baseline"]["same_as_candidate"] is True
    assert metrics["baseline"]["table"] == metrics["table"] == faithful_run[1]["table"]
    assert model_utils.is_model_blessed(blessing)


def _recording_loader(produced: list):
    """load_generator, whose generate() also appends each (Stage-I, Stage-II) batch it
    returns to `produced`."""

    def load(path):
        generator = load_generator(path)

        class Recording:
            def __getattr__(self, name):  # the rest as the generator has it
                return getattr(generator, name)

            def generate(self, embeddings, seed):
                out = generator.generate(embeddings, seed)
                produced.append((np.asarray(out["image_64"]), np.asarray(out["image_256"])))
                return out

        return Recording()

    return load


def test_a_two_stage_generator_gets_refinement_scores(inputs, tmp_path, monkeypatch):
    produced = []
    monkeypatch.setattr(evaluator_job, "load_generator", _recording_loader(produced))
    metrics, evaluation, _ = _run(inputs, tmp_path, "untrained")
    refinement = metrics["refinement"]
    assert (refinement["count"], refinement["stage1_size"], refinement["stage2_size"]) == (
        16,
        16,
        64,
    )
    assert metrics["generated_image_size"] == 64  # Stage-II's images are the ones scored
    # the scores of exactly the pairs the generator returned, recomputed here: Stage-II
    # box-downscaled 4x against Stage-I (0-255 levels); Stage-II's neighbour-pixel luma
    # difference over bicubic-upsampled Stage-I's, batch by batch, weighted by batch size
    low = np.concatenate([p[0] for p in produced]).astype(np.float64)
    high = np.concatenate([p[1] for p in produced]).astype(np.float64)
    assert low.shape == (16, 16, 16, 3) and high.shape == (16, 64, 64, 3)
    boxed = high.reshape(16, 16, 4, 16, 4, 3).mean(axis=(2, 4))
    assert refinement["consistency_mad"] == pytest.approx(np.abs(boxed - low).mean(), rel=1e-5)
    assert refinement["consistency_mad"] > 0.0  # (an untrained pair: ~0.5, both nearly gray)

    def detail(images):
        luma = np.asarray(images, np.float64) @ [0.299, 0.587, 0.114]
        return (np.abs(np.diff(luma, axis=2)).mean() + np.abs(np.diff(luma, axis=1)).mean()) / 2

    def energy(images):
        luma = np.asarray(images, np.float64) @ [0.299, 0.587, 0.114]
        return (
            np.square(np.diff(luma, axis=2)).mean() + np.square(np.diff(luma, axis=1)).mean()
        ) / 2

    sizes = [len(lo) for lo, _ in produced]
    for key, measure in (("detail_gain", detail), ("edge_sharpness_gain", energy)):
        gains = [
            measure(h) / measure(tf.image.resize(lo, (64, 64), "bicubic").numpy().clip(0, 255))
            for lo, h in produced
        ]
        assert refinement[key] == pytest.approx(np.average(gains, weights=sizes), rel=1e-4)
        assert evaluation.get_float_custom_property(key) == pytest.approx(refinement[key])
    assert evaluation.get_float_custom_property("consistency_mad") == pytest.approx(
        refinement["consistency_mad"]
    )
    assert (
        "Stage-I -> Stage-II (16 -> 64 px, 16 pairs)"
        in (tmp_path / "evaluation" / TABLE_FILE).read_text()
    )
    with Image.open(tmp_path / "evaluation" / COMPARISON_FILE) as image:
        comparison = np.asarray(image.convert("RGB"))
    # real | Stage-I | Stage-II, each 128 px wide (Stage-I nearest-enlarged 8x, Stage-II 2x),
    # 8 px apart, one row per test class: its first row shows one generated (Stage-I, Stage-II)
    # pair, pixel for pixel
    assert comparison.shape[1] == 8 + 3 * (128 + 8) and comparison.shape[0] > 2 * 128
    tiles = [comparison[8 : 8 + 128, 8 + c * 136 : 8 + c * 136 + 128] for c in range(3)]
    lows, highs = np.concatenate([p[0] for p in produced]), np.concatenate([p[1] for p in produced])
    shown = [i for i in range(16) if np.array_equal(tiles[1][::8, ::8], lows[i])]
    assert shown and any(np.array_equal(tiles[2][::2, ::2], highs[i]) for i in shown)
    assert not np.array_equal(tiles[0][::2, ::2], highs[shown[0]])  # the real image


def test_captions_split_chooses_whose_captions_are_scored(inputs, tmp_path):
    """The default scores the test split (the classifier covers its classes 2 and 3); the
    train split's captions are of classes 0 and 1, which this classifier cannot name (the error
    names the first one it meets)."""
    metrics, _, _ = _run(inputs, tmp_path / "test", "faithful")
    assert metrics["captions_split"] == "test" and metrics["table"][1]["count"] == 6
    with pytest.raises(ValueError, match=r"does not cover test class\(es\) \[0"):
        _run(inputs, tmp_path / "train", "faithful", captions_split="train")

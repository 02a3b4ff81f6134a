"""Stage2Trainer: Executor().Do on temp artifacts with the tiny profile: the pushed SavedModel
holds Stage-I (unchanged) + Stage-II and the composed text signature."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image
from tfx.types import channel_utils, standard_artifacts
from tiny_examples import write_tiny_examples

from stackgan import config as config_lib
from stackgan.components.stage2_trainer.component import READS, Stage2Trainer
from stackgan.components.stage2_trainer.executor import Executor
from stackgan.models import build_stage1_generator
from stackgan.serving.generator import load_generator
from stackgan.text.export import export_text_encoder
from stackgan.text.training import build_joint_embedding
from stackgan.tfrecords import input_pipeline
from stackgan.tfrecords.pixels import to_uint8
from stackgan.training import samples, trainer_job


@pytest.fixture(scope="module")
def config():
    return config_lib.tiny().replace(train={"max_steps": 2, "checkpoint_every_steps": 2})


def _assert_sheet_shows(sheet_path, images):
    """The run's sample sheet shows `images` (uint8 [4,S,S,3]: the fixed samples of the 4 test
    images) in one row, each enlarged to 128 px, pixel for pixel."""
    sheet = np.asarray(Image.open(sheet_path).convert("RGB"))
    scale = 128 // images.shape[1]
    assert images.shape[0] == 4 and sheet.shape[1] == 8 + 4 * (128 + 8)
    for i, image in enumerate(images):
        tile = sheet[8 : 8 + 128, 8 + i * 136 : 8 + i * 136 + 128]
        np.testing.assert_array_equal(tile, image.repeat(scale, 0).repeat(scale, 1), f"{i}")


def _fixed_samples(examples, config):
    pattern = os.path.join(examples.uri, "Split-test", "*")
    return samples.fixed_samples(input_pipeline.make_eval_dataset(pattern, config, 64), config)


def _artifact(kind, uri):
    artifact = kind()
    artifact.uri = str(uri)
    return artifact


@pytest.mark.slow
def test_do_exports_full_text_to_image_generator(tmp_path, config):
    examples = write_tiny_examples(str(tmp_path / "examples"), config)
    # an (untrained) Stage-I generator in Stage1Trainer's Model layout
    stage1 = _artifact(standard_artifacts.Model, tmp_path / "stage1")
    stage1_generator = build_stage1_generator(config.model, config.data.low_res)
    os.makedirs(stage1.uri)
    stage1_generator.save(os.path.join(stage1.uri, trainer_job.GENERATOR_FILE))
    text_encoder = _artifact(standard_artifacts.Model, tmp_path / "text_encoder")
    export_text_encoder(
        build_joint_embedding(config.text, feature_dim=8),
        os.path.join(text_encoder.uri, "Format-Serving"),
    )
    model = _artifact(standard_artifacts.Model, tmp_path / "model")
    model_run = _artifact(standard_artifacts.ModelRun, tmp_path / "model_run")

    Executor().Do(
        {"examples": [examples], "stage1_model": [stage1], "text_encoder": [text_encoder]},
        {"model": [model], "model_run": [model_run]},
        {**READS.exec_properties(config), "checkpoint_dir": str(tmp_path / "checkpoints")},
    )

    assert model.get_int_custom_property("stage") == 2
    generator = load_generator(model.uri)  # <uri>/Format-Serving, what the Pusher pushes
    assert generator.has_text_signature
    captions = ["a small yellow bird with grey wings", "a red bird"]
    images = generator.generate_from_captions(captions, seed=3)
    assert images["image_64"].shape == (2, 16, 16, 3)
    assert images["image_256"].shape == (2, 64, 64, 3)
    assert generator.embed_captions(captions).shape == (2, 1024)

    # Stage-I inside the export is the input Stage-I, untouched by Stage-II training
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(2, 1024)).astype(np.float32)
    noise, ca, ca2 = (rng.normal(size=(2, 8)).astype(np.float32) for _ in range(3))
    exported = generator.generate_with_noise(embedding, noise, ca, ca2)
    expected_low = to_uint8(stage1_generator([embedding, noise, ca], training=False)[0])
    np.testing.assert_allclose(exported["image_64"], expected_low.numpy(), atol=1)
    saved_stage1 = keras.saving.load_model(
        os.path.join(model.uri, trainer_job.STAGE1_GENERATOR_FILE)
    )
    for got, want in zip(saved_stage1.get_weights(), stage1_generator.get_weights()):
        np.testing.assert_array_equal(got, want)
    stage2 = keras.saving.load_model(os.path.join(model.uri, trainer_job.GENERATOR_FILE))
    assert stage2.output_shape[0] == (None, 64, 64, 3)

    with open(os.path.join(model_run.uri, trainer_job.SUMMARY_FILE)) as f:
        summary = json.load(f)
    assert summary["stage"] == 2 and summary["total_steps"] == 2
    # the final sheet: the exported Stage-II's 64 px refinements of the exported Stage-I's
    # images of the fixed test captions and noise
    final = samples.generate(_fixed_samples(examples, config), stage2, saved_stage1)
    assert final.shape == (4, 64, 64, 3)
    _assert_sheet_shows(os.path.join(model_run.uri, "samples", "final.png"), final)


def test_missing_stage1_generator_is_reported(tmp_path, config):
    examples = write_tiny_examples(str(tmp_path / "examples"), config)
    empty = _artifact(standard_artifacts.Model, tmp_path / "stage1")
    with pytest.raises(FileNotFoundError, match="Stage-I generator not found"):
        Executor().Do(
            {"examples": [examples], "stage1_model": [empty]},
            {
                "model": [_artifact(standard_artifacts.Model, tmp_path / "m")],
                "model_run": [_artifact(standard_artifacts.ModelRun, tmp_path / "r")],
            },
            READS.exec_properties(config),
        )


def test_component_channels(config):
    component = Stage2Trainer(
        examples=channel_utils.as_channel([standard_artifacts.Examples()]),
        stage1_model=channel_utils.as_channel([standard_artifacts.Model()]),
        config=config,
        checkpoint_dir="/ckpt/stage2",
    )
    assert set(component.inputs) == {"examples", "stage1_model"}
    assert set(component.outputs) == {"model", "model_run"}
    assert component.exec_properties["checkpoint_dir"] == "/ckpt/stage2"

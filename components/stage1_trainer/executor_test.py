"""Stage1Trainer: Executor().Do on temp artifacts with the tiny profile; the checkpoint layout
that lets a re-run resume; the component's channels."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tfx.types import channel_utils, standard_artifacts
from tiny_examples import write_tiny_examples

from stackgan import config as config_lib
from stackgan.components.stage1_trainer.component import READS, Stage1Trainer
from stackgan.components.stage1_trainer.executor import Executor
from stackgan.serving.generator import load_generator
from stackgan.tfrecords import input_pipeline
from stackgan.training import samples, trainer_job


@pytest.fixture(scope="module")
def config():
    return config_lib.tiny().replace(train={"max_steps": 3, "checkpoint_every_steps": 2})


@pytest.fixture(scope="module")
def examples(tmp_path_factory, config):
    return write_tiny_examples(str(tmp_path_factory.mktemp("examples")), config)


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


def _outputs(root):
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, model_run.uri = str(root / "model"), str(root / "model_run")
    return {"model": [model], "model_run": [model_run]}


@pytest.mark.slow
def test_do_writes_generator_serving_model_and_run(tmp_path, config, examples):
    outputs = _outputs(tmp_path / "first")
    checkpoint_root = str(tmp_path / "checkpoints")
    properties = {**READS.exec_properties(config), "checkpoint_dir": checkpoint_root}
    Executor().Do({"examples": [examples]}, outputs, properties)

    model, model_run = outputs["model"][0], outputs["model_run"][0]
    assert model.get_int_custom_property("stage") == 1
    assert model.get_int_custom_property("total_steps") == 3
    generator = keras.saving.load_model(os.path.join(model.uri, "generator.keras"))
    image = generator([np.zeros((2, 1024), np.float32), np.zeros((2, 8)), np.zeros((2, 8))])[0]
    assert image.shape == (2, 16, 16, 3)
    served = load_generator(model.uri).generate(np.zeros((2, 1024), np.float32), seed=1)
    assert sorted(served) == ["image_64"] and served["image_64"].shape == (2, 16, 16, 3)

    with open(os.path.join(model_run.uri, trainer_job.SUMMARY_FILE)) as f:
        summary = json.load(f)
    assert summary["total_steps"] == 3 and summary["resumed_from_step"] == 0
    assert summary["steps_per_epoch"] == 3  # num_train = 12 from the artifact, batch 4
    assert os.path.dirname(summary["checkpoint_dir"]) == checkpoint_root
    assert tf.train.latest_checkpoint(summary["checkpoint_dir"]).endswith("ckpt-3")
    # the final sheet: the exported generator's images of the fixed test captions and noise
    final = samples.generate(_fixed_samples(examples, config), generator)
    _assert_sheet_shows(os.path.join(model_run.uri, "samples", "final.png"), final)
    assert tf.io.gfile.glob(os.path.join(model_run.uri, "logs", "events.out.tfevents.*"))

    # TFX re-runs with new output URIs; the same inputs find the checkpoints and continue
    longer = config.replace(train={"max_steps": 4})
    again = _outputs(tmp_path / "second")
    Executor().Do({"examples": [examples]}, again, {**properties, **READS.exec_properties(longer)})
    with open(os.path.join(again["model_run"][0].uri, trainer_job.SUMMARY_FILE)) as f:
        resumed = json.load(f)
    assert resumed["resumed_from_step"] == 3 and resumed["total_steps"] == 4
    assert resumed["checkpoint_dir"] == summary["checkpoint_dir"]


def test_examples_without_embeddings_are_refused(tmp_path, config, examples):
    bare = standard_artifacts.Examples()
    bare.uri = examples.uri
    bare.split_names = examples.split_names
    bare.set_int_custom_property("has_embeddings", 0)
    with pytest.raises(ValueError, match="have no embeddings; train on the CaptionEmbedder"):
        Executor().Do({"examples": [bare]}, _outputs(tmp_path), READS.exec_properties(config))


def test_component_channels(config):
    examples = channel_utils.as_channel([standard_artifacts.Examples()])
    component = Stage1Trainer(examples=examples, config=config)
    assert set(component.outputs) == {"model", "model_run"}
    assert component.outputs["model"].type == standard_artifacts.Model
    assert component.outputs["model_run"].type == standard_artifacts.ModelRun
    assert component.exec_properties["checkpoint_dir"] == ""

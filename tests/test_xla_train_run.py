"""What crosses to the GPU machine for a training run of our own TensorFlow step
(bench/xla_train_run.py): six XLA programs that must share the run's variables by name, so that
Stage-II trains on the Stage-I that Stage-I's step trained, the images come from the trained and
averaged weights, and the BatchNorm statistics are re-estimated for every layer of the generator
and nothing else. The JAX side runs where JAX is (the GPU machine); this is the TensorFlow side."""

import argparse
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "bench"))
import xla_train_run

STATISTICS = ("moving_mean", "moving_variance")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("xla_run")
    rng = np.random.default_rng(0)
    data = str(folder / "data.npz")
    empty = np.zeros(0, np.uint8)
    np.savez(
        data, low_bytes=empty, low_offsets=np.zeros(1, np.int64), high_bytes=empty,
        high_offsets=np.zeros(1, np.int64), labels=np.zeros(0, np.int64),
        embeddings=rng.standard_normal((4, 10, 24)).astype(np.float32),
        stored=np.asarray([19, 76]), eval_train_embeddings=np.zeros((2, 24), np.float32),
        eval_test_embeddings=np.zeros((2, 24), np.float32),
    )  # fmt: skip
    out = str(folder / "programs")
    xla_train_run.export(
        argparse.Namespace(
            data=data,
            out=out,
            profile="tiny",
            precision="bfloat16",
            set=["train.generator_ema=0.99"],
            epoch_images=8855,
        )  # fmt: skip
    )
    with open(os.path.join(out, xla_train_run.RUN_MANIFEST)) as f:
        return out, json.load(f)


def _reads(manifest, role: str) -> set[str]:
    return {a["name"] for a in manifest["programs"][role]["args"] if a["kind"] == "variable"}


def _writes(manifest, role: str) -> set[str]:
    program = manifest["programs"][role]
    return {program["args"][p]["name"] for _, p in program["aliases"]}


def _statistic(name: str) -> bool:
    return name.split("#")[0].endswith(STATISTICS)


def test_every_program_is_written_with_the_data_s_embedding_size(run):
    out, manifest = run
    assert sorted(manifest["programs"]) == sorted(
        ["stage1_train", "stage1_statistics", "stage1_generate", "stage2_train",
         "stage2_statistics", "generate"]
    )  # fmt: skip
    for role, program in manifest["programs"].items():
        assert os.path.getsize(os.path.join(out, program["hlo"])) > 10_000, role
        embedding = next(a for a in program["args"] if a["name"] == "embedding")
        assert embedding["shape"][1] == 24, role
    assert manifest["batches"] == {"1": 4, "2": 4}
    assert manifest["programs"]["generate"]["log_names"] == ["stage1", "stage2"]


def test_stage2_and_the_images_read_the_stage1_generator_that_stage1_s_step_trains(run):
    _, manifest = run
    stage1_generator = _reads(manifest, "stage1_generate")
    assert len(stage1_generator) > 20
    # Stage-I's step updates every weight and statistic of its generator...
    assert stage1_generator <= _writes(manifest, "stage1_train")
    # ...which Stage-II's step reads under the same names and never changes (frozen); with
    # frozen_stage1_batchnorm "batch" (tiny's, the paper's) it normalises with the batch's
    # statistics, so it reads Stage-I's weights alone
    stage1_weights = {n for n in stage1_generator if not _statistic(n)}
    assert stage1_generator & _reads(manifest, "stage2_train") == stage1_weights
    assert not stage1_generator & _writes(manifest, "stage2_train")
    # the final images: that Stage-I, and the Stage-II generator that Stage-II's step trains
    stage2_generator = _reads(manifest, "generate") - stage1_generator
    assert stage1_generator <= _reads(manifest, "generate")
    assert len(stage2_generator) > 20
    assert stage2_generator <= _writes(manifest, "stage2_train")
    # the two GANs' own variables (seeds, optimizers, metrics) are kept apart
    assert "d_adam/iteration" in _reads(manifest, "stage1_train")
    assert "d_adam/iteration#2" in _reads(manifest, "stage2_train")
    assert not (_writes(manifest, "stage1_train") & _writes(manifest, "stage2_train"))


def test_the_statistics_programs_rewrite_every_batchnorm_statistic_of_their_generator_only(run):
    _, manifest = run
    stage1_generator = _reads(manifest, "stage1_generate")
    stage2_generator = _reads(manifest, "generate") - stage1_generator
    stage1_statistics = {n for n in stage1_generator if _statistic(n)}
    stage2_statistics = {n for n in stage2_generator if _statistic(n)}
    assert len(stage1_statistics) >= 4 and len(stage2_statistics) >= 4
    assert _writes(manifest, "stage1_statistics") == stage1_statistics
    assert _writes(manifest, "stage2_statistics") == stage2_statistics


def test_each_generator_weight_is_paired_with_its_average_and_each_log_with_its_sums(run):
    _, manifest = run
    for role, generator in (("stage1_train", "stage1_generate"), ("stage2_train", "generate")):
        program = manifest["programs"][role]
        weights = {n for n in _reads(manifest, generator) if not _statistic(n)}
        if role == "stage2_train":
            weights -= _reads(manifest, "stage1_generate")
        pairs = dict(program["averages"])
        assert set(pairs) == weights, role
        assert all("_average" in a for a in pairs.values())
        assert set(pairs.values()) <= _writes(manifest, role)  # the step moves the average
        # the logs' running sums, which the run zeroes after each log line, as fit() per epoch
        assert len(program["metrics"]) == 2 * len(program["log_names"]) == 14
        assert set(program["metrics"]) <= _writes(manifest, role)


def test_within_batch_statistics_written_a_training_batch_sets_the_moving_statistics():
    import keras
    import tensorflow as tf

    from stackgan.models.batch_norm import FreezableBatchNorm, batch_statistics_written

    model = keras.Sequential([keras.Input((3,)), FreezableBatchNorm(momentum=0.9)])
    layer = model.layers[0]
    x = tf.constant([[1.0, 2.0, 3.0], [3.0, 6.0, 11.0]])
    with batch_statistics_written(model) as layers:
        assert layers == [layer] and layer.momentum == 0.0
        model(x, training=True)
    assert layer.momentum == 0.9
    np.testing.assert_allclose(layer.moving_mean.numpy(), [2.0, 4.0, 7.0])
    np.testing.assert_allclose(layer.moving_variance.numpy(), [1.0, 4.0, 16.0])
    model(x, training=True)  # momentum 0.9 again: a tenth of the way
    np.testing.assert_allclose(layer.moving_mean.numpy(), [2.0, 4.0, 7.0])
    model(x * 2.0, training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy(), [2.2, 4.4, 7.7], rtol=1e-6)


def test_a_profile_override_that_is_wrong_ends_in_one_line(tmp_path):
    data = {"embeddings": np.zeros((1, 10, 8), np.float32), "stored": np.asarray([76, 304])}
    with pytest.raises(SystemExit, match="xla_train_run: .*no_such"):
        xla_train_run.run_config("tiny", ["train.no_such=1"], data)
    cfg = xla_train_run.run_config("paper", [], data)
    assert (cfg.model.embedding_dim, cfg.data.low_res_stored, cfg.data.high_res_stored) == (
        8, 76, 304,
    )  # fmt: skip

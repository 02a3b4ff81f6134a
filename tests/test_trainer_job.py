"""The trainers' checkpoint key (stackgan.training.trainer_job): what defines the training
trajectory, by content, never an artifact URI."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from tiny_examples import write_tiny_examples

from stackgan.components.stage1_trainer.component import READS as STAGE1_READS
from stackgan.components.stage2_trainer.component import READS as STAGE2_READS
from stackgan.models import build_stage1_generator
from stackgan.training import trainer_job


@pytest.fixture(scope="module")
def examples(tmp_path_factory, tiny_config):
    """The same tiny Examples under two artifact URIs, and other Examples under a third."""
    root = tmp_path_factory.mktemp("examples")
    write_tiny_examples(str(root / "1"), tiny_config)
    shutil.copytree(root / "1", root / "2")
    write_tiny_examples(str(root / "3"), tiny_config, train_classes=(0, 1, 3), test_classes=(2,))
    return [str(root / name / "Split-train" / "*") for name in ("1", "2", "3")]


def _args(config, train_pattern, stage=1, reads=STAGE1_READS, **fields):
    return trainer_job.StageJobArgs(
        stage=stage,
        config=reads.restrict(config),
        train_pattern=train_pattern,
        sample_pattern=train_pattern,
        model_dir="/m",
        run_dir="/run",
        checkpoint_root="/ckpt",
        **fields,
    )


def test_stage1_key_follows_data_content_and_config_not_uris_or_run_length(tiny_config, examples):
    key = trainer_job.checkpoint_dir(_args(tiny_config, examples[0]))
    assert os.path.dirname(key) == "/ckpt"
    # the same bytes under another artifact URI: the same run, resumed
    assert trainer_job.checkpoint_dir(_args(tiny_config, examples[1])) == key
    for run_length in (
        {"max_steps": 99, "stage1_epochs": 3, "checkpoint_every_steps": 7},
        {"sample_every_steps": 7, "log_every_steps": 3, "precise_bn_batches": 2},
    ):
        longer = tiny_config.replace(train=run_length)
        assert trainer_job.checkpoint_dir(_args(longer, examples[0])) == key, run_length
    # other data, other hyper-parameters, another model: a fresh start
    assert trainer_job.checkpoint_dir(_args(tiny_config, examples[2])) != key
    for change in (
        {"train": {"learning_rate": 1e-3}},
        {"train": {"seed": 1}},
        {"model": {"gf_dim": 8}},
        {"data": {"embeddings_per_sample": 1}},
    ):
        other = tiny_config.replace(**change)
        assert trainer_job.checkpoint_dir(_args(other, examples[0])) != key, change
    # without a checkpoint root the checkpoints stay with this execution's ModelRun
    own = trainer_job.StageJobArgs(
        1, STAGE1_READS.restrict(tiny_config), examples[0], "", "/m", "/r"
    )
    assert trainer_job.checkpoint_dir(own) == "/r/checkpoints"


def test_stage2_key_follows_stage1_weights_by_value(tmp_path, tiny_config, examples):
    generator = build_stage1_generator(tiny_config.model, tiny_config.data.low_res)
    for name in ("a", "b"):  # two saves of one model (two Model artifacts), seconds apart
        os.makedirs(tmp_path / name)
        generator.save(str(tmp_path / name / trainer_job.GENERATOR_FILE))
    stage2 = {"stage": 2, "reads": STAGE2_READS}

    def key(stage1_dir):
        return trainer_job.checkpoint_dir(
            _args(tiny_config, examples[0], stage1_model_dir=str(stage1_dir), **stage2)
        )

    assert key(tmp_path / "a") == key(tmp_path / "b")
    weights = generator.get_weights()
    weights[0] = weights[0] + np.float32(1e-6)
    generator.set_weights(weights)
    os.makedirs(tmp_path / "c")
    generator.save(str(tmp_path / "c" / trainer_job.GENERATOR_FILE))
    assert key(tmp_path / "c") != key(tmp_path / "a")
    assert key(tmp_path / "a") != trainer_job.checkpoint_dir(_args(tiny_config, examples[0]))
    # Stage-II's own run length resumes too (a larger stage2_max_steps extends the run); its
    # own hyper-parameters start afresh
    stage2_args = _args(tiny_config, examples[0], stage1_model_dir=str(tmp_path / "a"), **stage2)
    for run_length, same in (
        ({"stage2_max_steps": 99, "stage2_epochs": 3, "checkpoint_every_steps": 7}, True),
        ({"stage2_learning_rate": 1e-3}, False),
        ({"stage2_batch_size": 3}, False),
    ):
        other = _args(tiny_config.replace(train=run_length), examples[0],
                      stage1_model_dir=str(tmp_path / "a"), **stage2)  # fmt: skip
        assert (trainer_job.checkpoint_dir(other) == trainer_job.checkpoint_dir(stage2_args)) is (
            same
        ), run_length
    with pytest.raises(FileNotFoundError, match="Stage-I generator not found"):
        key(tmp_path / "absent")

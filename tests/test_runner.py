"""The stage runner: schedule, resume after a crash, TensorBoard records, sample sheets,
progress line and strategy choice."""

from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tiny_examples import write_tiny_examples

from stackgan.tfrecords import input_pipeline
from stackgan.training import distribute, runner
from stackgan.training.progress import ProgressLine, format_duration


class Crash(Exception):
    """Stands in for a killed process: raised from inside the loop, after the step's work."""


@pytest.fixture(scope="module")
def tiny_run_config():
    from stackgan import config

    # 12 training images / batch 4 = 3 steps per epoch; the lr halves every epoch (tiny profile)
    return config.tiny().replace(train={"max_steps": 4, "checkpoint_every_steps": 2})


@pytest.fixture(scope="module")
def examples(tmp_path_factory, tiny_run_config):
    root = tmp_path_factory.mktemp("examples")
    write_tiny_examples(str(root), tiny_run_config)
    return {split: str(root / f"Split-{split}" / "*") for split in ("train", "test")}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_run_config, examples):
    run_dir = str(tmp_path_factory.mktemp("uninterrupted"))
    stream = io.StringIO()
    run = runner.train_stage(
        tiny_run_config, 1, examples["train"], run_dir, sample_pattern=examples["test"],
        stream=stream,
    )  # fmt: skip
    return run, run_dir, stream.getvalue()


def test_plan_steps_from_epochs_or_max_steps(tiny_run_config):
    from_epochs = tiny_run_config.replace(train={"max_steps": 0, "stage2_epochs": 5})
    assert runner.plan_steps(from_epochs, 2, num_examples=14) == (3, 15)
    assert runner.plan_steps(tiny_run_config, 1, num_examples=14) == (3, 4)
    # Stage-II's own cap, where set, applies to Stage-II only
    own_cap = tiny_run_config.replace(train={"max_steps": 9, "stage2_max_steps": 5})
    assert runner.plan_steps(own_cap, 1, num_examples=14) == (3, 9)
    assert runner.plan_steps(own_cap, 2, num_examples=14) == (3, 5)
    # ... and so does its own batch size: epochs are counted in its batches
    own_batch = from_epochs.replace(train={"stage2_batch_size": 2})
    assert runner.plan_steps(own_batch, 2, num_examples=14) == (7, 35)
    assert runner.plan_steps(own_batch, 1, num_examples=14) == (3, 3 * 600)  # stage1_epochs
    with pytest.raises(ValueError, match="3 training images are fewer than one batch"):
        runner.plan_steps(tiny_run_config, 1, num_examples=3)


def test_count_examples_counts_records_and_rejects_empty_pattern(examples, tmp_path):
    assert runner.count_examples(examples["train"]) == 12
    with pytest.raises(FileNotFoundError, match="no TFRecord files match"):
        runner.count_examples(str(tmp_path / "nothing" / "*"))


def test_the_same_seed_trains_the_same_generator(
    tmp_path, tiny_run_config, examples, uninterrupted
):
    """`train.seed` decides the initial weights and the noise, and the input pipeline keeps
    its order (`data.ordered`), so training again in the same process, with TensorFlow's
    ordinary (not forced deterministic) ops, repeats the fixture's run (to within rounding:
    with two intra-op threads oneDNN may, rarely, split a reduction otherwise, by 1 ulp;
    unseeded, the weights differ by ~0.1); another seed trains another generator."""
    reference, _, _ = uninterrupted

    def weights(config, name):
        run = runner.train_stage(
            config, 1, examples["train"], str(tmp_path / name), stream=io.StringIO()
        )
        return run.gan.generator.get_weights()

    expected = reference.gan.generator.get_weights()
    again = weights(tiny_run_config, "again")
    assert len(again) == len(expected)
    for i, (got, want) in enumerate(zip(again, expected, strict=True)):
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"weight {i} of {len(expected)}")
    other_seed = weights(tiny_run_config.replace(train={"seed": 1}), "seed1")
    assert max(np.abs(a - b).max() for a, b in zip(other_seed, expected, strict=True)) > 0.01


@pytest.mark.slow
def test_killed_run_resumes_with_step_optimizer_lr_and_noise_state(
    tmp_path, tiny_run_config, examples, uninterrupted
):
    reference, _, _ = uninterrupted
    run_dir = str(tmp_path / "run")
    at_checkpoint = {}

    def crash_after_step_3(step, logs, gan):
        if step == 2:  # the checkpoint of step 2 was just written
            at_checkpoint["weights"] = [w.copy() for w in gan.generator.get_weights()]
            at_checkpoint["adam"] = [v.numpy().copy() for v in gan.g_optimizer.variables]
        if step == 3:
            raise Crash

    with pytest.raises(Crash):
        runner.train_stage(
            tiny_run_config, 1, examples["train"], run_dir, sample_pattern=examples["test"],
            on_step=crash_after_step_3, stream=io.StringIO(),
        )  # fmt: skip
    checkpoints = os.path.join(run_dir, "checkpoints")
    assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-2")
    assert not os.path.exists(os.path.join(run_dir, "samples", "final.png"))

    # resuming a run whose target is the checkpoint's step restores it exactly and trains nothing
    restored = runner.train_stage(
        tiny_run_config.replace(train={"max_steps": 2}), 1, examples["train"], run_dir,
        sample_pattern=examples["test"], stream=io.StringIO(),
    )  # fmt: skip
    assert restored.resumed_from_step == 2
    assert int(restored.gan.g_optimizer.iterations.numpy()) == 2
    for got, saved in zip(restored.gan.generator.get_weights(), at_checkpoint["weights"]):
        np.testing.assert_array_equal(got, saved)
    for got, saved in zip(restored.gan.g_optimizer.variables, at_checkpoint["adam"]):
        np.testing.assert_array_equal(got.numpy(), saved)

    # The resumed run must be the uninterrupted continuation of the step-2 checkpoint, whose
    # copy is resumed a second time below: the input pipeline keeps its order (`data.ordered`),
    # so both give the same weights, bit for bit.
    shutil.copytree(checkpoints, tmp_path / "checkpoint_copy")
    stream = io.StringIO()
    resumed = runner.train_stage(
        tiny_run_config, 1, examples["train"], run_dir, sample_pattern=examples["test"],
        stream=stream,
    )  # fmt: skip
    replay = runner.train_stage(
        tiny_run_config, 1, examples["train"], str(tmp_path / "replay"),
        checkpoint_dir=str(tmp_path / "checkpoint_copy"), stream=io.StringIO(),
    )  # fmt: skip
    assert resumed.resumed_from_step == replay.resumed_from_step == 2
    for network in ("generator", "discriminator"):
        got, want = getattr(resumed.gan, network), getattr(replay.gan, network)
        for w, a, b in zip(got.weights, got.get_weights(), want.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=w.path)
    assert stream.getvalue().splitlines()[0].startswith("Stage-I step 3/4")
    assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-4")
    for name in ("d_optimizer", "g_optimizer"):
        got, want = getattr(resumed.gan, name), getattr(reference.gan, name)
        assert int(got.iterations.numpy()) == int(want.iterations.numpy()) == 4
    # 4 iterations over 3 steps per epoch: the lr has been halved once, in both runs
    assert (
        resumed.last_logs["lr"] == pytest.approx(reference.last_logs["lr"]) == pytest.approx(1e-4)
    )
    np.testing.assert_array_equal(
        resumed.gan.seed_generator.state.numpy(), reference.gan.seed_generator.state.numpy()
    )
    # Neither run seeds the weights' initialisation, and the resumed one reshuffles its input
    # (module docstring), so its weights are not the uninterrupted run's: what is checked is
    # that it trained on from the step-2 checkpoint (restored exactly above): every weight
    # array, BatchNorm statistics included, moved from there and is finite.
    generator = resumed.gan.generator
    for w, got, saved in zip(
        generator.weights, generator.get_weights(), at_checkpoint["weights"], strict=True
    ):
        assert np.isfinite(got).all() and np.abs(got - saved).max() > 0.0, w.path
    assert all(np.isfinite(v) for v in resumed.last_logs.values())


def test_checkpoints_of_another_model_are_refused(
    tmp_path, tiny_run_config, examples, uninterrupted
):
    _, run_dir, _ = uninterrupted
    wider = tiny_run_config.replace(model={"gf_dim": 8})
    with pytest.raises(ValueError, match=r"model\.gf_dim: checkpoint 4, config 8"):
        runner.train_stage(
            wider, 1, examples["train"], str(tmp_path), stream=io.StringIO(),
            checkpoint_dir=os.path.join(run_dir, "checkpoints"),
        )  # fmt: skip


def test_checkpoints_from_before_a_model_field_existed_resume_at_its_default(
    tmp_path, tiny_run_config, examples, uninterrupted
):
    """A run killed before an upgrade that added a model field (here generator_padding) must
    resume with the field at its default, the old behaviour, and be refused with another."""
    _, run_dir, _ = uninterrupted
    old = str(tmp_path / "old_checkpoints")
    shutil.copytree(os.path.join(run_dir, "checkpoints"), old)
    record = os.path.join(old, "stage.json")
    with open(record) as f:
        identity = json.load(f)
    del identity["model"]["generator_padding"]
    with open(record, "w") as f:
        json.dump(identity, f)

    run = runner.train_stage(
        tiny_run_config, 1, examples["train"], str(tmp_path / "resumed"), stream=io.StringIO(),
        checkpoint_dir=old,
    )  # fmt: skip
    assert run.resumed_from_step == tiny_run_config.train.max_steps  # resumed, nothing redone
    padded = tiny_run_config.replace(model={"generator_padding": "replicate"})
    expected = r"model\.generator_padding: checkpoint 'zeros' \(not recorded: the default then\)"
    with pytest.raises(ValueError, match=expected):
        runner.train_stage(
            padded, 1, examples["train"], str(tmp_path / "refused"), stream=io.StringIO(),
            checkpoint_dir=old,
        )  # fmt: skip


def test_tensorboard_scalars_images_and_sample_sheets(uninterrupted, examples):
    run, run_dir, progress = uninterrupted
    records = {}
    for path in tf.io.gfile.glob(os.path.join(run_dir, "logs", "*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                records.setdefault(value.tag, []).append((event.step, plugin, value.tensor))
    for tag in ("d_loss", "g_loss", "kl", "d_acc_real", "d_acc_wrong", "d_acc_fake", "lr"):
        assert [(step, plugin) for step, plugin, _ in records[tag]] == [
            (s, "scalars") for s in (1, 2, 3, 4)
        ]
    lr = [float(tf.make_ndarray(t)) for _, _, t in records["lr"]]
    assert lr == pytest.approx([2e-4, 2e-4, 1e-4, 1e-4])
    assert [step for step, _, _ in records["samples"]] == [2, 4]
    image_record = tf.make_ndarray(records["samples"][0][2])
    assert image_record[:2].tolist() == [b"16", b"16"] and len(image_record) == 2 + 4
    assert tf.io.decode_png(image_record[2]).shape == (16, 16, 3)
    # one caption from each of the 4 different test images (class 3, yellow)
    captions = tf.make_ndarray(records["sample_captions"][0][2]).item().decode().splitlines()
    assert len(captions) == 4 and all("a yellow bird, caption" in c for c in captions)

    samples = sorted(os.listdir(os.path.join(run_dir, "samples")))
    assert samples == ["final.png", "step_0000002.png"]
    assert run.final_sample_sheet == os.path.join(run_dir, "samples", "final.png")
    sheet = np.asarray(Image.open(run.final_sample_sheet).convert("RGB"))
    assert sheet.shape[1] == 8 + 4 * (128 + 8)  # 4 columns of 16 px images enlarged to 128
    # the sheet shows the final generator's images of the fixed samples, pixel for pixel
    from stackgan.training import samples

    fixed = samples.fixed_samples(
        input_pipeline.make_eval_dataset(examples["test"], run.gan.config, 64), run.gan.config
    )
    images = samples.generate(fixed, run.gan.generator)
    assert images.shape == (4, 16, 16, 3)
    tiles = [sheet[8 : 8 + 128, 8 + c * 136 : 8 + c * 136 + 128] for c in range(4)]
    for c, tile in enumerate(tiles):
        np.testing.assert_array_equal(tile[::8, ::8], images[c], err_msg=f"tile {c}")
    assert len({tile.tobytes() for tile in tiles}) == 4  # 4 noise draws, 4 different images

    lines = progress.splitlines()
    assert [line.split("  ")[0] for line in lines] == [f"Stage-I step {s}/4" for s in (1, 2, 3, 4)]
    assert all(" img/s" in line and "d_loss " in line and "ETA " in line for line in lines)


def test_progress_line_rates_and_eta():
    now = [100.0]
    stream = io.StringIO()
    line = ProgressLine(100, batch_size=8, start_step=10, stream=stream, clock=lambda: now[0])
    now[0] = 130.0  # the first interval includes tracing: no rate, no ETA
    first = line.report(11, {"d_loss": 1.5})
    assert first == "step  11/100  - img/s  d_loss 1.5  ETA ?"
    now[0] = 135.0  # then 10 steps in 5 s: 2 steps/s, 16 img/s; 79 steps left: 39.5 s
    second = line.report(21, {"d_loss": 1.25, "lr": 2e-4})
    assert second == "step  21/100  16.0 img/s  d_loss 1.25  lr 0.0002  ETA 00:40"
    assert stream.getvalue() == first + "\n" + second + "\n"
    assert format_duration(3725) == "1:02:05"


def test_the_evaluators_progress_line_reports_at_most_every_interval():
    """The Evaluator's line (stackgan.evaluation.evaluator_job.progress_line): the first batch,
    then only once PROGRESS_EVERY_S passed, its rate over the batches since, and the last."""
    from stackgan.evaluation.evaluator_job import PROGRESS_EVERY_S, progress_line

    assert PROGRESS_EVERY_S == 10.0
    now, stream = [0.0], io.StringIO()
    progress = progress_line("Evaluator", 64, stream=stream, clock=lambda: now[0])
    for done, at in ((1, 2.0), (2, 6.0), (3, 9.0), (4, 13.0), (5, 14.0)):
        now[0] = at
        progress(done, 5)
    # batch 1 at 2 s; 2 and 3 within 10 s of it, skipped; 4 at 13 s: 3 batches of 64 in 11 s;
    # 5, the last, though 1 s after
    assert stream.getvalue().splitlines() == [
        "Evaluator step 1/5  - img/s  ETA ?",
        "Evaluator step 4/5  17.5 img/s  ETA 00:04",
        "Evaluator step 5/5  64.0 img/s  ETA 00:00",
    ]


def test_strategy_choice_follows_tf_config():
    assert distribute.cluster_size(None) == 0
    single = json.dumps({"cluster": {"worker": ["localhost:1234"]}, "task": {"type": "worker"}})
    assert distribute.cluster_size(single) == 1
    two = json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]}})
    assert distribute.cluster_size(two) == 2
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distribute.cluster_size("{oops")
    # one task and no second GPU: the default strategy, which owns all outputs
    strategy = distribute.choose_strategy(single)
    assert strategy is tf.distribute.get_strategy()
    assert distribute.is_chief(strategy)


def test_the_trained_generator_ends_with_precise_batchnorm_statistics(
    uninterrupted, tiny_run_config, examples
):
    """The generator a run leaves (what is exported and drew the last sheet) holds BatchNorm
    statistics re-estimated under its final weights, as `precise_bn` computes them from the
    training conditions, not the moving averages training left."""
    import keras

    from stackgan.training import precise_bn

    run, _, _ = uninterrupted
    trained, train = run.gan.generator, tiny_run_config.train
    assert train.precise_bn_batches > 0
    fresh = keras.models.clone_model(trained)
    fresh.set_weights(trained.get_weights())
    pairs = [
        (got, mine)
        for got, mine in zip(trained.non_trainable_variables, fresh.non_trainable_variables,
                             strict=True)
        if "moving_" in mine.path
    ]  # fmt: skip
    assert pairs
    for _, variable in pairs:  # start from other numbers than the run's
        variable.assign(np.full(variable.shape, 0.5 if "variance" in variable.path else 0.0))
    conditions = input_pipeline.training_conditions(
        examples["train"], tiny_run_config, 4 * train.precise_bn_batches, seed=train.seed
    )
    recalibrate = precise_bn.BatchNormRecalibration(
        precise_bn.embedding_batches(conditions, 4), tiny_run_config
    )
    assert recalibrate(fresh) > 0
    for got, want in pairs:
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=got.path)  # fmt: skip


def test_sample_captions_cover_different_classes_first(tiny_run_config):
    from stackgan.training import samples

    def batch(ids, labels):
        return {
            "image_id": np.array(ids),
            "label": np.array(labels),
            "caption": np.array([f"image {i}".encode() for i in ids]),
            "embedding": np.array([[float(i)] * 4 for i in ids], np.float32),
        }

    # image-major and class-major, as make_eval_dataset lists a split
    batches = [batch([1, 1, 2, 2], [0, 0, 0, 0]), batch([3, 4, 5], [0, 1, 1]), batch([6], [2])]
    chosen = samples.fixed_samples(batches, tiny_run_config)
    # the 3 classes first (images 1, 4, 6), then the remaining images in reading order
    assert chosen.captions == ["image 1", "image 4", "image 6", "image 2", "image 3", "image 5"]
    np.testing.assert_array_equal(chosen.embedding[:, 0], [1, 4, 6, 2, 3, 5])
    assert chosen.noise.shape == (6, tiny_run_config.model.z_dim)
    again = samples.fixed_samples(batches, tiny_run_config)
    np.testing.assert_array_equal(chosen.noise, again.noise)  # fixed for the run and on resume
    with pytest.raises(ValueError, match="sample split is empty"):
        samples.fixed_samples([], tiny_run_config)

    # the sheets draw as the served model does: N(0, truncation^2) (the demo's 0.5)
    half = samples.fixed_samples(batches, tiny_run_config.replace(model={"truncation": 0.5}))
    for name in ("noise", "ca_noise", "ca_noise_2"):
        full = getattr(chosen, name)
        assert np.abs(full).max() > 0.5  # a comparison of something
        np.testing.assert_allclose(getattr(half, name), 0.5 * full, rtol=1e-6, err_msg=name)


def test_each_stage_is_described_once(tiny_run_config):
    from stackgan.stages import get_stage

    data = tiny_run_config.data
    stage1, stage2 = get_stage(1), get_stage(2)
    assert (stage1.image_feature, stage1.image_sizes(data)) == ("image_low", (19, 16))
    assert (stage2.image_feature, stage2.image_sizes(data)) == ("image_high", (76, 64))
    assert (stage1.refines_stage1, stage2.refines_stage1) == (False, True)
    with pytest.raises(ValueError, match="stage must be 1 or 2, got 3"):
        get_stage(3)
    with pytest.raises(ValueError, match="stage must be 1 or 2, got 3"):
        runner.plan_steps(tiny_run_config, 3, num_examples=14)


def test_generator_average_is_what_samples_and_the_end_of_training_give(
    tmp_path, tiny_run_config, examples
):
    """`train.generator_ema=m`: the generator a run ends with (the one exported) holds
    a_t = m_t a_(t-1) + (1 - m_t) w_t over the trained weights w_t of every step (a_1 = w_1),
    with the warm-up m_t = min(m, t / (9 + t)) (fused_adam.py), while training itself continues
    from w_t: the sample sheet every step swaps the average in and back out, so the trained
    weights match a run with no average."""
    momentum = 0.5  # reached at step 9: both the warm-up and the cap shape the average
    steps = 10
    seen = {}

    def record(step, logs, gan):
        seen[step] = [w.numpy().copy() for w in gan.generator.trainable_variables]

    averaged_cfg = tiny_run_config.replace(
        train={"generator_ema": momentum, "sample_every_steps": 1, "max_steps": steps}
    )
    # the same seed: the same initial weights and batches in both runs
    averaged = runner.train_stage(
        averaged_cfg, 1, examples["train"], str(tmp_path / "ema"),
        sample_pattern=examples["test"], on_step=record, stream=io.StringIO(),
    )  # fmt: skip
    plain = runner.train_stage(
        tiny_run_config.replace(train={"max_steps": steps}), 1, examples["train"],
        str(tmp_path / "plain"), sample_pattern=examples["test"], stream=io.StringIO(),
    )  # fmt: skip
    expected = seen[1]
    for step in range(2, steps + 1):
        m = min(momentum, step / (9 + step))  # 0.18, 0.25, ..., 0.47, then 0.5 (not 0.53)
        expected = [m * a + (1 - m) * w for a, w in zip(expected, seen[step])]
    final = [w.numpy() for w in averaged.gan.generator.trainable_variables]
    # the average is not the last weights (here up to 5.6e-5 apart, 50x the tolerance below)
    assert any(np.abs(e - s).max() > 1e-5 for e, s in zip(expected, seen[steps]))
    for got, want in zip(final, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # training went on from the trained weights, not from the average swapped in for samples
    for got, want in zip(seen[steps], plain.gan.generator.trainable_variables):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)

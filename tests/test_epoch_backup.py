"""stackgan.training.epoch_backup: a Keras `fit` killed between epochs continues where it was,
with its optimizer state, and its per-epoch log covers every epoch once."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest


def _fit(backup, epochs: int, kill_at: int | None = None):
    """A small regression fitted on a fixed batch order (no shuffle), so a resumed run can
    match an unbroken one; Adam, whose moments a resume must restore too."""
    import keras

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.3
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.05), loss="mse")

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == kill_at:
                raise KeyboardInterrupt("killed")

    model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0,
              callbacks=[*backup.callbacks(), Kill()])  # fmt: skip
    return model


def test_a_fit_killed_between_epochs_resumes_to_the_unbroken_runs_weights(tmp_path):
    from stackgan.training.epoch_backup import open_backup

    key = {"job": "test", "data": "fixed"}
    unbroken = _fit(open_backup(str(tmp_path / "a"), key), epochs=5)

    first = open_backup(str(tmp_path / "b"), key)
    assert first.resumed_from_epoch == 0
    with pytest.raises(KeyboardInterrupt):
        _fit(first, epochs=5, kill_at=3)
    again = open_backup(str(tmp_path / "b"), key)
    assert again.directory == first.directory and again.resumed_from_epoch == 3
    resumed = _fit(again, epochs=5)

    # the same weights: the weights AND Adam's moments and step count came back (without the
    # moments the last two epochs would take other steps)
    for a, b in zip(unbroken.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    history = again.history()
    assert len(history["loss"]) == 5
    assert history["loss"] == pytest.approx(open_backup(str(tmp_path / "a"), key).history()["loss"])

    # another key (other data or settings): another folder, a fresh start
    other = open_backup(str(tmp_path / "b"), {**key, "data": "other"})
    assert other.directory != again.directory and other.resumed_from_epoch == 0

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    again.finish(str(run_dir))
    assert not os.path.exists(again.directory)
    with open(run_dir / "history.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1", "2", "3", "4"]


def test_a_log_row_written_after_the_last_backup_is_dropped(tmp_path):
    """A kill after an epoch's CSV row and before its backup: that epoch runs again, so its
    row goes (it would be there twice)."""
    import json

    from stackgan.training.epoch_backup import KERAS_METADATA_FILE, open_backup

    backup = open_backup(str(tmp_path), {"job": "test"})
    with open(backup.history_path, "w") as f:
        f.write("epoch,loss\n0,3.0\n1,2.0\n2,1.0\n")
    with open(os.path.join(backup.directory, KERAS_METADATA_FILE), "w") as f:
        json.dump({"epoch": 2, "batch": 0}, f)
    reopened = open_backup(str(tmp_path), {"job": "test"})
    assert reopened.resumed_from_epoch == 2
    assert reopened.history() == {"loss": [3.0, 2.0]}

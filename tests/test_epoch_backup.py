"""stackgan.training.epoch_backup: a Keras `fit` killed between epochs continues where it was,
with its optimizer state, and its per-epoch log covers every epoch once."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest


@pytest.fixture(params=["local", "url"])
def backup_root(request, tmp_path) -> str:
    """A folder for backups: a local path, or the same folder as a file:// URL, which Keras and
    tf.io.gfile treat as remote, as they treat gs:// (Kubeflow's checkpoint dir): Keras then
    saves weights through a local copy, and its CSVLogger failed at every fit's end there."""
    return str(tmp_path) if request.param == "local" else f"file://{tmp_path}"


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


def test_a_fit_killed_between_epochs_resumes_to_the_unbroken_runs_weights(backup_root, tmp_path):
    from stackgan.training.epoch_backup import open_backup

    key = {"job": "test", "data": "fixed"}
    unbroken = _fit(open_backup(f"{backup_root}/a", key, 0), epochs=5)

    first = open_backup(f"{backup_root}/b", key, 0)
    assert first.resumed_from_epoch == 0
    with pytest.raises(KeyboardInterrupt):
        _fit(first, epochs=5, kill_at=3)
    again = open_backup(f"{backup_root}/b", key, 0)
    assert again.directory == first.directory and again.resumed_from_epoch == 3
    resumed = _fit(again, epochs=5)

    # the same weights: the weights AND Adam's moments and step count came back (without the
    # moments the last two epochs would take other steps)
    for a, b in zip(unbroken.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    history = again.history()
    assert len(history["loss"]) == 5
    assert history["loss"] == pytest.approx(
        open_backup(f"{backup_root}/a", key, 0).history()["loss"]
    )

    # another key (other data or settings): another folder, a fresh start
    other = open_backup(f"{backup_root}/b", {**key, "data": "other"})
    assert other.directory != again.directory and other.resumed_from_epoch == 0

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    again.finish(str(run_dir))
    assert not os.path.exists(again.directory.removeprefix("file://"))
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


def test_backups_wait_for_their_interval_and_a_resume_drops_the_epochs_after_the_last(
    tmp_path, monkeypatch
):
    """With a minimum interval a backup is taken at the first epoch end after it has passed
    (the clock moving 30 s an epoch against an interval of 50 s: after epochs 2 and 4);
    killed during the sixth epoch, the run resumes after epoch 4 and its log keeps 4 rows."""
    from stackgan.training import epoch_backup

    clock = iter(range(0, 1000, 30))  # the callback's start, then one reading per epoch end
    monkeypatch.setattr(epoch_backup, "_clock", lambda: float(next(clock)))
    backup = epoch_backup.open_backup(str(tmp_path), {"job": "test"}, min_interval_s=50)
    with pytest.raises(KeyboardInterrupt):
        _fit(backup, epochs=8, kill_at=5)
    with open(backup.history_path) as f:
        assert len(list(csv.DictReader(f))) == 5  # every finished epoch logged
    reopened = epoch_backup.open_backup(str(tmp_path), {"job": "test"}, min_interval_s=50)
    assert reopened.resumed_from_epoch == 4
    assert len(reopened.history()["loss"]) == 4

    # finished and marked done: opened again (a later phase's kill), its log stays whole
    model = _fit(reopened, epochs=7)  # its last backup after epoch 6
    reopened.mark_done(model)
    done = epoch_backup.open_backup(str(tmp_path), {"job": "test"}, min_interval_s=50)
    assert done.done and len(done.history()["loss"]) == 7


def _fit_with_early_stopping(backup, kill_at: int | None = None):
    """A regression whose held-out loss is best after its first epoch and worse after each
    later one (the held-out targets have the opposite sign), with early stopping of patience
    3 that restores the best weights: unbroken, it stops after the fourth epoch with the
    first epoch's weights."""
    import keras

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.05), loss="mse")
    stopper = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == kill_at:
                raise KeyboardInterrupt("killed")

    fitted = model.fit(x, y, validation_data=(x, -y), batch_size=16, epochs=10, shuffle=False,
                       verbose=0, callbacks=[stopper, *backup.callbacks(stopper), Kill()])  # fmt: skip
    return model, stopper, fitted.history


def test_a_resumed_fit_stops_early_and_restores_the_best_weights_as_the_unbroken_one(
    backup_root,
):
    """Killed before epoch 3 (the best, epoch 0, two epochs behind), the resumed fit stops
    after that fourth epoch, as the unbroken one does, and ends on epoch 0's weights. Keras'
    EarlyStopping alone starts again at a resume: it would train to epoch 6 and end on epoch
    3's weights."""
    from stackgan.training.epoch_backup import open_backup

    key = {"job": "test"}
    unbroken, stopper, history = _fit_with_early_stopping(open_backup(f"{backup_root}/a", key, 0))
    assert stopper.best_epoch == 0 and stopper.stopped_epoch == 3 and len(history["loss"]) == 4

    with pytest.raises(KeyboardInterrupt):
        _fit_with_early_stopping(open_backup(f"{backup_root}/b", key, 0), kill_at=3)
    again = open_backup(f"{backup_root}/b", key, 0)
    assert again.resumed_from_epoch == 3
    resumed, stopper, _ = _fit_with_early_stopping(again)
    assert stopper.best_epoch == 0 and stopper.stopped_epoch == 3
    assert len(again.history()["val_loss"]) == 4
    for a, b in zip(unbroken.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_early_stopping_state_of_another_epoch_than_the_backup_is_not_trusted(tmp_path):
    """A kill between saving early stopping's state and Keras' epoch file leaves the state an
    epoch ahead: the resume counts anew rather than pair the state with other weights."""
    import json

    from stackgan.training.epoch_backup import EARLY_STOPPING_FILE, open_backup

    with pytest.raises(KeyboardInterrupt):
        _fit_with_early_stopping(open_backup(str(tmp_path), {"job": "test"}, 0), kill_at=2)
    state_path = os.path.join(open_backup(str(tmp_path), {"job": "test"}, 0).directory,
                              EARLY_STOPPING_FILE)  # fmt: skip
    with open(state_path) as f:
        state = json.load(f)
    assert state["epoch"] == 2 and state["best_epoch"] == 0 and state["wait"] == 1
    with open(state_path, "w") as f:
        json.dump({**state, "epoch": 3}, f)
    _, stopper, _ = _fit_with_early_stopping(open_backup(str(tmp_path), {"job": "test"}, 0))
    assert stopper.best_epoch == 2 and stopper.stopped_epoch == 5  # counted from the resume

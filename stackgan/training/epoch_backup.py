"""Resuming a Keras `fit` that a kill interrupted, for the jobs that train by epochs: the text
encoder (its DS-SJE objective runs for hundreds of epochs on CUB's captions) and the classifier
(one `fit` per phase; a finished phase is kept whole, `mark_done`, and not run again).

Keras' `BackupAndRestore` keeps the weights, the optimizer's state and the epoch count in a
folder at the end of each epoch, and a new `fit` with that folder continues from there. TFX gives
every execution new output URIs, so the folder lives under a root that outlives executions, named
by what defines the training (`key`: the job's config, its data's content fingerprint, ...), as
the GAN trainers' checkpoints are (stackgan/training/trainer_job.py): a re-run after a kill
resumes, and other data or settings start afresh. The per-epoch CSV log is kept beside it, so the
finished run's history covers every epoch, the ones before the kill too.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

HISTORY_FILE = "history.csv"
KEY_FILE = "key.json"
DONE_WEIGHTS_FILE = "done.weights.h5"  # a finished fit's final weights (after what follows it)
# what Keras' BackupAndRestore writes in its folder (keras/src/callbacks/backup_and_restore.py)
KERAS_METADATA_FILE = "training_metadata.json"
# early stopping's count and best epoch, and that epoch's weights, as of the backup
EARLY_STOPPING_FILE = "early_stopping.json"
EARLY_STOPPING_WEIGHTS_FILE = "early_stopping_best.npz"
# At most one backup a minute: a kill loses at most a minute's epochs, and short epochs pay
# nothing (saved every epoch, the demo's classifier took 48 s in the Quickstart's DAG against
# 34-39 s before, Zen 4).
MIN_BACKUP_INTERVAL_S = 60.0
_clock = time.monotonic  # the backups' clock (a test moves it)


class EpochLog(keras.callbacks.Callback):
    """Each epoch's logs as a row of a CSV file (the rows already there kept), the file
    rewritten whole at every epoch's end through `tf.io.gfile`, via a temporary file, so a kill
    never leaves half a row. Keras' CSVLogger is not used: on an object store's path (gs://, as
    Kubeflow's checkpoint dir is) it fails at the end of every fit (its `tf.io.gfile.GFile` has
    no `closed`)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self._rows: list[dict[str, str]] = []
        self._fields: list[str] | None = None

    def on_train_begin(self, logs=None):
        self._rows, self._fields = [], None
        if tf.io.gfile.exists(self.path):
            with tf.io.gfile.GFile(self.path) as f:
                reader = csv.DictReader(f)
                self._rows = list(reader)
                self._fields = list(reader.fieldnames or []) or None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._fields is None:
            self._fields = ["epoch", *sorted(logs)]
        row = {"epoch": str(epoch)}
        row.update((k, repr(float(logs[k])) if k in logs else "NA") for k in self._fields[1:])
        self._rows.append(row)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self._fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self._rows)
        partial = self.path + ".partial"
        with tf.io.gfile.GFile(partial, "w") as f:
            f.write(text.getvalue())
        tf.io.gfile.rename(partial, self.path, overwrite=True)


class PeriodicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, saving at an epoch's end only once `min_interval_s` have passed
    since the last save (or the start); with `early_stopping`, that callback's state (its count
    of epochs without improvement, its best value and epoch, and the best epoch's weights) is
    saved with every backup and restored with it, so a resumed fit stops, and restores, where the
    unbroken one would. Keras' EarlyStopping forgets all of it at the start of every `fit`. It
    must come before this callback in the fit's list: it resets at the start before the restore
    here, and judges each epoch before the save."""

    def __init__(
        self,
        backup_dir: str,
        min_interval_s: float,
        early_stopping: keras.callbacks.EarlyStopping | None = None,
    ):
        super().__init__(backup_dir, delete_checkpoint=False)
        self.min_interval_s = min_interval_s
        self.early_stopping = early_stopping
        self._last_save = _clock()
        self._saved_best_epoch: int | None = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.early_stopping is not None:
            self._restore_early_stopping()

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1  # what the parent's save records
        self._last_batch_seen = 0
        now = _clock()
        if now - self._last_save >= self.min_interval_s:
            self._save_model()
            self._last_save = now

    def _save_model(self):
        if self.early_stopping is not None:
            self._save_early_stopping()
        # Keras writes its epoch file last: a kill before it leaves early stopping's state a
        # step ahead of the backup, which the restore sees (the epochs differ) and ignores
        super()._save_model()

    def _save_early_stopping(self) -> None:
        stopper = self.early_stopping
        best = None if stopper.best is None else float(stopper.best)
        state = {"epoch": self._current_epoch, "wait": stopper.wait, "best": best,
                 "best_epoch": stopper.best_epoch, "has_weights": stopper.best_weights is not None}  # fmt: skip
        if state["has_weights"] and stopper.best_epoch != self._saved_best_epoch:
            buffer = io.BytesIO()
            # the epoch inside: a kill between this file and the state's is seen on restore
            np.savez(buffer, *stopper.best_weights, best_epoch=stopper.best_epoch)
            with tf.io.gfile.GFile(self._path(EARLY_STOPPING_WEIGHTS_FILE), "wb") as f:
                f.write(buffer.getvalue())
            self._saved_best_epoch = stopper.best_epoch
        with tf.io.gfile.GFile(self._path(EARLY_STOPPING_FILE), "w") as f:
            f.write(json.dumps(state))

    def _restore_early_stopping(self) -> None:
        paths = [self._path(name) for name in (KERAS_METADATA_FILE, EARLY_STOPPING_FILE)]
        if not all(tf.io.gfile.exists(path) for path in paths):
            return  # a fresh start
        backup_epoch, state = (_read_json(path) for path in paths)
        if state["epoch"] != backup_epoch["epoch"]:
            logging.warning(
                "%s: early stopping's state is of epoch %d, the backup of epoch %d; early"
                " stopping counts anew",
                self.backup_dir, state["epoch"], backup_epoch["epoch"],
            )  # fmt: skip
            return
        best_weights = None
        if state["has_weights"]:
            with tf.io.gfile.GFile(self._path(EARLY_STOPPING_WEIGHTS_FILE), "rb") as f:
                arrays = np.load(io.BytesIO(f.read()))
            if int(arrays["best_epoch"]) != state["best_epoch"]:
                logging.warning(
                    "%s: early stopping's best weights are of epoch %d, its state names epoch"
                    " %d; early stopping counts anew",
                    self.backup_dir, int(arrays["best_epoch"]), state["best_epoch"],
                )  # fmt: skip
                return
            best_weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files) - 1)]
        stopper = self.early_stopping
        stopper.wait, stopper.best, stopper.best_epoch, stopper.best_weights = (
            state["wait"], state["best"], state["best_epoch"], best_weights,
        )  # fmt: skip
        self._saved_best_epoch = state["best_epoch"] if best_weights is not None else None

    def _path(self, name: str) -> str:
        return os.path.join(self.backup_dir, name)


def _read_json(path: str) -> dict:
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


@dataclasses.dataclass(frozen=True)
class EpochBackup:
    directory: str
    resumed_from_epoch: int  # 0: a fresh start
    min_interval_s: float = MIN_BACKUP_INTERVAL_S  # 0: a backup after every epoch

    @property
    def history_path(self) -> str:
        return os.path.join(self.directory, HISTORY_FILE)

    def callbacks(
        self, early_stopping: keras.callbacks.EarlyStopping | None = None
    ) -> list[keras.callbacks.Callback]:
        """For the end of a fit's callback list (after `early_stopping`, whose state the backup
        keeps). The CSV log first: an epoch's row is written before its backup, so a kill
        between the two re-runs that epoch (and `open_backup` drops its row, as it drops the
        rows of epochs after the last backup), never loses its row."""
        return [
            EpochLog(self.history_path),
            PeriodicBackupAndRestore(self.directory, self.min_interval_s, early_stopping),
        ]

    def history(self) -> dict[str, list[float]]:
        """Every epoch's logs so far, as Keras' `History.history` holds them."""
        with tf.io.gfile.GFile(self.history_path) as f:
            rows = list(csv.DictReader(f))
        # "NA": a metric an epoch lacks
        keys = [k for k in (rows[0] if rows else {})
                if k != "epoch" and any(row[k] != "NA" for row in rows)]  # fmt: skip
        return {k: [float("nan" if row[k] == "NA" else row[k]) for row in rows] for k in keys}

    @property
    def done(self) -> bool:
        """Whether `mark_done` ran: the fit, and whatever the job did to the model after it."""
        return tf.io.gfile.exists(os.path.join(self.directory, DONE_WEIGHTS_FILE))

    def mark_done(self, model: keras.Model) -> None:
        model.save_weights(os.path.join(self.directory, DONE_WEIGHTS_FILE))

    def restore_done(self, model: keras.Model) -> None:
        """The weights `mark_done` saved, into a model built and compiled as it was then."""
        model.load_weights(os.path.join(self.directory, DONE_WEIGHTS_FILE))

    def finish(self, run_dir: str) -> None:
        """The whole history to `run_dir`, and the backup removed: call it once the job's
        outputs are written, so a kill before then still resumes (with nothing left to train)."""
        tf.io.gfile.copy(self.history_path, os.path.join(run_dir, HISTORY_FILE), overwrite=True)
        self.discard()

    def discard(self) -> None:
        """The backup removed, and its root with it when nothing else is left there."""
        tf.io.gfile.rmtree(self.directory)
        root = os.path.dirname(self.directory)
        if tf.io.gfile.isdir(root) and not tf.io.gfile.listdir(root):
            tf.io.gfile.rmtree(root)


def open_backup(root: str, key: dict, min_interval_s: float | None = None) -> EpochBackup:
    """The backup folder for `key` under `root`, with how far a killed run got (0 if none);
    its backups at most every `min_interval_s` (default MIN_BACKUP_INTERVAL_S; 0: each epoch)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    directory = os.path.join(root, digest[:16])
    tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(os.path.join(directory, KEY_FILE), "w") as f:
        f.write(json.dumps(key, indent=1, sort_keys=True, default=str))  # for a reader only
    metadata = os.path.join(directory, KERAS_METADATA_FILE)
    epoch = 0
    if tf.io.gfile.exists(metadata):
        with tf.io.gfile.GFile(metadata) as f:
            epoch = int(json.load(f)["epoch"])
    interval = MIN_BACKUP_INTERVAL_S if min_interval_s is None else min_interval_s
    backup = EpochBackup(directory, epoch, interval)
    if not backup.done:  # a finished fit's log is whole, backed up last or not
        _keep_first_rows(backup.history_path, epoch)
    return backup


def _keep_first_rows(path: str, rows: int) -> None:
    """The CSV log cut to the epochs the backup holds (a kill may have come after a row was
    written and before its epoch's backup); no file when none."""
    if not tf.io.gfile.exists(path):
        return
    with tf.io.gfile.GFile(path) as f:
        lines = f.read().splitlines(keepends=True)
    if rows == 0:
        tf.io.gfile.remove(path)
        return
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("".join(lines[: rows + 1]))  # the header and the first `rows` epochs

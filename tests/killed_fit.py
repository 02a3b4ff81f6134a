"""A Keras fit killed at the start of an epoch, as a kill -9 would stop it there: for the tests
that a component's epoch backups (stackgan/training/epoch_backup.py) resume such a run."""

from __future__ import annotations

import contextlib

import keras
import pytest


@contextlib.contextmanager
def killed_at_epoch(monkeypatch, epoch: int):
    """Inside the block, every fit that keeps epoch backups writes one after each epoch and is
    killed (KeyboardInterrupt) as `epoch` (0-based) begins; the block expects that kill."""
    from stackgan.training import epoch_backup

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, current, logs=None):
            if current == epoch:
                raise KeyboardInterrupt("killed")

    monkeypatch.setattr(epoch_backup, "MIN_BACKUP_INTERVAL_S", 0.0)  # a backup every epoch
    with_backup = epoch_backup.EpochBackup.callbacks
    with monkeypatch.context() as patch:
        patch.setattr(
            epoch_backup.EpochBackup, "callbacks", lambda self, *a: [*with_backup(self, *a), Kill()]
        )
        with pytest.raises(KeyboardInterrupt):
            yield

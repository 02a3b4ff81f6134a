"""The project's SavedModels, written and loaded once: the generator export (serving/generator.py
and the text encoder composed into it, serving/export.py), the CUB classifier
(evaluation/classifier.py) and the text encoder (text/export.py).

A path may be the SavedModel itself, a TFX Model artifact (its `Format-Serving` folder) or a
Pusher's serving folder (its newest numbered version). The loaded model must carry the
signatures its reader calls; every failure names the path and what was expected there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import keras
import tensorflow as tf


def export_archive(*resources) -> keras.export.ExportArchive:
    """A Keras ExportArchive tracking `resources`, for endpoints still to be added.

    An endpoint carries every variable it reads (`ExportArchive.add_endpoint`), so the Keras
    models it calls need not be tracked, and are not: a tracked model puts its whole layer tree
    into the SavedModel's object graph, which the writer walks layer by layer and the loader
    restores. The demo's MobileNetV2 classifier writes in 4.7 s untracked against 11.7 s
    tracked and loads in 1.8 s against 2.9, its outputs the same bit for bit
    (bench/bench_export_tracking.py, AMD EPYC). Track only what the endpoints use that is not
    a variable: lookup tables, a loaded SavedModel composed into the export (serving/export.py's
    text encoder)."""
    archive = keras.export.ExportArchive()
    for resource in resources:
        archive.track(resource)
    return archive


def resolve_saved_model_dir(path: str | os.PathLike) -> str:
    """`path` itself, its `Format-Serving`, or its newest numbered version holding a SavedModel."""
    path = os.fspath(path)
    if tf.saved_model.contains_saved_model(path):
        return path
    serving = os.path.join(path, "Format-Serving")
    if tf.saved_model.contains_saved_model(serving):
        return serving
    if tf.io.gfile.isdir(path):
        versions = sorted(
            (
                int(name.rstrip("/"))
                for name in tf.io.gfile.listdir(path)
                if name.rstrip("/").isdigit()
            ),
            reverse=True,
        )
        for version in versions:
            candidate = os.path.join(path, str(version))
            if tf.saved_model.contains_saved_model(candidate):
                return candidate
    raise FileNotFoundError(
        f"{path}: no SavedModel there, in its Format-Serving, or in a numbered version"
    )


def load_saved_model(path: str | os.PathLike, what: str, signatures: Iterable[str] = ()):
    """-> (the SavedModel's folder, the loaded object) for a `what` ("text encoder", ...) that
    must carry `signatures`."""
    folder = resolve_saved_model_dir(path)
    try:
        loaded = tf.saved_model.load(folder)
    except (OSError, tf.errors.OpError) as error:  # a half-copied or corrupt export
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"{folder}: cannot load this {what} SavedModel (a partial copy? copy the whole"
            f" folder, variables/ included): {first}"
        ) from error
    missing = sorted(set(signatures) - set(loaded.signatures))
    if missing:
        raise ValueError(
            f"{folder}: not a {what} SavedModel: it lacks the signatures {missing}"
            f" (it has {sorted(loaded.signatures)})"
        )
    return folder, loaded

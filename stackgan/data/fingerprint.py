"""Fingerprints of data.

`dataset_fingerprint`: a cheap one of a dataset on a local disk, every file's path, size and
mtime. TFX caches a component on its parameters and inputs; the data root is just a path, so
without it a dataset replaced under the same path would be served from the cache. Stat calls
only: about 0.1 s for the 24k files of CUB + captions.

`content_fingerprint`: one of files' bytes, wherever they are: the trainers key their
checkpoints with it, so the same Examples under another artifact URI resume the same run.
"""

from __future__ import annotations

import hashlib
import os


def dataset_fingerprint(root: str) -> str:
    """sha256 over (relative path, size, mtime_ns) of every file below `root`, or "" when
    `root` is not a local directory (remote data is fingerprinted by its own orchestrator)."""
    if not os.path.isdir(root):
        return ""
    digest = hashlib.sha256()
    count = 0
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            st = os.stat(path)
            rel = os.path.relpath(path, root)
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            count += 1
    return f"{count}-files-sha256:{digest.hexdigest()}"


def content_fingerprint(paths: list[str]) -> str:
    """sha256 over the bytes of the files at `paths` (local or remote, through tf.io.gfile),
    each with its base name, in name order: the same files under another folder (another
    artifact URI) give the same fingerprint, a changed byte another. The trainers key their
    checkpoints with it (stackgan/training/trainer_job.py)."""
    import tensorflow as tf

    digest = hashlib.sha256()
    for path in sorted(paths, key=os.path.basename):
        digest.update(f"{os.path.basename(path)}\0".encode())
        with tf.io.gfile.GFile(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
        digest.update(b"\0")
    return f"{len(paths)}-files-sha256:{digest.hexdigest()}"

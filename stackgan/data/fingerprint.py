"""A cheap fingerprint of a dataset on a local disk: every file's path, size and mtime.

TFX caches a component on its parameters and inputs; the data root is just a path, so without
this a dataset replaced under the same path would be served from the cache. Stat calls only:
about 0.1 s for the 24k files of CUB + captions.
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

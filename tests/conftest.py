"""Fixtures shared by the whole suite. TensorFlow is imported at most once per worker process
(pytest -n 2), and expensive inputs (the synthetic dataset) are made once per session."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cub_sample_root() -> Path:
    """../shared/cub-sample: 101 real CUB images with captions (no embeddings)."""
    root = Path(os.environ.get("STACKGAN_CUB_SAMPLE", REPO_ROOT.parent / "shared" / "cub-sample"))
    if not (root / "CUB_200_2011").is_dir():
        pytest.fail(f"the real CUB sample is expected at {root} (set STACKGAN_CUB_SAMPLE)")
    return root


@pytest.fixture(scope="session")
def tiny_config():
    from stackgan import config

    return config.tiny()


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory, tiny_config) -> Path:
    """A tiny synthetic CUB-format dataset (config.tiny().synth), written once per session.
    Read-only for tests: copy it before changing anything."""
    from stackgan.data import synth

    root = tmp_path_factory.mktemp("synth") / "data"
    synth.write_dataset(root, tiny_config.synth)
    return root


def pytest_collection_modifyitems(config, items):
    """Modules with the most `slow` tests first, each module's tests kept together in order.

    `scripts/test.sh` runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`: each test
    file is one unit of work (its module-scoped fixtures, such as the whole-DAG run that
    test_pipeline_run.py shares, are built once, on one worker), handed to whichever worker is
    free, in this order. Longest first is what keeps the two workers busy to the end: with the
    long files last, one worker sat idle for minutes while the other ran them
    (docs/EXPERIMENTS.md, "Test suite timings"). A sorted() of the modules by their count of slow items (stable: ties keep
    collection order) is a cheap proxy for their length."""
    slow_in_module = collections.Counter()
    for item in items:
        slow_in_module[item.path] += item.get_closest_marker("slow") is not None
    rank = {m: i for i, m in enumerate(sorted(slow_in_module, key=lambda m: -slow_in_module[m]))}
    items.sort(key=lambda item: rank[item.path])

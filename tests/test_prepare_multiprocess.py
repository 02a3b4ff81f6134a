"""`stackgan prepare` with Beam options after `--`: two DirectRunner worker processes give the
same Examples as the in-process run, and the report shows that two processes other than this one
wrote them. Slow only because each Beam worker process needs ~5 CPU
seconds to import Beam's SDK harness (the workers never import TensorFlow)."""

from __future__ import annotations

import json
import os
import socket

import pytest

from stackgan import cli
from stackgan.components.cub_example_gen import generate
from stackgan.tfrecords import example_codec


def _records(out, split):
    import tensorflow as tf

    files = sorted(str(p) for p in (out / f"Split-{split}").glob("*.gz"))
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    return sorted(example_codec.decode(serialized), key=lambda r: r["image_id"])


@pytest.mark.slow
def test_two_worker_processes_write_the_same_examples(synth_root, tmp_path, capsys):
    common = [
        "prepare",
        "--data",
        str(synth_root),
        "--profile",
        "tiny",
        "--set",
        "data.num_shards=2",
    ]
    assert cli.main([*common, "--out", str(tmp_path / "one"), "--", "--runner=FnApiRunner"]) == 0
    two_workers = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert cli.main([*common, "--out", str(tmp_path / "two"), "--", *two_workers]) == 0
    printed = capsys.readouterr().out
    assert "train: 12 written of 12 present (12 listed); skipped: none" in printed
    assert "test: 4 written of 4 present (4 listed)" in printed
    for split in ("train", "test"):
        one, two = _records(tmp_path / "one", split), _records(tmp_path / "two", split)
        assert len(one) == {"train": 12, "test": 4}[split]
        for a, b in zip(one, two, strict=True):
            assert a.keys() == b.keys()
            assert all((a[k] == b[k]).all() if k == "embedding" else a[k] == b[k] for k in a)
    here = f"{socket.gethostname()}:{os.getpid()}"
    in_process = json.loads((tmp_path / "one" / generate.REPORT_NAME).read_text())
    assert in_process["workers"] == [here]
    report = json.loads((tmp_path / "two" / generate.REPORT_NAME).read_text())
    assert report["status"] == "complete" and report["has_embeddings"]
    # 4 shard tasks split in two bundles, which the runner hands to its two workers in turn
    assert len(report["workers"]) == 2 and here not in report["workers"], report["workers"]
    assert {w.rsplit(":", 1)[0] for w in report["workers"]} == {socket.gethostname()}

"""Replays trainer stages from copies of their checkpoints, in a process of its own, for the kill
test (tests/test_pipeline_run.py): `python tests/stage_replay.py JOBS.json`, where JOBS.json is
a list of {"config": Config JSON, "stage", "examples" (an Examples directory), "checkpoints"
(left untouched: copied first), "scratch", "out" (.npz of the trained generator's weights),
"stage1_model_path" (Stage-II)}. Each stage is restored from the latest checkpoint and trained to
the end without interruption, as the trainer component does (stackgan.training.runner).

Run it with TF_NUM_INTRAOP_THREADS=1, as the runs it is compared with: a kernel's reductions
may otherwise be split across a number of threads that depends on scheduling.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys

import numpy as np


def replay(job: dict) -> None:
    from stackgan.components.stage1_trainer.component import READS as STAGE1_READS
    from stackgan.components.stage2_trainer.component import READS as STAGE2_READS
    from stackgan.config import Config
    from stackgan.training import runner

    reads = STAGE1_READS if job["stage"] == 1 else STAGE2_READS
    checkpoints = os.path.join(job["scratch"], "checkpoints")
    shutil.copytree(job["checkpoints"], checkpoints)  # train_stage saves into its directory
    run = runner.train_stage(
        reads.restrict(Config.from_json(job["config"])),
        job["stage"],
        os.path.join(job["examples"], "Split-train", "*"),
        os.path.join(job["scratch"], "run"),
        checkpoint_dir=checkpoints,
        sample_pattern=os.path.join(job["examples"], "Split-test", "*"),
        stage1_model_path=job.get("stage1_model_path"),
        stream=io.StringIO(),
    )
    weights = run.gan.generator.get_weights()
    np.savez(job["out"], *weights, resumed_from_step=run.resumed_from_step)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        for job in json.load(f):
            replay(job)

"""Seconds to export the pushed generator (`stackgan.serving.export.export_generator`), and its
size: the networks traced once and called by every signature (main since c483496) against
traced inside each signature (the form before), in alternating rounds on the same machine.

Both forms export the same untrained Stage-I and Stage-II of the profile, and the bench checks
that their `seeded` signatures give the same images for the same seed before it reports any time.
With a Quickstart's text encoder (`--text-encoder`) the export has the two text signatures too,
as the Stage2Trainer's has:

    .venv/bin/python bench/bench_export.py --profile demo --text-encoder \\
        stackgan-work/tfx/pipeline_root/TextEncoderTrainer/model/5/Format-Serving
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

# this folder is on sys.path when a bench runs as a script
from bench_train_step import _hardware


def _inside_each_signature(init):
    """`_TextToImage.__init__` whose signatures call the networks' Python function itself, so
    each traces them anew: the export before c483496."""

    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._images = self._images_of

    return patched


def _size_mb(folder: str) -> float:
    files = (os.path.join(d, f) for d, _, names in os.walk(folder) for f in names)
    return sum(os.path.getsize(f) for f in files) / 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="demo")
    p.add_argument("--text-encoder", help="a text encoder SavedModel to export with")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="exports per form, alternating (the first pays TF's warm-up)",
    )
    args = p.parse_args()

    import numpy as np
    import tensorflow as tf

    from stackgan.config import PROFILES
    from stackgan.models import build_stage1_generator, build_stage2_generator
    from stackgan.serving import export
    from stackgan.serving.generator import load_generator

    cfg = PROFILES[args.profile]()
    stage1 = build_stage1_generator(cfg.model, cfg.data.low_res)
    stage2 = build_stage2_generator(cfg.model, cfg.data.low_res)
    encoder = export.SavedTextEncoder(args.text_encoder) if args.text_encoder else None
    traced_once = export._TextToImage.__init__
    forms = {
        "traced once (now)": traced_once,
        "inside each signature": _inside_each_signature(traced_once),
    }
    times = {name: [] for name in forms}
    sizes = {}
    print(f"hardware: {_hardware()}; load average {os.getloadavg()[0]:.1f}")
    print(f"profile {args.profile}, text signatures: {'yes' if encoder else 'no'}")
    with tempfile.TemporaryDirectory() as scratch:
        images = {}
        try:
            for round_ in range(args.rounds):
                for name in forms:
                    export._TextToImage.__init__ = forms[name]
                    out = os.path.join(scratch, f"{round_}-{len(images)}-{name[:6].strip()}")
                    start = time.perf_counter()
                    export.export_generator(out, cfg.model, stage1, stage2, text_encoder=encoder)
                    times[name].append(time.perf_counter() - start)
                    sizes[name] = _size_mb(out)
                    embedding = np.ones([2, cfg.model.embedding_dim], np.float32)
                    images[name] = load_generator(out).generate(embedding, seed=3)
        finally:  # the module's own export again, whatever happened
            export._TextToImage.__init__ = traced_once
        first, second = images.values()
        for key in first:
            if not np.array_equal(first[key], second[key]):
                raise SystemExit(f"the two forms' {key} differ: no time is reported")
    print("| form | export s (each round) | median | SavedModel MB |")
    print("| --- | --- | ---: | ---: |")
    for name, seconds in times.items():
        each = " / ".join(f"{s:.2f}" for s in seconds)
        print(f"| {name} | {each} | {statistics.median(seconds):.2f} | {sizes[name]:.2f} |")
    ratio = statistics.median(times["inside each signature"]) / statistics.median(
        times["traced once (now)"]
    )
    print(f"traced once is {ratio:.2f}x as fast (medians; tf {tf.__version__})")


if __name__ == "__main__":
    main()

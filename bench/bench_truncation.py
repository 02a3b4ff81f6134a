"""Sampling with less noise (`model.truncation`) on a trained Stage-I generator.

Takes a finished `stackgan run` work dir and scores its Stage-I generator's 64 px images, with
the Evaluator's own code and that run's classifier, once per truncation psi: the noise z and the
Conditioning Augmentation's eps drawn from N(0, psi^2) instead of N(0, 1). Nothing is trained,
so the rows differ only in how the same generator is sampled:

- class top-1 against the caption's class (chance and the real images' top-1 beside it) and
  colour agreement gain, on the training species' captions and on the unseen species';
- FID against the real images of that split (the classifier's features): less noise gives less
  varied images, which FID counts against it.

    .venv/bin/stackgan run --work-dir stackgan-work          # the Quickstart, first
    .venv/bin/python bench/bench_truncation.py --work-dir stackgan-work --truncations 1 0.5 0

A sample sheet per truncation (the training species' captions) goes to --out.
"""

from __future__ import annotations

import argparse
import os

from bench_stage1_variants import score
from work_dir_inputs import variant_bench_setup


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", required=True, help="a finished `stackgan run` work dir")
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--set", action="append", default=[], help="config override")
    parser.add_argument("--truncations", type=float, nargs="+", default=[1.0, 0.5, 0.0])
    parser.add_argument("--out", default="truncation_sheets", help="sample sheets go here")
    args = parser.parse_args()
    bad = [t for t in args.truncations if not 0.0 <= t <= 1.0]
    if bad:
        parser.error(f"--truncations must lie in [0, 1], got {bad}")
    inputs, base, classifier = variant_bench_setup(args)

    import keras

    from stackgan.visualize.sample_sheet import render_sheet

    generator = keras.saving.load_model(inputs["stage1"])
    print(f"Stage-I generator: {inputs['stage1']}")
    print(
        "| truncation | train captions: top-1 (chance, real) | colour gain | FID"
        " | unseen species: top-1 (chance, real) | colour gain | FID |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for truncation in args.truncations:
        cfg = base.with_overrides([f"model.truncation={truncation}"])
        cells = []
        for split in ("train", "test"):
            result = score(generator, cfg, inputs["examples"], split, classifier)
            g = result.generated
            cells.append(
                f"{g.top1_accuracy:.3f} ({result.chance:.3f}, {result.real.top1_accuracy:.3f})"
                f" | {g.colour.gain:+.3f} | {g.fid:.1f}"
            )
            if split == "train":
                render_sheet(result.sheet_images, result.sheet_captions, 4).save(
                    os.path.join(args.out, f"truncation_{truncation:g}.png")
                )
        print(f"| {truncation:g} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()

"""Stage-II variants against the paper's Stage-II, on the same data, Stage-I and classifier.

Takes a finished `stackgan run` work dir (its Examples, trained Stage-I generator and CUB
classifier), trains Stage-II afresh for each variant with the same steps and seed, exports it
as the pipeline does (the serving SavedModel) and scores it with the Evaluator's own code:

- class top-1 of the 256 px images against the caption's class (real test images: ceiling);
- consistency: mean |downscaled Stage-II - Stage-I| in 0-255 levels (stackgan/evaluation/
  refinement.py; lower keeps Stage-I's colours and layout);
- detail gain and edge sharpness gain over bicubic-upsampled Stage-I (1 = nothing added;
  stackgan/evaluation/refinement.py);
- FID against the real test images (the classifier's features), and seconds per step.

    .venv/bin/stackgan run --work-dir stackgan-work          # the Quickstart, first
    .venv/bin/python bench/bench_stage2_variants.py --work-dir stackgan-work

A comparison sheet (real | Stage-I | Stage-II) per variant goes to --out.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

# this folder is on sys.path when a bench runs as a script
from work_dir_inputs import add_variant_arguments, checked_variants, variant_bench_setup

from stackgan import config

# name -> config overrides on top of the paper's Stage-II (stage2_output=image, no extra terms)
VARIANTS = {
    "paper": [],
    "paper + R1": ["train.r1_gamma=1"],
    "residual": ["model.stage2_output=residual"],
    "residual + L1 consistency": [
        "model.stage2_output=residual",
        "train.stage2_consistency_weight=10",
    ],
    "residual + colour moments": [
        "model.stage2_output=residual",
        "train.stage2_consistency=color_moments",
        "train.stage2_consistency_weight=10",
    ],
    "residual + L1 x30 + lazy R1 (previous demo)": [
        "model.stage2_output=residual",
        "train.stage2_consistency_weight=30",
        "train.r1_gamma=1",
        "train.r1_every=4",
    ],
    "residual + L1 x10 + lazy R1": [
        "model.stage2_output=residual",
        "train.stage2_consistency_weight=10",
        "train.r1_gamma=1",
        "train.r1_every=4",
    ],
    "previous demo + DiffAugment": [
        "model.stage2_output=residual",
        "train.stage2_consistency_weight=30",
        "train.r1_gamma=1",
        "train.r1_every=4",
        "train.d_augment=translation_cutout",
    ],
    "previous demo + reconstruction x1": [
        "model.stage2_output=residual",
        "train.stage2_consistency_weight=30",
        "train.r1_gamma=1",
        "train.r1_every=4",
        "train.stage2_reconstruction_weight=1",
    ],
    "previous demo + reconstruction x10": [
        "model.stage2_output=residual",
        "train.stage2_consistency_weight=30",
        "train.r1_gamma=1",
        "train.r1_every=4",
        "train.stage2_reconstruction_weight=10",
    ],
    "previous demo without precise BN": [
        "model.stage2_output=residual",
        "train.stage2_consistency_weight=30",
        "train.r1_gamma=1",
        "train.r1_every=4",
        "train.precise_bn_batches=0",
    ],
}
PAPER_STAGE2 = [
    "model.stage2_output=image",
    "train.stage2_batch_size=0",
    "train.stage2_learning_rate=0",
    "train.stage2_consistency_weight=0",
    "train.stage2_reconstruction_weight=0",
    "train.stage2_reconstruction_blur=0",
    "train.r1_gamma=0",
    "train.r1_every=1",
]


def profile_stage2(cfg) -> list[str]:
    """The overrides that give back `cfg`'s own Stage-II on top of PAPER_STAGE2: its values of
    the fields PAPER_STAGE2 resets, and the width of its "lowres_residual" path."""
    keys = [override.split("=")[0] for override in PAPER_STAGE2]
    overrides = []
    for key in [*keys, "model.stage2_lowres_residual_dim"]:
        section, field = key.split(".")
        overrides.append(f"{key}={getattr(getattr(cfg, section), field)}")
    return overrides


# the demo profile's Stage-II, read from the profile so the two cannot drift apart
VARIANTS["lowres residual + SR x200 + lazy R1 (demo)"] = profile_stage2(config.demo())


def run_variant(name, overrides, base, inputs, steps, out_dir, classifier):
    import keras

    from stackgan.evaluation import evaluator
    from stackgan.serving.export import export_generator
    from stackgan.serving.generator import load_generator
    from stackgan.tfrecords.input_pipeline import make_eval_dataset
    from stackgan.training.runner import train_stage
    from stackgan.visualize.sample_sheet import render_comparison

    cfg = base.with_overrides([*PAPER_STAGE2, *overrides, f"train.stage2_max_steps={steps}"])
    keras.utils.set_random_seed(cfg.train.seed)
    examples = inputs["examples"]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = train_stage(
            cfg,
            2,
            os.path.join(examples, "Split-train", "*"),
            os.path.join(tmp, "run"),
            sample_pattern=os.path.join(examples, "Split-test", "*"),
            stage1_model_path=inputs["stage1"],
            stream=open(os.devnull, "w"),  # noqa: SIM115 (closed with the process)
        )
        seconds = time.perf_counter() - start
        export = export_generator(
            os.path.join(tmp, "export"), cfg.model, run.gan.stage1_generator, run.gan.generator
        )
        split = f"Split-{cfg.eval.captions_split}"  # as the Evaluator: the profile's split
        batches = make_eval_dataset(os.path.join(examples, split, "*"), cfg, cfg.eval.batch_size)
        result = evaluator.evaluate(
            batches.as_numpy_iterator(),
            load_generator(export).generate,
            classifier,
            cfg.eval,
            classifier.info["class_ids"],
        )
    if result.comparison is not None:
        c = result.comparison
        slug = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
        render_comparison(c.real, c.stage1, c.stage2, c.captions).save(
            os.path.join(out_dir, f"{slug}.png")
        )
    return {
        "variant": name,
        "s/step": seconds / run.total_steps,
        "consistency": result.refinement.consistency_mad,
        "detail": result.refinement.detail_gain,
        "edges": result.refinement.edge_sharpness_gain,
        "top1": result.generated.top1_accuracy,
        "real_top1": result.real.top1_accuracy,
        "chance": result.chance,
        "fid": result.generated.fid,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", required=True, help="a finished `stackgan run` work dir")
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--set", action="append", default=[], help="config override")
    parser.add_argument("--steps", type=int, default=200, help="Stage-II steps per variant")
    add_variant_arguments(parser, VARIANTS)
    parser.add_argument("--out", default="stage2_variants", help="comparison sheets go here")
    args = parser.parse_args()
    inputs, base, classifier = variant_bench_setup(args)
    variants = checked_variants(parser, args, VARIANTS, base, PAPER_STAGE2)
    print(f"inputs: {inputs}; profile {args.profile}, {args.steps} Stage-II steps per variant")
    header = (
        "| variant | s/step | consistency (levels) | detail gain | edge sharpness gain"
        " | top-1 (chance, real) | FID |"
    )
    print(header)
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, overrides in variants:
        row = run_variant(name, overrides, base, inputs, args.steps, args.out, classifier)
        print(
            f"| {row['variant']} | {row['s/step']:.3f} | {row['consistency']:.1f} |"
            f" {row['detail']:.2f} | {row['edges']:.2f} | {row['top1']:.3f} ({row['chance']:.3f},"
            f" {row['real_top1']:.3f}) | {row['fid']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

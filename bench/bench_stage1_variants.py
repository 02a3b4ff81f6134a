"""Stage-I variants against the paper's Stage-I objective, on the same data and classifier.

Takes a finished `stackgan run` work dir (its Examples and CUB classifier), trains Stage-I
afresh for each variant with the same steps and seed, and scores its 64 px images with the
Evaluator's own code, on the captions of both splits:

- class top-1 against the caption's class, on the training species' captions and on the
  unseen (test) species' captions, with chance and the real images' top-1 beside each;
- colour agreement gain: the caption's named colours found in the image's centre, minus the
  same against other images' captions (stackgan/evaluation/colour_agreement.py; 0 = the
  caption is ignored);
- FID against the real images of that split (the classifier's features), and seconds per step;
- edges vs real: the gradient energy (stackgan/evaluation/refinement.py) of the 64 px images
  of one caption of each of the first 200 training images over that of those real 64 px
  images (1 = edges as sharp as the real birds'; blur lowers it, noise and texture raise it);
- frame vs real: the same images' frame contrast (each side's outer 2 pixels against the 2
  inside them, refinement.frame_contrast) over the real ones' (1 = no frame the real images
  lack; a generator's zero padding draws one).

    .venv/bin/stackgan run --work-dir stackgan-work          # the Quickstart, first
    .venv/bin/python bench/bench_stage1_variants.py --work-dir stackgan-work

Images are sampled as the profile's served model samples them (`model.truncation`; the
demo's is 0.5, `--set model.truncation=1` samples as the paper does). GAN runs vary from seed
to seed (--seeds 0 1 2 averages over them). A sample sheet per variant and seed (Stage-I's
images of the test captions) goes to --out. Any other variant is one `--variant` away; its
overrides come after `--steps`, so it may set its own length or batch:

    .venv/bin/python bench/bench_stage1_variants.py --work-dir stackgan-work --variants \
        --variant "batch 8, 1.5x steps=train.batch_size=8,train.max_steps=3600"
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

# this folder is on sys.path when a bench runs as a script
from work_dir_inputs import add_variant_arguments, checked_variants, variant_bench_setup

# name -> config overrides on top of the profile with the paper's Stage-I objective
VARIANTS = {
    "paper objective": [],
    "DiffAugment": ["train.d_augment=translation_cutout"],
    "R1": ["train.r1_gamma=1", "train.r1_every=4"],
    "DiffAugment + R1": [
        "train.d_augment=translation_cutout",
        "train.r1_gamma=1",
        "train.r1_every=4",
    ],
}
PAPER_STAGE1 = ["train.d_augment=none", "train.r1_gamma=0", "train.r1_every=1"]


def stage1_generate_fn(generator, model_cfg):
    """The Evaluator's `generate_fn` over a Stage-I generator alone: {"image_64": uint8}, with
    the served model's sampling (noise scaled by `model.truncation`)."""
    import numpy as np

    from stackgan.tfrecords.pixels import to_uint8

    def generate(embeddings, seed):
        rng = np.random.default_rng(seed)
        n = len(embeddings)
        scale = model_cfg.truncation
        noise = scale * rng.standard_normal((n, model_cfg.z_dim)).astype(np.float32)
        ca_noise = scale * rng.standard_normal((n, model_cfg.ca_dim)).astype(np.float32)
        image, _, _ = generator([embeddings, noise, ca_noise], training=False)
        return {"image_64": np.asarray(to_uint8(image))}

    return generate


def score(generator, cfg, examples, split, classifier):
    from stackgan.evaluation import evaluator
    from stackgan.tfrecords.input_pipeline import make_eval_dataset

    eval_cfg = dataclasses.replace(cfg.eval, captions_split=split)
    batches = make_eval_dataset(
        os.path.join(examples, f"Split-{split}", "*"), cfg, eval_cfg.batch_size
    )
    return evaluator.evaluate(
        batches.as_numpy_iterator(),
        stage1_generate_fn(generator, cfg.model),
        classifier,
        eval_cfg,
        classifier.info["class_ids"],
    )


def against_real(generator, cfg, examples, count=200):
    """(edges, frame) of generated 64 px images over the real ones' of the same captions:
    gradient energy and frame contrast."""
    import numpy as np

    from stackgan.evaluation.refinement import frame_contrast, gradient_energy
    from stackgan.tfrecords import batch_keys as keys
    from stackgan.tfrecords.input_pipeline import make_eval_dataset
    from stackgan.tfrecords.pixels import to_uint8

    per_image = cfg.data.captions_per_image  # the eval dataset lists an image's captions together
    pattern = os.path.join(examples, "Split-train", "*")
    batch = next(iter(make_eval_dataset(pattern, cfg, count * per_image)))
    generate = stage1_generate_fn(generator, cfg.model)
    # one caption of each of `count` images
    fake = generate(np.asarray(batch[keys.EMBEDDING])[::per_image], cfg.train.seed)["image_64"]
    real = np.asarray(to_uint8(batch[keys.IMAGE_LOW]))[::per_image]
    return (
        gradient_energy(fake) / gradient_energy(real),
        frame_contrast(fake) / frame_contrast(real),
    )


def run_variant(name, overrides, base, examples, steps, seed, out_dir, classifier):
    import keras

    from stackgan.training.runner import train_stage
    from stackgan.visualize.sample_sheet import render_sheet

    # the variant's own overrides last: it may set its own length (train.max_steps)
    cfg = base.with_overrides(
        [*PAPER_STAGE1, f"train.max_steps={steps}", f"train.seed={seed}", *overrides]
    )
    keras.utils.set_random_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = train_stage(
            cfg,
            1,
            os.path.join(examples, "Split-train", "*"),
            os.path.join(tmp, "run"),
            sample_pattern=os.path.join(examples, "Split-test", "*"),
            stream=open(os.devnull, "w"),  # noqa: SIM115 (closed with the process)
        )
        seconds = time.perf_counter() - start
    edges, frame = against_real(run.gan.generator, cfg, examples)
    row = {
        "variant": name,
        "seed": seed,
        "s/step": seconds / run.total_steps,
        "edges": edges,
        "frame": frame,
    }
    for split in ("train", "test"):
        result = score(run.gan.generator, cfg, examples, split, classifier)
        row[split] = (
            result.generated.top1_accuracy,
            result.chance,
            result.real.top1_accuracy,
            result.generated.fid,
            result.generated.colour.gain,
        )
        if split == "test":
            slug = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
            render_sheet(result.sheet_images, result.sheet_captions, 4).save(
                os.path.join(out_dir, f"{slug}_seed{seed}.png")
            )
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", required=True, help="a finished `stackgan run` work dir")
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--set", action="append", default=[], help="config override")
    parser.add_argument("--steps", type=int, default=1500, help="Stage-I steps per variant")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    add_variant_arguments(parser, VARIANTS)
    parser.add_argument("--out", default="stage1_variants", help="sample sheets go here")
    args = parser.parse_args()
    inputs, base, classifier = variant_bench_setup(args)
    print(f"examples: {inputs['examples']}; profile {args.profile}, {args.steps} Stage-I steps")
    print(
        "| variant | seed | s/step | train captions: top-1 (chance, real) | colour gain | FID"
        " | edges vs real | frame vs real | unseen species: top-1 (chance, real) | colour gain"
        " | FID |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    variants = checked_variants(parser, args, VARIANTS, base, PAPER_STAGE1)
    for name, overrides in variants:
        for seed in args.seeds:
            row = run_variant(
                name,
                overrides,
                base,
                inputs["examples"],
                args.steps,
                seed,
                args.out,
                classifier,
            )
            cells = [
                f"{t:.3f} ({c:.3f}, {r:.3f}) | {g:+.3f} | {f:.1f}"
                for t, c, r, f, g in (row["train"], row["test"])
            ]
            print(
                f"| {name} | {seed} | {row['s/step']:.3f} | {cells[0]} | {row['edges']:.2f} |"
                f" {row['frame']:.2f} | {cells[1]} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

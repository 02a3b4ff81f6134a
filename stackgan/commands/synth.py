"""`stackgan synth OUT_DIR`: write the procedural CUB-format dataset (see stackgan.data.synth)."""

from __future__ import annotations

import argparse
import dataclasses
import time
import typing

from stackgan import config
from stackgan.errors import UserError


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "synth",
        help="write a synthetic dataset in the CUB-200-2011 + StackGAN birds/ layout",
        description=(
            "Write procedural birds (one species per class) with bounding boxes, 10 captions"
            " and 10 x 1024 caption embeddings per image, in exactly the on-disk layout of"
            " CUB_200_2011/ and StackGAN's birds/. Sizes default to the profile's SynthConfig."
        ),
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to create (must be empty)")
    parser.add_argument(
        "--profile",
        default="demo",
        choices=sorted(config.PROFILES),
        help="config profile whose SynthConfig gives the defaults (default: demo)",
    )
    parser.add_argument("--classes", type=int, help="number of species/classes")
    parser.add_argument("--images-per-class", type=int, help="images of each class")
    parser.add_argument("--seed", type=int, help="random seed (same seed, same bytes)")
    parser.add_argument(
        "--backgrounds",
        choices=typing.get_args(typing.get_type_hints(config.SynthConfig)["backgrounds"]),
        help="scenes (sky, grass, branches, foliage, water) or a plain sky gradient",
    )
    parser.add_argument(
        "--facing",
        choices=typing.get_args(typing.get_type_hints(config.SynthConfig)["facing"]),
        help="birds facing left or right at random (both), or all to the right",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT_DIR if it is not empty (only once the new dataset is complete)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from stackgan.data import synth

    overrides = {
        "classes": args.classes,
        "images_per_class": args.images_per_class,
        "seed": args.seed,
        "backgrounds": args.backgrounds,
        "facing": args.facing,
    }
    cfg = dataclasses.replace(
        config.get_profile(args.profile).synth,
        **{k: v for k, v in overrides.items() if v is not None},
    )
    try:  # before the "writing" line: a refused size writes nothing, so it says nothing
        synth.validate(cfg)
    except ValueError as e:
        raise UserError(str(e)) from e
    print(
        f"writing {cfg.classes} classes x {cfg.images_per_class} images (seed {cfg.seed},"
        f" {cfg.backgrounds} backgrounds, facing {cfg.facing})"
        f" to {args.out_dir}",
        flush=True,
    )
    start = time.perf_counter()
    try:
        summary = synth.write_dataset(
            args.out_dir,
            cfg,
            overwrite=args.overwrite,
            progress=lambda line: print(f"  {line}", flush=True),
        )
    except (FileExistsError, ValueError) as e:
        raise UserError(str(e)) from e
    except PermissionError as e:  # nothing is left: the staging folder is removed
        raise UserError(f"{args.out_dir}: cannot write there ({e})") from e
    print(summary.format())
    print(f"  took {time.perf_counter() - start:.1f} s")
    return 0

"""The artifacts of a finished `stackgan run` work dir that the variant benches start from."""

from __future__ import annotations

import argparse
import glob
import os


def latest(pattern: str) -> str:
    """The artifact folder matching `pattern` with the highest execution id."""
    found = sorted(glob.glob(pattern), key=lambda p: int(p.rstrip("/").split("/")[-1]))
    if not found:
        raise SystemExit(f"nothing matches {pattern}: run `stackgan run --work-dir` first")
    return found[-1]


def work_dir_inputs(work_dir: str) -> dict[str, str]:
    """{"examples": the Examples folder, "stage1": the Stage-I generator (.keras),
    "classifier": the CUB classifier SavedModel} of the latest run in `work_dir`."""
    root = os.path.join(work_dir, "tfx", "pipeline_root")
    embedded = glob.glob(os.path.join(root, "CaptionEmbedder", "examples", "*", ""))
    examples_root = "CaptionEmbedder" if embedded else "CubExampleGen"
    return {
        "examples": latest(os.path.join(root, examples_root, "examples", "*", "")),
        "stage1": os.path.join(
            latest(os.path.join(root, "Stage1Trainer", "model", "*", "")), "generator.keras"
        ),
        "classifier": os.path.join(
            latest(os.path.join(root, "ClassifierTrainer", "model", "*", "")), "Format-Serving"
        ),
    }


def variant_bench_setup(args):
    """What both variant benches do first: the work dir's artifacts, the profile with `--set`,
    the loaded classifier and the `--out` folder; prints the hardware.
    -> (inputs, base config, classifier)."""
    from bench_train_step import _hardware  # this folder is on sys.path when run as a script

    from stackgan.config import get_profile
    from stackgan.evaluation.classifier import load_classifier

    inputs = work_dir_inputs(args.work_dir)
    base = get_profile(args.profile).with_overrides(args.set)
    classifier = load_classifier(inputs["classifier"])
    os.makedirs(args.out, exist_ok=True)
    print(f"hardware: {_hardware()}")
    return inputs, base, classifier


def custom_variant(text: str) -> tuple[str, list[str]]:
    """ "name=a.b=1,c.d=2" -> ("name", ["a.b=1", "c.d=2"]); argparse reports the
    ArgumentTypeError in one line. `checked_variants` checks the overrides against the config
    before anything trains."""
    name, _, joined = text.partition("=")
    overrides = [o.strip() for o in joined.split(",") if o.strip()]
    if not name.strip() or not overrides:
        raise argparse.ArgumentTypeError(f"expected NAME=section.field=value,..., got {text!r}")
    return name.strip(), overrides


def add_variant_arguments(parser: argparse.ArgumentParser, variants: dict) -> None:
    """Both benches' `--variants` (named ones) and `--variant NAME=OVERRIDE,...` (any other)."""
    parser.add_argument("--variants", nargs="*", default=list(variants), choices=list(variants))
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        type=custom_variant,
        metavar="NAME=OVERRIDE,...",
        help="one more variant: its name, '=', and config overrides separated by commas",
    )


def checked_variants(parser, args, variants: dict, base, under: list[str]):
    """[(name, overrides)] of the named and the custom variants; a custom variant whose
    overrides do not make a valid config (on top of `under`) ends the bench now, in one line,
    not after an hour of training."""
    from stackgan.config_checks import ConfigError

    for name, overrides in args.variant:
        try:
            base.with_overrides([*under, *overrides])
        except ConfigError as error:
            parser.error(f"--variant {name}: {error}")
    return [(name, variants[name]) for name in args.variants] + args.variant

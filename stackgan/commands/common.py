"""Arguments and up-front checks shared by several sub-commands."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from stackgan import config as config_lib
from stackgan.errors import UserError

DATA_LAYOUT = "the folder that holds CUB_200_2011/ and birds/"


def add_config_arguments(parser: argparse.ArgumentParser, default_profile: str) -> None:
    parser.add_argument(
        "--profile",
        choices=sorted(config_lib.PROFILES),
        default=default_profile,
        help=f"named configuration (default {default_profile}); 'paper' is the paper's setting",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override one config field, e.g. --set train.max_steps=2000 (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> config_lib.Config:
    """The profile with the --set overrides, validated (ConfigError names a bad field)."""
    return config_lib.get_profile(args.profile).with_overrides(args.set)


def check_writable_dir(path: str, flag: str) -> None:
    """Creates `path` if needed and writes a scratch file there; UserError if that fails."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise UserError(
            f"{flag} {path}: cannot write there ({e.strerror or e}); choose a folder you can"
            " write to"
        ) from None


def check_data_root(data: str, cfg: config_lib.Config) -> None:
    """What can be known of a dataset root before anything runs: the folder, CUB_200_2011/ and
    birds/ with its captions, the index files and split lists (read, so that a malformed one
    is named now), and the embeddings pickles `text.source=pickle` asks for."""
    from stackgan.data import cub

    root = Path(data)
    if not root.is_dir():
        raise UserError(f"--data {data}: no such folder; pass {DATA_LAYOUT}")
    absent = [f"{name}/" for name in ("CUB_200_2011", "birds") if not (root / name).is_dir()]
    if absent:
        raise UserError(f"--data {data}: no {' and no '.join(absent)} in it; pass {DATA_LAYOUT}")
    dataset = cub.CubDataset(root, split=cfg.data.split, strict=cfg.data.strict)
    if not dataset.has_captions:
        raise UserError(
            f"--data {data}: no birds/text_c10/ (the 10 captions of each image) in it; add the"
            " captions of the StackGAN release"
        )
    pickles = [dataset.birds_dir / split / cub.EMBEDDINGS_FILE for split in cub.SPLITS]
    missing = [str(p) for p in pickles if not p.is_file()]
    if cfg.text.source == "pickle" and missing:
        raise UserError(
            f"--data {data}: text.source=pickle but {missing[0]} is missing; use --set"
            " text.source=train to train the text encoder on the captions instead"
        )


def check_classifier_weights(cfg: config_lib.Config) -> None:
    """A `classifier.weights_path` given on this machine names a file (else the classifier
    would fail only after the preprocessing, with a traceback)."""
    path = cfg.classifier.weights_path
    if path and "://" not in path and not os.path.isfile(path):
        raise UserError(
            f"classifier.weights_path={path}: no such file; pass the MobileNetV2 ImageNet"
            " weights file (.h5), or leave it empty for Keras' cache"
        )

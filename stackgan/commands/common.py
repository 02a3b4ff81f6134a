"""Arguments shared by several sub-commands."""

from __future__ import annotations

import argparse

from stackgan import config as config_lib


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
    return config_lib.get_profile(args.profile).with_overrides(args.set)

"""The `stackgan` command. Each sub-command lives in `stackgan/commands/<name>.py` and exposes
`add_parser(subparsers)` (which sets `func`) so this file only lists them."""

from __future__ import annotations

import argparse
import importlib
import sys

# module names under stackgan.commands, in the order `stackgan --help` lists them
COMMANDS = ("synth", "prepare", "run", "generate", "compile")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stackgan",
        description="StackGAN (text -> bird images) on CUB-200-2011 as a TFX pipeline.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"stackgan.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

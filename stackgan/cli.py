"""The `stackgan` command. Each sub-command lives in `stackgan/commands/<name>.py` and exposes
`add_parser(subparsers)` (which sets `func`) so this file only lists them.

A `stackgan.errors.UserError` (a bad `--set`, a missing folder, malformed data, a full disk)
ends the command with its message on one line of stderr and exit code 2; `--debug` shows the
traceback instead. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from stackgan.errors import UserError, disk_full

# module names under stackgan.commands, in the order `stackgan --help` lists them
COMMANDS = ("synth", "prepare", "run", "generate", "compile")
USER_ERROR_EXIT = 2  # as argparse's own usage errors
_DEBUG_HELP = "on an error, show the full traceback instead of one line"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stackgan",
        description="StackGAN (text -> bird images) on CUB-200-2011 as a TFX pipeline.",
    )
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"stackgan.commands.{name}").add_parser(subparsers)
    # also accepted after the command (`stackgan run --debug`); SUPPRESS keeps a global
    # --debug from being reset by the sub-command's default
    for command in subparsers.choices.values():
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as error:
        if args.debug:
            raise
        if isinstance(error, UserError):
            message = str(error)
        elif full := disk_full(error):
            # anywhere in a long run (a checkpoint, an export, TFX's metadata): not a bug
            message = (
                f"the disk is full: {full}. Free space there and run the same command again"
                " (trainers resume from their last checkpoint)"
            )
        else:
            raise
        message = " ".join(line.strip() for line in message.splitlines() if line.strip())
        print(f"stackgan {args.command}: error: {message}", file=sys.stderr)
        return USER_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())

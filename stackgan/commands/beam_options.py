"""Beam pipeline options from the command line, checked before any Beam job starts.

Beam drops an option it does not know with a warning in the logs and goes on, so a typo such as
`--direct_num_worker=2` would silently run with the default; a bad value or runner name would
fail minutes later, inside the DAG, with a traceback. So the options are parsed here by Beam's
own parser of every registered `PipelineOptions` subclass: a value Beam would refuse and a runner
it lacks are named always, an option it does not know for the runners that run in this process.
A remote or portable runner (Dataflow, Flink, Spark, a job server) may take options that its
service defines and the Python SDK does not, so for those unknown options pass on, named in a
note (where a typo shows).
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence

from stackgan.errors import UserError

# Runners that run the pipeline in this Python process: only the SDK's options mean anything.
IN_PROCESS_RUNNERS = frozenset(
    {
        "DirectRunner",
        "BundleBasedDirectRunner",
        "SwitchingDirectRunner",
        "FnApiRunner",
        "TestDirectRunner",
        "InteractiveRunner",
    }
)


class _Refused(Exception):
    pass


def check(beam_args: Sequence[str], flag: str = "") -> str | None:
    """UserError naming the first option that Beam would drop or refuse, after `flag` (the
    command-line flag that passed it, with its trailing space, or nothing). For a remote
    runner, a note naming the options the SDK does not know (passed on: a typo shows there),
    else None."""
    parser = _beam_parser()
    try:
        known, unknown = parser.parse_known_args(list(beam_args))
    except _Refused as e:  # argparse's "argument --NAME: invalid int value: 'x'"
        raise UserError(f"{flag}{str(e).removeprefix('argument ')}") from None
    runner = _check_runner(known.runner, flag)
    if not unknown:
        return None
    names = [s for action in parser._actions for s in action.option_strings]
    if runner not in IN_PROCESS_RUNNERS:
        named = ", ".join(
            option + _did_you_mean(option, names, " (did you mean {}?)") for option in unknown
        )
        return (
            f"  note: Beam's Python SDK does not know {named}; {runner} gets them as given"
            " (its service may define them)"
        )
    raise UserError(
        f"{flag}{unknown[0]}: Beam has no such option ({runner} would drop it)"
        + _did_you_mean(unknown[0], names, "; did you mean {}?")
    )


def _did_you_mean(option: str, names: list[str], template: str) -> str:
    close = difflib.get_close_matches(option.split("=", 1)[0], names, n=1, cutoff=0.8)
    return template.format(close[0]) if close else ""


def _check_runner(name: str | None, flag: str) -> str:
    """The runner's class name, resolved as Beam resolves `--runner` (case aside, "Runner"
    optional); UserError for a name Beam lacks. A module path is Beam's to import."""
    from apache_beam.options.pipeline_options import StandardOptions

    if not name:
        return "DirectRunner"
    if "." in name:
        return name
    runners = [path.rsplit(".", 1)[-1] for path in StandardOptions.ALL_KNOWN_RUNNERS]
    by_key = {runner.lower(): runner for runner in runners}
    for key in (name.lower(), name.lower() + "runner"):
        if key in by_key:
            return by_key[key]
    raise UserError(
        f"{flag}--runner={name}: Beam has no such runner; its runners are"
        f" {', '.join(sorted(runners))} (or a runner class's full module path)"
    )


def _beam_parser() -> argparse.ArgumentParser:
    """Beam's own parser of every registered option (handed out by `get_all_options`), made to
    raise instead of printing Beam's whole usage and exiting."""
    from apache_beam.options.pipeline_options import PipelineOptions

    parsers: list[argparse.ArgumentParser] = []
    PipelineOptions([]).get_all_options(add_extra_args_fn=parsers.append)
    parser = parsers[0]

    def refuse(message: str) -> None:
        raise _Refused(message)

    parser.error = refuse  # type: ignore[method-assign]
    return parser

"""A one-line training progress display: step/total, images/s, losses, learning rate, ETA.

On a terminal the line is redrawn in place; in logs (TFX, Kubeflow) each report is its own line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


class ProgressLine:
    """`report(step, values)` after a step; rates are measured between consecutive reports, from
    the second one on."""

    def __init__(
        self,
        total_steps: int,
        batch_size: int,
        start_step: int = 0,
        *,
        prefix: str = "",
        stream: TextIO | None = None,
        clock=time.monotonic,
        min_interval_s: float = 0.0,
    ):
        self.total_steps = total_steps
        # reports sooner than this after the last one are skipped (not the first or the last)
        self.min_interval_s = min_interval_s
        self.batch_size = batch_size
        self.prefix = prefix
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self._last_step = start_step
        self._last_time = clock()
        self._reported = False
        self._in_place = getattr(self.stream, "isatty", lambda: False)()

    def format(self, step: int, values: Mapping[str, float]) -> str:
        now = self.clock()
        elapsed = max(now - self._last_time, 1e-9)
        steps_per_s = (step - self._last_step) / elapsed
        first = not self._reported
        self._last_step, self._last_time, self._reported = step, now, True
        width = len(str(self.total_steps))
        if first:  # the first interval includes tracing and compiling: no rate to report yet
            rate, eta = "- img/s", "?"
        else:
            rate = f"{steps_per_s * self.batch_size:.1f} img/s"
            eta = format_duration((self.total_steps - step) / steps_per_s) if steps_per_s else "?"
        parts = [
            f"{self.prefix}step {step:>{width}}/{self.total_steps}",
            rate,
            *(f"{name} {value:.4g}" for name, value in values.items()),
            f"ETA {eta}",
        ]
        return "  ".join(parts)

    def report(self, step: int, values: Mapping[str, float]) -> str | None:
        """Writes the line (and returns it), or None when `min_interval_s` skips it."""
        recent = self.clock() - self._last_time < self.min_interval_s
        if self._reported and recent and step < self.total_steps:
            return None
        line = self.format(step, values)
        if self._in_place:
            end = "\n" if step >= self.total_steps else ""
            self.stream.write(f"\r\x1b[K{line}{end}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        return line

"""The Evaluator's interpolation sheet: the candidate's images on the line from the split's first
caption to the first caption of another class (`stackgan.serving.interpolation`, the paper's
Figure 8), so each run shows whether the generator moves from one caption's bird to the other's
by degrees, or jumps (a generator that memorised its captions), beside its scores.
"""

from __future__ import annotations

import io

from stackgan.evaluation.evaluator import CaptionEnds
from stackgan.serving import interpolation
from stackgan.serving.generator import Generator
from stackgan.visualize.sample_sheet import render_sheet

STEPS = 6  # images from one caption to the other
ROWS = 3  # the first at zero noise, then two draws


def render(generator: Generator, ends: CaptionEnds, seed: int) -> bytes:
    """The PNG: ROWS rows of STEPS images of the generator's largest output, captioned."""
    images = interpolation.interpolate(
        generator, ends.first_embedding, ends.last_embedding, STEPS, ROWS, seed
    )
    largest = max(images, key=lambda name: images[name].shape[1])
    labels = interpolation.labels(ends.first, ends.last, STEPS, ROWS)
    png = io.BytesIO()
    render_sheet(images[largest], labels, columns=STEPS).save(png, format="PNG")
    return png.getvalue()

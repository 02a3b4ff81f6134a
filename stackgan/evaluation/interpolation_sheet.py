"""The Evaluator's interpolation sheet: the candidate's images on the line from the first scored
caption to the first caption of another class (`stackgan.serving.interpolation`, the paper's
Figure 8), so each run shows whether the generator moves from one caption's bird to the other's
by degrees, or jumps (a generator that memorised its captions), beside its scores.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable, Mapping

import numpy as np

from stackgan.serving import interpolation
from stackgan.serving.generator import Generator
from stackgan.visualize.sample_sheet import render_sheet

STEPS = 6  # images from one caption to the other
ROWS = 3  # the first at zero noise, then two draws


@dataclasses.dataclass(frozen=True)
class Ends:
    """The line's two ends: captions of two classes and their embeddings."""

    first: str
    last: str
    first_embedding: np.ndarray
    last_embedding: np.ndarray


def caption_ends(batches: Iterable[Mapping[str, np.ndarray]]) -> Ends | None:
    """The first caption of `batches` (make_eval_dataset's) and the first after it of another
    class; None when every caption is of one class."""
    first = None
    for batch in batches:
        for label, caption, embedding in zip(
            batch["label"], batch["caption"], batch["embedding"], strict=True
        ):
            if first is None:
                first = (label, caption, embedding)
            elif label != first[0]:
                return Ends(_text(first[1]), _text(caption), first[2], embedding)
    return None


def render(generator: Generator, ends: Ends, seed: int) -> bytes:
    """The PNG: ROWS rows of STEPS images of the generator's largest output, captioned."""
    images = interpolation.interpolate(
        generator, ends.first_embedding, ends.last_embedding, STEPS, ROWS, seed
    )
    largest = max(images, key=lambda name: images[name].shape[1])
    labels = interpolation.labels(ends.first, ends.last, STEPS, ROWS)
    png = io.BytesIO()
    render_sheet(images[largest], labels, columns=STEPS).save(png, format="PNG")
    return png.getvalue()


def _text(caption) -> str:
    return caption.decode() if isinstance(caption, bytes) else str(caption)

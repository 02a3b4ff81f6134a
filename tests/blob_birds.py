"""The toy data of the conditional-learning tests: a coloured blob ("bird") on a noisy grey
background, whose caption names the colour. Shared by tests/test_learning*.py (importable
because pyproject.toml puts tests/ on pytest's pythonpath)."""

from __future__ import annotations

import numpy as np

COLOURS = ("red", "green", "blue", "yellow")
SIZE = 16  # the tiny profile's Stage-I size
CENTRE = slice(SIZE // 2 - 3, SIZE // 2 + 3)  # where the blob is: its colour is measured here


def bird_image(rgb, rng: np.random.Generator) -> np.ndarray:
    """A noisy grey background with an elliptic blob of colour `rgb` near the centre, [-1, 1]."""
    image = np.full((SIZE, SIZE, 3), rng.uniform(90, 170)) + rng.normal(0, 8, (SIZE, SIZE, 3))
    yy, xx = np.mgrid[:SIZE, :SIZE]
    cy, cx = SIZE / 2 - 0.5 + rng.uniform(-1, 1, 2)
    r = rng.uniform(3.5, 5.0)
    mask = ((yy - cy) / (0.8 * r)) ** 2 + ((xx - cx) / r) ** 2 <= 1
    image[mask] = np.asarray(rgb) + rng.normal(0, 6, (int(mask.sum()), 3))
    return (np.clip(image, 0, 255) / 127.5 - 1).astype("float32")


# Two-part birds for the composition test: the upper half of the body one colour ("wings"),
# the lower half another ("belly"), measured in these rows of the central columns.
PART_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
WINGS_REGION = (slice(4, 7), slice(5, 11))
BELLY_REGION = (slice(9, 12), slice(5, 11))


def two_colour_bird(wings_rgb, belly_rgb, rng: np.random.Generator) -> np.ndarray:
    """A noisy grey background with an elliptic body whose upper half is `wings_rgb` and lower
    half `belly_rgb`, [-1, 1]."""
    image = np.full((SIZE, SIZE, 3), rng.uniform(90, 170)) + rng.normal(0, 8, (SIZE, SIZE, 3))
    yy, xx = np.mgrid[:SIZE, :SIZE]
    dy, dx = rng.uniform(-0.7, 0.7, 2)
    cy = SIZE / 2 - 0.5 + dy
    body = ((yy - cy) / 4.8) ** 2 + ((xx - SIZE / 2 + 0.5 - dx) / 5.5) ** 2 <= 1
    for part, rgb in ((body & (yy < cy), wings_rgb), (body & (yy >= cy), belly_rgb)):
        image[part] = np.asarray(rgb) + rng.normal(0, 6, (int(part.sum()), 3))
    return (np.clip(image, 0, 255) / 127.5 - 1).astype("float32")

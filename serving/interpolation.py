"""Images along the straight line between two captions' embeddings, the noise held fixed along
each row: StackGAN's sentence interpolation (Zhang et al. 2017, Figure 8, where the noise is fixed
at zero). A generator whose condition space is smooth changes the bird gradually from what the
first caption says to what the second says; one that memorised its captions jumps.

The first row holds the noise at zero (the paper's figure, and each condition's most typical
bird); every further row holds one draw at the export's sampling scale (its truncation), from
`seed`, so the same seed draws the same grid.
"""

from __future__ import annotations

import numpy as np

from stackgan.serving.generator import Generator


def line_between(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
    """f32[steps, E]: `start`, `end` and the evenly spaced embeddings between them."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return ((1.0 - t) * np.asarray(start, np.float32) + t * np.asarray(end, np.float32)).astype(
        np.float32
    )


def interpolate(
    generator: Generator,
    start: np.ndarray,
    end: np.ndarray,
    steps: int,
    rows: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """The generator's outputs for `rows` x `steps` inputs, row-major: row r walks from `start`
    to `end` with its own noise (row 0 at zero), as `Generator.generate_with_noise` returns
    them."""
    if rows < 1:
        raise ValueError(f"an interpolation needs at least 1 row, got {rows}")
    line = line_between(start, end, steps)
    scale = 1.0 if generator.truncation is None else generator.truncation
    rng = np.random.default_rng(seed)
    widths = {"noise": generator.z_dim, "ca_noise": generator.ca_dim}
    if "ca_noise_2" in generator.noise_inputs:
        widths["ca_noise_2"] = generator.ca_dim
    noise = {}
    for name, width in widths.items():
        drawn = rng.standard_normal((rows, width)).astype(np.float32) * np.float32(scale)
        drawn[0] = 0.0
        noise[name] = np.repeat(drawn, steps, axis=0)  # each row's draw along its whole line
    return generator.generate_with_noise(np.tile(line, (rows, 1)), **noise)


def labels(first: str, last: str, steps: int, rows: int) -> list[str]:
    """Captions for the grid: the two sentences at the ends of the first row, the mixing weight
    of the second between them, nothing under the rows below."""
    t = np.linspace(0.0, 1.0, steps)
    top = [first, *(f"t = {w:.2f}" for w in t[1:-1]), last]
    return top + [""] * (steps * (rows - 1))

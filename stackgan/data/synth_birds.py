"""Procedural bird species and their pictures, for the synthetic CUB-format dataset.

A `Species` fixes the colour of each body part (`synth_text.PARTS`) and the proportions (size,
body shape, beak and tail length); `draw_bird` paints one individual of it with PIL shapes onto
a canvas, facing left or right, at a random place and scale, and returns its exact bounding box;
`draw_background` paints a muted scene (sky, grass, branches, foliage, water) so the bird is
the most saturated thing in the picture, as in most CUB photographs, or a plain sky gradient.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from stackgan.data.synth_text import PALETTE, PARTS

# The part a species is named after ("Red_crowned_Finch") and the adjective for it.
_NAMED_PARTS = {
    "crown": "crowned",
    "head": "headed",
    "breast": "breasted",
    "belly": "bellied",
    "wings": "winged",
    "tail": "tailed",
    "beak": "billed",
}
_GENERA = {
    "small": ("Finch", "Warbler", "Wren", "Sparrow", "Tit", "Flycatcher", "Vireo"),
    "medium": ("Tanager", "Oriole", "Thrush", "Jay", "Grosbeak", "Cuckoo", "Kingfisher"),
    "large": ("Gull", "Heron", "Crow", "Albatross", "Cormorant", "Hawk", "Tern"),
}
_BEAK_COLOURS = ("black", "grey", "orange", "yellow", "brown", "red")
# Bird length (tail tip to beak tip) as a fraction of the image width, per size class: "large"
# species fill more of the frame, which is what "a large bird" can mean in a photograph.
_FRAME_FRACTION = {"small": (0.30, 0.45), "medium": (0.42, 0.58), "large": (0.55, 0.72)}
# Per-image colour variation within a species, per channel (palette colours are > 90 apart).
COLOUR_JITTER = 12
LEG_COLOUR = (70, 60, 55)


@dataclasses.dataclass(frozen=True)
class Species:
    class_id: int  # 1-based, as in classes.txt
    name: str  # "Red_crowned_Finch"
    colours: tuple[tuple[str, str], ...]  # (part, colour name) for every part in PARTS
    size: str  # small | medium | large
    beak_length: str  # short | long
    tail_length: str  # short | long
    body_aspect: float  # body length / body height

    @property
    def folder(self) -> str:
        """The CUB class folder name, "007.Red_crowned_Finch"."""
        return f"{self.class_id:03d}.{self.name}"

    @property
    def traits(self) -> dict[str, str]:
        """Every part's colour plus size, beak_length, tail_length: what captions may state."""
        return {
            **dict(self.colours),
            "size": self.size,
            "beak_length": self.beak_length,
            "tail_length": self.tail_length,
        }


def make_species(count: int, rng: np.random.Generator) -> list[Species]:
    """`count` species with different colour patterns and names, class ids 1..count."""
    colour_names = list(PALETTE)
    species: list[Species] = []
    seen_patterns: set[tuple[str, ...]] = set()
    seen_names: set[str] = set()
    while len(species) < count:
        body = colour_names[int(rng.integers(len(colour_names)))]
        colours = {"body": body}
        for part in ("crown", "head", "breast", "belly", "wings", "tail"):
            # Half the parts keep the body colour, so a species has a few characteristic colours
            # rather than ten, like real birds.
            same = rng.random() < 0.45
            colours[part] = body if same else colour_names[int(rng.integers(len(colour_names)))]
        colours["beak"] = _BEAK_COLOURS[int(rng.integers(len(_BEAK_COLOURS)))]
        distinct = [p for p in _NAMED_PARTS if colours[p] != body]
        pattern = tuple(colours[p] for p in PARTS)
        if len(distinct) < 2 or pattern in seen_patterns:
            continue
        size = ("small", "medium", "large")[int(rng.integers(3))]
        name = _species_name(colours, distinct, size, seen_names, rng)
        seen_patterns.add(pattern)
        seen_names.add(name)
        species.append(
            Species(
                class_id=len(species) + 1,
                name=name,
                colours=tuple((p, colours[p]) for p in PARTS),
                size=size,
                beak_length=("short", "long")[int(rng.integers(2))],
                tail_length=("short", "long")[int(rng.integers(2))],
                body_aspect=float(rng.uniform(1.45, 2.0)),
            )
        )
    return species


def _species_name(
    colours: dict[str, str],
    distinct: list[str],
    size: str,
    taken: set[str],
    rng: np.random.Generator,
) -> str:
    genera = _GENERA[size]
    for _ in range(50):
        part = distinct[int(rng.integers(len(distinct)))]
        genus = genera[int(rng.integers(len(genera)))]
        name = f"{colours[part].capitalize()}_{_NAMED_PARTS[part]}_{genus}"
        if name not in taken:
            return name
    suffix = 2
    while f"{name}_{suffix}" in taken:
        suffix += 1
    return f"{name}_{suffix}"


# -- drawing ---------------------------------------------------------------------------------
def individual_colours(species: Species, rng: np.random.Generator) -> dict[str, tuple[int, ...]]:
    """The RGB of each part for one individual: the palette colour +- COLOUR_JITTER."""
    out = {}
    for part, name in species.colours:
        jitter = rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3)
        out[part] = tuple(int(v) for v in np.clip(np.array(PALETTE[name]) + jitter, 0, 255))
    return out


@dataclasses.dataclass(frozen=True)
class _Shape:
    """The bird in body-length units, facing right, body centre at the origin, y down."""

    ay: float  # body half-height
    head: tuple[float, float, float]  # centre x, y, radius
    beak: float  # beak length
    tail: float  # tail length

    @property
    def extent(self) -> tuple[float, float, float, float]:
        hx, hy, hr = self.head
        left = -0.42 - self.tail
        right = hx + 0.85 * hr + self.beak
        top = min(hy - hr, -0.35 * self.ay - 0.25 * self.tail)
        bottom = self.ay + 0.28
        return left, top, right, bottom


def _shape(species: Species, rng: np.random.Generator) -> _Shape:
    ay = 0.5 / species.body_aspect * rng.uniform(0.95, 1.05)
    hr = {"small": 0.22, "medium": 0.19, "large": 0.16}[species.size] * rng.uniform(0.95, 1.05)
    beak = hr * (
        rng.uniform(0.55, 0.75) if species.beak_length == "short" else rng.uniform(1.4, 1.9)
    )
    tail = rng.uniform(0.2, 0.3) if species.tail_length == "short" else rng.uniform(0.55, 0.75)
    return _Shape(ay=ay, head=(0.4, -0.8 * ay, hr), beak=beak, tail=tail)


def draw_bird(
    canvas: Image.Image, species: Species, rng: np.random.Generator, facing: str = "both"
) -> tuple[tuple[int, int, int, int], dict[str, tuple[int, ...]]]:
    """Paint one bird of `species` onto `canvas` (RGB, modified in place), facing left or
    right at random (`facing="both"`) or right (`"right"`).

    Returns the bird's bounding box `(x, y, width, height)` in pixels, exact (the extent of the
    painted pixels), and the RGB used for each part.
    """
    width, height = canvas.size
    colours = individual_colours(species, rng)
    shape = _shape(species, rng)
    left, top, right, bottom = shape.extent
    lo, hi = _FRAME_FRACTION[species.size]
    scale = min(rng.uniform(lo, hi) * width / (right - left), 0.85 * height / (bottom - top))
    margin = 2
    x_room = width - scale * (right - left) - 2 * margin
    y_room = height - scale * (bottom - top) - 2 * margin
    # drawn whatever `facing` says, so every later draw is the same as under "both"
    coin = rng.random()
    facing_right = coin < 0.5 if facing == "both" else facing == "right"
    # the bird's leftmost / topmost canvas coordinate, then the origin (body centre) from it
    x0 = margin + rng.uniform(0, max(x_room, 0))
    y0 = margin + rng.uniform(0, max(y_room, 0))
    ox = x0 - scale * left if facing_right else x0 + scale * right
    oy = y0 - scale * top

    def pt(u: float, v: float) -> tuple[float, float]:
        return (ox + scale * (u if facing_right else -u), oy + scale * v)

    def box(cu: float, cv: float, ru: float, rv: float) -> list[tuple[float, float]]:
        (x1, y1), (x2, y2) = pt(cu - ru, cv - rv), pt(cu + ru, cv + rv)
        return [(min(x1, x2), y1), (max(x1, x2), y2)]

    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    ay, (hx, hy, hr) = shape.ay, shape.head
    opaque = 255

    # tail first: the body covers its base
    t = shape.tail
    draw.polygon(
        [
            pt(-0.36, -0.25 * ay),
            pt(-0.42 - t, -0.35 * ay - 0.25 * t),
            pt(-0.42 - t, 0.05 * ay - 0.1 * t),
            pt(-0.36, 0.2 * ay),
        ],
        fill=colours["tail"] + (opaque,),
    )
    leg_width = max(1, round(scale * 0.025))
    for u in (-0.05, 0.1):
        foot = pt(u - 0.04, ay + 0.28)
        draw.line(
            [pt(u, ay * 0.8), pt(u - 0.04, ay + 0.26)], fill=LEG_COLOUR + (opaque,), width=leg_width
        )
        draw.line([foot, pt(u + 0.06, ay + 0.28)], fill=LEG_COLOUR + (opaque,), width=leg_width)
    draw.ellipse(box(0, 0, 0.5, ay), fill=colours["body"] + (opaque,))

    # breast and belly are clipped to the body outline
    body_mask = Image.new("L", canvas.size, 0)
    ImageDraw.Draw(body_mask).ellipse(box(0, 0, 0.5, ay), fill=255)
    under = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    under_draw = ImageDraw.Draw(under)
    under_draw.ellipse(box(-0.05, 0.6 * ay, 0.27, 0.45 * ay), fill=colours["belly"] + (opaque,))
    under_draw.ellipse(box(0.27, 0.15 * ay, 0.22, 0.6 * ay), fill=colours["breast"] + (opaque,))
    under.putalpha(ImageChops.multiply(under.getchannel("A"), body_mask))
    layer.alpha_composite(under)

    draw.polygon(
        [
            pt(0.2, -0.55 * ay),
            pt(-0.05, -0.75 * ay),
            pt(-0.35, -0.55 * ay),
            pt(-0.55, -0.2 * ay),
            pt(-0.25, 0.1 * ay),
            pt(0.1, 0.05 * ay),
        ],
        fill=colours["wings"] + (opaque,),
    )
    draw.ellipse(box(hx, hy, hr, hr), fill=colours["head"] + (opaque,))
    # the crown: the top of the head, a chord from 10 o'clock to 2 o'clock
    draw.chord(
        box(hx, hy - 0.04 * hr, 0.97 * hr, 0.97 * hr), 200, 340, fill=colours["crown"] + (opaque,)
    )
    draw.polygon(
        [
            pt(hx + 0.8 * hr, hy - 0.3 * hr),
            pt(hx + 0.85 * hr + shape.beak, hy + 0.08 * hr),
            pt(hx + 0.8 * hr, hy + 0.35 * hr),
        ],
        fill=colours["beak"] + (opaque,),
    )
    draw.ellipse(box(hx + 0.4 * hr, hy - 0.05 * hr, 0.17 * hr, 0.17 * hr), fill=(10, 10, 10, 255))

    x1, y1, x2, y2 = layer.getchannel("A").getbbox()
    canvas.paste(layer, (0, 0), layer)
    return (x1, y1, x2 - x1, y2 - y1), colours


def draw_background(
    size: tuple[int, int], rng: np.random.Generator, backgrounds: str = "scenes"
) -> Image.Image:
    """A muted outdoor scene of `size` (width, height): with `backgrounds="scenes"` one of sky,
    grass, branches, foliage, water, with sensor-like noise; with "plain" the sky's colour
    gradient alone, top to bottom."""
    width, height = size
    ys = np.linspace(0.0, 1.0, height)[:, None, None]
    if backgrounds == "plain":
        top, bottom = _sky_colours(rng)
        pixels = np.broadcast_to(top + (bottom - top) * ys, (height, width, 3))
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if backgrounds != "scenes":
        raise ValueError(f"backgrounds must be 'scenes' or 'plain', got {backgrounds!r}")
    kind = ("sky", "grass", "branches", "foliage", "water")[int(rng.integers(5))]
    if kind in ("sky", "grass", "branches"):
        top, bottom = _sky_colours(rng)
    elif kind == "foliage":
        top = np.array([70, 100, 60]) + rng.uniform(-20, 20, 3)
        bottom = np.array([110, 130, 80]) + rng.uniform(-20, 20, 3)
    else:
        top = np.array([120, 150, 165]) + rng.uniform(-20, 20, 3)
        bottom = np.array([70, 95, 115]) + rng.uniform(-20, 20, 3)
    pixels = np.broadcast_to(top + (bottom - top) * ys, (height, width, 3)).copy()
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    if kind == "sky":
        for _ in range(int(rng.integers(1, 4))):
            cx, cy = rng.uniform(0, width), rng.uniform(0, 0.6 * height)
            rx, ry = rng.uniform(0.1, 0.3) * width, rng.uniform(0.04, 0.1) * height
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=(238, 240, 242))
        image = image.filter(ImageFilter.GaussianBlur(radius=max(2, width // 60)))
    elif kind == "grass":
        horizon = rng.uniform(0.55, 0.8) * height
        green = tuple(int(v) for v in np.array([105, 135, 75]) + rng.integers(-15, 16, 3))
        draw.rectangle([0, horizon, width, height], fill=green)
    elif kind == "branches":
        for _ in range(int(rng.integers(1, 4))):
            y_a, y_b = rng.uniform(0, height, 2)
            brown = tuple(int(v) for v in np.array([95, 80, 65]) + rng.integers(-15, 16, 3))
            draw.line([(0, y_a), (width, y_b)], fill=brown, width=max(3, int(height * 0.03)))
    elif kind == "foliage":
        for _ in range(int(rng.integers(6, 14))):
            cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.15)
            shade = tuple(int(v) for v in np.array([90, 125, 70]) + rng.integers(-25, 26, 3))
            draw.ellipse(
                [cx - r * width, cy - r * width, cx + r * width, cy + r * width], fill=shade
            )
        image = image.filter(ImageFilter.GaussianBlur(radius=max(2, width // 80)))
    else:
        for _ in range(int(rng.integers(3, 7))):
            y = rng.uniform(0, height)
            draw.line([(0, y), (width, y)], fill=(185, 200, 210), width=max(1, height // 120))
    noise = rng.normal(0.0, rng.uniform(2.0, 7.0), (height, width, 3))
    pixels = np.asarray(image, dtype=np.float64) + noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _sky_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(top, bottom) RGB of a sky gradient: blue overhead, paler at the horizon."""
    top = np.array([150, 185, 225]) + rng.uniform(-20, 20, 3)
    bottom = np.array([215, 225, 235]) + rng.uniform(-15, 15, 3)
    return top, bottom


def image_size(min_side: int, max_side: int, rng: np.random.Generator) -> tuple[int, int]:
    """(width, height): the long side in [min_side, max_side], aspect 3:4 to 1:1, mostly
    landscape, as CUB's photographs (typically 500 x 375)."""
    long_side = int(rng.integers(min_side, max_side + 1))
    short_side = max(int(round(long_side * rng.uniform(0.66, 1.0))), 1)
    return (long_side, short_side) if rng.random() < 0.8 else (short_side, long_side)

"""Colour agreement: does a generated bird show the colours its caption names?

Class top-1 asks whether the classifier calls an image the caption's species. On unseen
species that is a poor judge of caption following: a caption states about three of a species'
traits, so even a perfect generator cannot draw the unstated ones. This score checks what the
caption does state, its colours, directly in the pixels.

For each (image, caption) pair:
- the caption's colour names: every word of `synth_text.COLOUR_WORDS` in it, whatever it
  describes ("a bright red crown and grey wings" -> red, grey), so real CUB captions, which use
  the same palette words, parse as well as the synthetic ones;
- the image's central region, `REGION` of its side in each direction (40%: the middle 16% of the
  area). The StackGAN box crop (`cub.crop_box`, side 1.5 x the box's longer side) and the
  evaluation's centre crop (256 of 304 px) leave the bounding box spanning the middle 79% of the
  image along its longer side; the central 40% then lies inside the box along both axes
  whenever its shorter side is at least half its longer one, so the region is mostly bird and
  little background;
- each pixel of the region is given its nearest `PALETTE` colour (RGB distance), and a named
  colour is *present* when it covers at least `THRESHOLD` of the region (a fifth).
`agreement` is the mean of present over every (image, colour its caption names); captions that
name no palette colour are skipped and counted. `shuffled` is the mean over the same images
against the captions of every OTHER image (all pairs whose image ids differ): the exact
expectation over random pairings, which is what a generator whose images ignore the caption
gets, without the luck of one fixed derangement. `gain` = agreement - shuffled: 0 for such a
generator, positive when the colours follow the caption.

Region and threshold were chosen on real images against their own captions vs the captions of
other images (the ceiling), every (image, caption) pair of a split: on the demo's synthetic
birds (its Examples) 0.504 vs 0.221 (train split) and 0.450 vs 0.280 (test split); on the 101
real CUB photos of `cub-sample` 0.435 vs 0.372 (train) and 0.496 vs 0.402 (test), gains 4-5
times their bootstrap (over images) standard deviation. The CUB gap is small because those ten
species are nearly all black, grey, white and brown, so other birds' captions name the same
colours; a small coloured part (a beak, an eye, a wing patch) rarely covers a fifth of the
region, so even the real ceiling stays near 0.5. Lower thresholds (0.05-0.1) widen the demo's
gap but count the grey, white and black of backgrounds and shadows as present in nearly every
photo (CUB train-split gain 0.02-0.03); a larger region (0.5-0.6) takes in more background.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np

from stackgan.data.synth_text import COLOUR_WORDS, PALETTE

REGION = 0.4  # side of the central square scored, as a fraction of the image side
THRESHOLD = 0.2  # share of the region a named colour must cover to be present
COLOUR_NAMES: tuple[str, ...] = tuple(PALETTE)  # the columns of `palette_shares`
_REFERENCE = np.array([PALETTE[name] for name in COLOUR_NAMES], np.float32)
_ROUNDING = 1e-9  # a share equal to the threshold (e.g. 0.2 of 25 pixels) counts as present
_CHUNK = 64  # images per distance computation, to bound memory on 256 px images


@dataclasses.dataclass(frozen=True)
class ColourAgreement:
    agreement: float | None  # mean present over (image, colour its caption names); None: none
    shuffled: float | None  # the same images against other images' captions; None: no pairs
    gain: float | None  # agreement - shuffled
    named: int  # (image, named colour) pairs in `agreement`
    scored: int  # images whose caption names at least one palette colour
    skipped: int  # images whose caption names none (left out of both means)


def caption_colour_names(caption: str) -> tuple[str, ...]:
    """The palette colours a caption names, in order of first mention, each once ("gray" is
    grey). Word-level: a colour counts whatever part it describes, or none."""
    names: list[str] = []
    for word in re.findall(r"[a-z]+", caption.lower()):
        name = COLOUR_WORDS.get(word)
        if name is not None and name not in names:
            names.append(name)
    return tuple(names)


def central_region(images: np.ndarray, region: float = REGION) -> np.ndarray:
    """The central `region` x `region` square of uint8 [N, H, W, 3] images (rounded to pixels)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"expected images [N, H, W, 3], got {list(images.shape)}")
    if not 0 < region <= 1:
        raise ValueError(f"region must be in (0, 1], got {region}")
    height, width = images.shape[1:3]
    top = int(round(height * (1 - region) / 2))
    left = int(round(width * (1 - region) / 2))
    return images[:, top : height - top, left : width - left]


def palette_shares(images: np.ndarray, region: float = REGION) -> np.ndarray:
    """f32 [N, len(COLOUR_NAMES)]: the share of each image's central region whose nearest
    palette colour (RGB distance) is each of `COLOUR_NAMES`; rows sum to 1."""
    crops = central_region(images, region)
    count = len(crops)
    shares = np.zeros([count, len(COLOUR_NAMES)], np.float32)
    reference_norms = np.sum(_REFERENCE**2, axis=1)
    for start in range(0, count, _CHUNK):
        pixels = crops[start : start + _CHUNK].astype(np.float32)
        pixels = pixels.reshape(len(pixels), -1, 3)
        # |p - r|^2 up to the |p|^2 every reference shares
        distances = reference_norms - 2.0 * pixels @ _REFERENCE.T
        nearest = np.argmin(distances, axis=2)
        for row, labels in enumerate(nearest):
            shares[start + row] = np.bincount(labels, minlength=len(COLOUR_NAMES)) / len(labels)
    return shares


def _named_matrix(captions: Sequence[str]) -> np.ndarray:
    """f64 [N, len(COLOUR_NAMES)]: 1 where a caption names a colour."""
    named = np.zeros([len(captions), len(COLOUR_NAMES)])
    for row, caption in enumerate(captions):
        for name in caption_colour_names(caption):
            named[row, COLOUR_NAMES.index(name)] = 1.0
    return named


def score(
    shares: np.ndarray,
    captions: Sequence[str],
    image_ids: Sequence[int] | None = None,
    threshold: float = THRESHOLD,
) -> ColourAgreement:
    """Colour agreement of images (their `palette_shares`) with the captions they were made
    from, row for row; `image_ids`: the test image each caption belongs to (captions of the same
    image are not paired in `shuffled`; None: every row its own image). See the module
    docstring."""
    shares = np.asarray(shares, np.float64)
    if shares.ndim != 2 or shares.shape != (len(captions), len(COLOUR_NAMES)):
        raise ValueError(
            f"shares {list(shares.shape)} for {len(captions)} captions: expected"
            f" [{len(captions)}, {len(COLOUR_NAMES)}]"
        )
    ids = np.arange(len(captions)) if image_ids is None else np.asarray(image_ids)
    if len(ids) != len(captions):
        raise ValueError(f"{len(ids)} image ids for {len(captions)} captions")
    named = _named_matrix(captions)
    kept = named.sum(axis=1) > 0
    present = (shares >= threshold - _ROUNDING).astype(np.float64)[kept]
    named, ids = named[kept], ids[kept]
    scored = int(kept.sum())
    total_named = int(named.sum())
    if total_named == 0:
        return ColourAgreement(None, None, None, 0, scored, len(captions) - scored)
    agreement = float(np.sum(present * named) / total_named)
    # every (image k, caption j) with different image ids: all pairs minus those within an id
    groups, group_of = np.unique(ids, return_inverse=True)
    present_by_group = np.zeros([len(groups), len(COLOUR_NAMES)])
    named_by_group = np.zeros_like(present_by_group)
    np.add.at(present_by_group, group_of, present)
    np.add.at(named_by_group, group_of, named)
    hits = present.sum(axis=0) @ named.sum(axis=0) - np.sum(present_by_group * named_by_group)
    group_sizes = np.bincount(group_of)
    pairs = float(np.sum(named.sum(axis=1) * (scored - group_sizes[group_of])))
    shuffled = float(hits / pairs) if pairs > 0 else None
    gain = None if shuffled is None else agreement - shuffled
    return ColourAgreement(agreement, shuffled, gain, total_named, scored, len(captions) - scored)

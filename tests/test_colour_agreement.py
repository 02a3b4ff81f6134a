"""Colour agreement: caption colour parsing, the central-region palette shares, and the score
against the other-captions baseline, on images painted in known colours."""

from __future__ import annotations

import numpy as np
import pytest

from stackgan.data.synth_text import PALETTE, PARTS, caption_attributes, write_captions
from stackgan.evaluation import colour_agreement as ca

SIZE = 50  # central region 0.4: pixels 15..34, 20 x 20 = 400 pixels
INNER = slice(15, 35)
SPECIES = 12
CAPTIONS_PER_SPECIES = 6


def traits(rng: np.random.Generator) -> dict[str, str]:
    names = list(PALETTE)
    return {
        **{part: names[int(rng.integers(len(names)))] for part in PARTS},
        "size": ("small", "medium", "large")[int(rng.integers(3))],
        "beak_length": ("short", "long")[int(rng.integers(2))],
        "tail_length": ("short", "long")[int(rng.integers(2))],
    }


def synthetic_captions(seed: int = 0) -> tuple[list[str], list[int]]:
    """Captions of SPECIES random species, CAPTIONS_PER_SPECIES each, in species order, and the
    image id of each (one image per caption)."""
    rng = np.random.default_rng(seed)
    captions = []
    for _ in range(SPECIES):
        captions += write_captions(traits(rng), rng, CAPTIONS_PER_SPECIES)
    return captions, list(range(len(captions)))


def painted(colours, background: str = "green") -> np.ndarray:
    """uint8 [SIZE, SIZE, 3]: the central region in vertical stripes, one per colour (each at
    least a fifth of it for up to five colours), the rest `background`."""
    image = np.empty((SIZE, SIZE, 3), np.uint8)
    image[:] = PALETTE[background]
    colours = list(colours) or [background]
    assert len(colours) <= 5
    columns = np.array_split(np.arange(INNER.start, INNER.stop), len(colours))
    for colour, cols in zip(colours, columns, strict=True):
        image[INNER, cols] = PALETTE[colour]
    return image


def brute_force_shuffled(shares, captions, image_ids, threshold=ca.THRESHOLD) -> float:
    """The baseline by its definition: every (image k, caption j) of different image ids."""
    hits = pairs = 0
    for k, image_id in enumerate(image_ids):
        if not ca.caption_colour_names(captions[k]):
            continue  # skipped images are left out of the baseline too
        for j, caption in enumerate(captions):
            if image_ids[j] == image_id:
                continue
            for name in ca.caption_colour_names(caption):
                hits += shares[k][ca.COLOUR_NAMES.index(name)] >= threshold
                pairs += 1
    return hits / pairs


def test_real_cub_captions_parse():
    assert ca.caption_colour_names("this bird has a bright red crown and grey wings") == (
        "red",
        "grey",
    )
    # "gray" is grey, each colour once in order of first mention, hyphens split words
    assert ca.caption_colour_names(
        "A Gray bird with a white belly, black-and-white wings and a gray crown."
    ) == ("grey", "white", "black")
    assert ca.caption_colour_names("a bird with a very long wing span and a pointed beak.") == ()
    # whole words only: "reddish", "blackbird", "bluish" are not palette words
    assert ca.caption_colour_names("a reddish blackbird with bluish tones") == ()


def test_word_parse_agrees_with_the_synthetic_text_model():
    captions, _ = synthetic_captions(seed=1)
    for caption in captions:
        attributes = caption_attributes(caption)
        stated = {attributes[part] for part in PARTS if part in attributes}
        assert set(ca.caption_colour_names(caption)) == stated, caption


def test_palette_shares_count_the_central_region_only():
    image = painted(["red", "blue"], background="white")
    image[INNER.start - 1, :] = PALETTE["yellow"]  # just outside the region: not counted
    image[:, INNER.stop] = PALETTE["yellow"]
    shares = ca.palette_shares(image[None])[0]
    assert dict(zip(ca.COLOUR_NAMES, shares.tolist()))["red"] == 0.5
    assert shares[ca.COLOUR_NAMES.index("blue")] == 0.5
    assert shares.sum() == pytest.approx(1.0)
    # a 64 px image: round(64 x 0.3) = 19 px margins, a 26 px region
    assert ca.central_region(np.zeros((2, 64, 64, 3), np.uint8)).shape == (2, 26, 26, 3)


def test_each_palette_colour_is_named_under_the_drawings_jitter():
    rng = np.random.default_rng(0)
    for name, rgb in PALETTE.items():
        jitter = rng.integers(-12, 13, (1, SIZE, SIZE, 3))
        image = np.clip(np.add(rgb, jitter), 0, 255).astype(np.uint8)
        assert ca.palette_shares(image)[0, ca.COLOUR_NAMES.index(name)] == 1.0, name


def test_a_colour_is_present_from_the_threshold_on():
    image = np.empty((1, SIZE, SIZE, 3), np.uint8)
    image[:] = PALETTE["white"]
    image[0, INNER.start : INNER.start + 4, INNER] = PALETTE["red"]  # 80 of 400: a fifth
    at = ca.score(ca.palette_shares(image), ["a red bird"])
    assert (at.agreement, at.named, at.scored) == (1.0, 1, 1)
    image[0, INNER.start, INNER.start] = PALETTE["white"]  # one pixel less
    below = ca.score(ca.palette_shares(image), ["a red bird"])
    assert below.agreement == 0.0


def test_images_in_their_captions_colours_score_high_above_the_baseline():
    captions, ids = synthetic_captions()
    shares = ca.palette_shares(
        np.stack([painted(ca.caption_colour_names(caption)) for caption in captions])
    )
    faithful = ca.score(shares, captions, ids)
    assert faithful.agreement == 1.0
    assert faithful.skipped == 0 and faithful.scored == len(captions)
    assert faithful.named == sum(len(ca.caption_colour_names(c)) for c in captions)
    assert faithful.shuffled == pytest.approx(brute_force_shuffled(shares, captions, ids))
    assert faithful.shuffled < 0.5
    assert faithful.gain == pytest.approx(faithful.agreement - faithful.shuffled)
    assert faithful.gain > 0.5


def test_a_generator_that_ignores_the_caption_scores_at_the_baseline():
    captions, ids = synthetic_captions()
    # one fixed picture for every caption: agreement is the baseline exactly
    fixed = np.stack([painted(["red", "white", "black"])] * len(captions))
    one_bird = ca.score(ca.palette_shares(fixed), captions, ids)
    assert 0 < one_bird.agreement < 1
    assert one_bird.gain == pytest.approx(0.0, abs=1e-12)
    # each image in the colours of a caption half the set away (another species): near the
    # baseline, far below a generator that follows its caption
    other = [captions[(k + len(captions) // 2) % len(captions)] for k in range(len(captions))]
    shares = ca.palette_shares(np.stack([painted(ca.caption_colour_names(c)) for c in other]))
    ignoring = ca.score(shares, captions, ids)
    assert ignoring.shuffled == pytest.approx(brute_force_shuffled(shares, captions, ids))
    assert abs(ignoring.gain) < 0.1
    assert ignoring.agreement < 0.5


def test_captions_of_one_image_are_not_each_others_baseline():
    # two images, two captions each: the baseline pairs image 0 only with image 1's captions
    captions = ["a red bird", "red wings", "a blue bird", "a blue crown"]
    images = np.stack([painted(["red"])] * 2 + [painted(["blue"])] * 2)
    result = ca.score(ca.palette_shares(images), captions, [7, 7, 9, 9])
    assert (result.agreement, result.shuffled, result.gain) == (1.0, 0.0, 1.0)
    # without image ids every other caption is another image's, the same-colour ones included
    alone = ca.score(ca.palette_shares(images), captions)
    assert alone.shuffled == pytest.approx(4 / 12)


def test_captions_without_colour_words_are_skipped_and_counted():
    captions, ids = synthetic_captions()
    shares = ca.palette_shares(
        np.stack([painted(ca.caption_colour_names(caption)) for caption in captions])
    )
    colourless = ["a small bird with a long pointed beak", "this bird has a short tail"]
    blank = ca.palette_shares(np.stack([painted(["white"])] * 2))
    mixed = ca.score(np.concatenate([shares, blank]), captions + colourless, ids + [-1, -2])
    alone = ca.score(shares, captions, ids)
    assert (mixed.skipped, mixed.scored) == (2, len(captions))
    assert (mixed.agreement, mixed.shuffled, mixed.named) == (
        alone.agreement,
        alone.shuffled,
        alone.named,
    )
    nothing = ca.score(blank, colourless)
    assert nothing == ca.ColourAgreement(None, None, None, 0, 0, 2)


def test_inputs_are_checked():
    with pytest.raises(ValueError, match=r"shares \[2, 10\] for 3 captions"):
        ca.score(np.zeros((2, 10)), ["red"] * 3)
    with pytest.raises(ValueError, match="2 image ids for 3 captions"):
        ca.score(np.zeros((3, 10)), ["red"] * 3, [1, 2])
    with pytest.raises(ValueError, match=r"expected images \[N, H, W, 3\]"):
        ca.palette_shares(np.zeros((SIZE, SIZE, 3), np.uint8))

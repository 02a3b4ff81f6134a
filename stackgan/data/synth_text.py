"""Captions and text embeddings of the synthetic birds.

The synthetic dataset stands in for CUB + Reed et al.'s char-CNN-RNN embeddings, so its text
must carry the same kind of signal: captions in the style of Reed's CUB captions that name the
colours of body parts and a few proportions, and 1024-d embeddings that are a deterministic
function of what a caption says (not random vectors), so a generator conditioned on them can
learn "red crown" -> red pixels on top of the head.

Public pieces used elsewhere (the synthetic writer, the trainers' learning tests):
`PALETTE`, `PARTS`, `write_captions`, `caption_attributes`, `caption_colours`,
`nearest_colour`, `caption_embedding`, `embed_captions`.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence

import numpy as np

# Named colours and the RGB the birds are painted with. Pairwise distances are > 90, so the
# small per-image jitter of the drawing (<= 12 per channel) never changes a colour's name.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35),
    "orange": (240, 135, 25),
    "yellow": (245, 215, 40),
    "green": (60, 150, 60),
    "blue": (40, 90, 200),
    "purple": (120, 55, 150),
    "brown": (115, 70, 35),
    "black": (25, 25, 25),
    "grey": (135, 135, 135),
    "white": (240, 240, 235),
}
COLOUR_WORDS: dict[str, str] = {**{c: c for c in PALETTE}, "gray": "grey"}

# Body parts a caption can colour, and the words that name each.
PARTS = ("crown", "head", "breast", "belly", "wings", "tail", "beak", "body")
PART_WORDS: dict[str, str] = {
    "crown": "crown",
    "head": "head",
    "breast": "breast",
    "chest": "breast",
    "belly": "belly",
    "abdomen": "belly",
    "wings": "wings",
    "wing": "wings",
    "tail": "tail",
    "beak": "beak",
    "bill": "beak",
    "body": "body",
}
SIZES = ("small", "medium", "large")
LENGTHS = ("short", "long")
# Words that may sit between a length word and the part it describes ("a long thin orange bill").
_LENGTH_FILLERS = {"pointed", "thin", "sharp", "curved", "pointy", "narrow", "fanned"}
_LINKING = {"is", "are"}
_DEGREE = {"mostly", "all", "entirely", "predominantly"}


# -- parsing ---------------------------------------------------------------------------------
def _tokens(caption: str) -> list[str]:
    return re.findall(r"[a-z]+|[,.;]", caption.lower())


def _colour_after(tokens: list[str], i: int) -> str | None:
    """`wings are black`, `wings that are black`, `bird is mostly yellow` after tokens[i]."""
    j = i + 1
    if j < len(tokens) and tokens[j] == "that":
        j += 1
    if j >= len(tokens) or tokens[j] not in _LINKING:
        return None
    j += 1
    if j < len(tokens) and tokens[j] in _DEGREE:
        j += 1
    return COLOUR_WORDS.get(tokens[j]) if j < len(tokens) else None


def _length_before(tokens: list[str], i: int) -> str | None:
    """`a long tail`, `a short pointed orange beak`: a length word before tokens[i]."""
    for j in range(i - 1, max(-1, i - 4), -1):
        word = tokens[j]
        if word in LENGTHS:
            return word
        if word not in COLOUR_WORDS and word not in _LENGTH_FILLERS:
            return None
    return None


def caption_attributes(caption: str) -> dict[str, str]:
    """What a caption says about a bird: `{part: colour name}` for the parts in `PARTS`, plus
    `size` (small/medium/large), `beak_length` and `tail_length` (short/long) when stated.

    Understands the phrasings `write_captions` produces and the common ones of Reed's CUB
    captions: "a red crown", "wings that are black", "the belly is white", "a yellow bird",
    "this bird is mostly grey", "a small bird", "a long pointed beak". A colour named without a
    part ("this red and black bird") is not attributed to any part.
    """
    tokens = _tokens(caption)
    found: dict[str, str] = {}
    for i, word in enumerate(tokens):
        before = tokens[i - 1] if i > 0 else ""
        if word == "bird":
            colour = COLOUR_WORDS.get(before) or _colour_after(tokens, i)
            if colour:
                found.setdefault("body", colour)
            size = _size_near_bird(tokens, i)
            if size:
                found.setdefault("size", size)
            continue
        part = PART_WORDS.get(word)
        if part is None:
            continue
        colour = COLOUR_WORDS.get(before) or _colour_after(tokens, i)
        if colour:
            found.setdefault(part, colour)
        if part in ("beak", "tail"):
            length = _length_before(tokens, i)
            if length:
                found.setdefault(f"{part}_length", length)
    return found


def _size_near_bird(tokens: list[str], i: int) -> str | None:
    """`small bird`, `medium sized bird`, `bird is large`."""
    for j in (i - 1, i - 2):
        if j >= 0 and tokens[j] in SIZES and (j == i - 1 or tokens[j + 1] == "sized"):
            return tokens[j]
    if i + 2 < len(tokens) and tokens[i + 1] in _LINKING and tokens[i + 2] in SIZES:
        return tokens[i + 2]
    return None


def caption_colours(caption: str) -> dict[str, tuple[int, int, int]]:
    """`{part: (r, g, b)}` for each body part whose colour the caption names (palette RGB)."""
    attrs = caption_attributes(caption)
    return {part: PALETTE[attrs[part]] for part in PARTS if part in attrs}


def nearest_colour(rgb: Sequence[float]) -> str:
    """The palette name nearest to an RGB triple (e.g. the mean colour of a generated region)."""
    distances = {name: float(np.sum((np.subtract(rgb, ref)) ** 2)) for name, ref in PALETTE.items()}
    return min(distances, key=distances.get)


# -- writing ---------------------------------------------------------------------------------
def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _is(part: str) -> str:
    return "are" if part == "wings" else "is"


def _noun(part: str, rng: np.random.Generator) -> str:
    synonyms = {"beak": ("beak", "bill"), "breast": ("breast", "chest"), "belly": ("belly",)}
    options = synonyms.get(part, (part,))
    return options[int(rng.integers(len(options)))]


def _noun_phrase(part: str, traits: Mapping[str, str], rng: np.random.Generator) -> str:
    """`a red crown`, `black wings`, `a short orange beak`, `a long tail` (colour may be dropped
    for beak/tail, whose length is then the content)."""
    colour = traits[part]
    words = []
    if part in ("beak", "tail"):
        words.append(traits[f"{part}_length"])
        if part == "beak" and rng.random() < 0.3:
            words.append("pointed" if traits["beak_length"] == "short" else "thin")
        if rng.random() < 0.25:
            colour = ""
    if colour:
        words.append(colour)
    words.append(_noun(part, rng))
    phrase = " ".join(words)
    return phrase if part == "wings" else _article(phrase)


def _clause(part: str, traits: Mapping[str, str], rng: np.random.Generator) -> str:
    """`its wings are black`, `the belly is white`."""
    owner = ("its", "the")[int(rng.integers(2))]
    return f"{owner} {_noun(part, rng)} {_is(part)} {traits[part]}"


def _join(items: Sequence[str], rng: np.random.Generator) -> str:
    if len(items) == 1:
        return items[0]
    comma = "," if rng.random() < 0.4 and len(items) > 2 else ""
    return ", ".join(items[:-1]) + f"{comma} and {items[-1]}"


def _size_word(size: str) -> str:
    return "medium sized" if size == "medium" else size


def _one_caption(traits: Mapping[str, str], rng: np.random.Generator) -> str:
    detail_parts = [p for p in PARTS if p != "body"]
    k = int(rng.integers(2, 5))
    chosen = [detail_parts[i] for i in rng.choice(len(detail_parts), size=k, replace=False)]
    phrases = [_noun_phrase(p, traits, rng) for p in chosen]
    size, body = _size_word(traits["size"]), traits["body"]
    template = int(rng.integers(8))
    if template == 0:
        text = f"this bird has {_join(phrases, rng)}"
    elif template == 1:
        text = f"{_article(size)} bird with {_join(phrases, rng)}"
    elif template == 2:
        text = f"this {size} bird is mostly {body} with {_join(phrases[:3], rng)}"
    elif template == 3:
        first = chosen[0]
        rest = _join(phrases[1:], rng)
        noun = _noun(first, rng) if first == "wings" else _article(_noun(first, rng))
        text = f"this bird has {noun} that {_is(first)} {traits[first]} and {rest}"
    elif template == 4:
        text = f"the bird has {_join(phrases[:-1], rng)}, and {_clause(chosen[-1], traits, rng)}"
    elif template == 5:
        text = f"{_article(body)} bird with {_join(phrases, rng)}"
    elif template == 6:
        text = f"this is {_article(size)} bird with {_join(phrases, rng)}"
    else:
        text = f"this bird is {body} with {_join(phrases, rng)}"
    return text + ("." if rng.random() < 0.5 else "")


def write_captions(
    traits: Mapping[str, str], rng: np.random.Generator, count: int = 10
) -> list[str]:
    """`count` different captions of one bird, each naming a random subset of its attributes.

    `traits` maps every part in `PARTS` to a colour name and has `size`, `beak_length`,
    `tail_length`; every caption is true of them (`caption_attributes` of it is a subset).
    """
    captions: list[str] = []
    for _ in range(count * 20):
        caption = _one_caption(traits, rng)
        if caption not in captions:
            captions.append(caption)
        if len(captions) == count:
            return captions
    raise ValueError(f"could not phrase {count} different captions for {dict(traits)}")


# -- embeddings ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _unit_vector(key: str, dim: int) -> np.ndarray:
    """A fixed pseudo-random unit vector per key; blake2b, not hash(), which is salted per run."""
    seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(dim)
    v /= np.linalg.norm(v)
    v.flags.writeable = False
    return v


# The share of a coloured part's vector that belongs to its colour alone, the same whatever the
# part: "yellow wings" and "a yellow breast" share it, as they share the word, and as Reed et
# al.'s encoder, trained against images, maps a colour word near the pixels of that colour on any
# part. With independent (part, colour) vectors a generator cannot know what an unseen pair such
# as "yellow wings" looks like. Unseen-species colour gain of the demo DAG on 48 species
# (docs/EXPERIMENTS.md, "Unseen species"): +0.074 with 0, +0.094 with 0.5, +0.097 with 0.8
# (one run each).
COLOUR_SHARE = 0.5


def _attribute_vector(key: str, value: str, dim: int) -> np.ndarray:
    """The unit vector of one stated attribute: for a part's colour, a mix of the (part,
    colour) pair's own vector and the colour's."""
    pair = _unit_vector(f"attr:{key}={value}", dim)
    if value not in PALETTE or COLOUR_SHARE == 0:
        return pair
    colour = _unit_vector(f"colour:{value}", dim)
    return np.sqrt(1 - COLOUR_SHARE) * pair + np.sqrt(COLOUR_SHARE) * colour


# The attributes carry the content; the words add a wording-dependent part, like a real text
# encoder that maps paraphrases near, but not onto, each other.
_WORD_WEIGHT = 0.35


def caption_embedding(
    caption: str,
    dim: int = 1024,
    rng: np.random.Generator | None = None,
    noise: float = 0.1,
) -> np.ndarray:
    """A float32 `[dim]` embedding of a caption: the sum of a fixed vector per stated attribute
    (`caption_attributes`, e.g. ("crown", "red"), ("beak_length", "long")) and a smaller
    normalised sum of fixed vectors per word, plus `noise` (relative, per element) when `rng`
    is given; scaled to unit mean square so each element is of order 1, like a network input.

    Captions that state the same attributes get nearby embeddings (cosine ~0.9 without noise)
    however they are worded; captions stating different colours of a part get distant ones.
    """
    attrs = caption_attributes(caption)
    v = np.zeros(dim)
    for key, value in sorted(attrs.items()):
        v += _attribute_vector(key, value, dim)
    words = [t for t in _tokens(caption) if t.isalpha()]
    if words:
        w = sum(_unit_vector(f"word:{t}", dim) for t in words)
        v += _WORD_WEIGHT * max(1.0, np.sqrt(len(attrs))) * w / np.linalg.norm(w)
    norm = np.linalg.norm(v)
    if norm == 0:
        raise ValueError(f"cannot embed an empty caption: {caption!r}")
    v *= np.sqrt(dim) / norm
    if rng is not None and noise > 0:
        v += noise * rng.standard_normal(dim)
        v *= np.sqrt(dim) / np.linalg.norm(v)
    return v.astype(np.float32)


def embed_captions(
    captions: Sequence[str], dim: int = 1024, rng: np.random.Generator | None = None
) -> np.ndarray:
    """float32 `[len(captions), dim]`: one `caption_embedding` per caption, as in the
    char-CNN-RNN release (10 rows per image)."""
    return np.stack([caption_embedding(c, dim, rng) for c in captions])

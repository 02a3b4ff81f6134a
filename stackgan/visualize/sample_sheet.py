"""A grid of images with each caption word-wrapped under its image.

Trainers write one every `sample_every_steps`, the evaluator writes one per evaluation and
`stackgan generate` writes one per call, so a person can judge text/image agreement at a glance.
Small images (16 px in the tiny profile, 64 px for Stage-I) are enlarged by an integer factor with
nearest-neighbour sampling, so the caption column is wide enough to read and no pixel is smoothed
into something the generator did not produce.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (0, 0, 0)


def render_sheet(
    images: np.ndarray,
    captions: Sequence[str],
    columns: int,
    *,
    min_image_side: int = 128,
    font_size: int = 12,
    padding: int = 8,
) -> Image.Image:
    """Lays `images` (uint8 [N, H, W, 3]) out `columns` per row with `captions[i]` under image i.

    Images narrower than `min_image_side` are scaled up by the smallest integer factor that reaches
    it. Each row is as tall as its longest wrapped caption; every caption is shown in full.
    """
    images = _checked_images(images)
    captions = list(captions)
    if len(captions) != len(images):
        raise ValueError(f"render_sheet: {len(images)} images but {len(captions)} captions")
    if not isinstance(columns, int) or columns < 1:
        raise ValueError(f"render_sheet: columns must be a positive integer, got {columns!r}")

    font = ImageFont.load_default(size=font_size)
    scale = max(1, math.ceil(min_image_side / images.shape[2]))
    cell_w, image_h = images.shape[2] * scale, images.shape[1] * scale
    line_h = _line_height(font)
    wrapped = [wrap_text(caption, font, cell_w) for caption in captions]

    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    row_text_h = [
        line_h * max(len(lines) for lines in wrapped[r * columns : (r + 1) * columns])
        for r in range(rows)
    ]
    width = padding + columns * (cell_w + padding)
    height = padding + sum(image_h + padding // 2 + text_h + padding for text_h in row_text_h)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    top = padding
    for r in range(rows):
        for c in range(columns):
            i = r * columns + c
            if i >= len(images):
                break
            left = padding + c * (cell_w + padding)
            tile = Image.fromarray(images[i]).resize((cell_w, image_h), Image.Resampling.NEAREST)
            sheet.paste(tile, (left, top))
            for k, line in enumerate(wrapped[i]):
                draw.text(
                    (left, top + image_h + padding // 2 + k * line_h), line, TEXT_COLOUR, font=font
                )
        top += image_h + padding // 2 + row_text_h[r] + padding
    return sheet


def wrap_text(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap to lines at most `width` pixels wide; a word wider than a whole line is
    split between characters rather than drawn past the cell edge. Empty text gives one empty
    line, so every image keeps a caption row."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        # the word starts a new line; the character loop only splits it if it is wider than one
        for char in word:
            if current and font.getlength(current + char) > width:
                lines.append(current)
                current = ""
            current += char
    lines.append(current)
    return lines


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent + 2


def _checked_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"render_sheet: images must be uint8, got {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(
            f"render_sheet: images must have shape [N>0, H, W, 3], got {list(images.shape)}"
        )
    return images


def render_comparison(
    real: np.ndarray, stage1: np.ndarray, stage2: np.ndarray, captions: Sequence[str]
) -> Image.Image:
    """One row per caption: the real image it describes, Stage-I's image of it (enlarged with
    nearest-neighbour sampling to Stage-II's size, so no smoothing is added) and Stage-II's
    refinement of that image. All uint8 [N, H, W, 3]; `stage1` may be smaller."""
    real, stage1, stage2 = (_checked_images(x) for x in (real, stage1, stage2))
    if not len(real) == len(stage1) == len(stage2) == len(captions):
        raise ValueError(
            f"render_comparison: {len(real)} real, {len(stage1)} Stage-I, {len(stage2)} Stage-II"
            f" images and {len(captions)} captions"
        )
    size = stage2.shape[1]
    factor = size // stage1.shape[1]
    enlarged = stage1.repeat(factor, axis=1).repeat(factor, axis=2)
    cells, labels = [], []
    for i, caption in enumerate(captions):
        cells += [real[i], enlarged[i], stage2[i]]
        labels += [
            f"real: {caption}",
            f"Stage-I, {stage1.shape[1]} px (enlarged)",
            f"Stage-II, {size} px",
        ]
    return render_sheet(np.stack(cells), labels, columns=3)

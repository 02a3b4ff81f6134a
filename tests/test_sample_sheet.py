"""The sample sheet: grid geometry, images placed unchanged, captions wrapped inside their cell."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import ImageFont

from stackgan.visualize.sample_sheet import render_sheet, wrap_text

LONG_CAPTION = (
    "this small bird has a bright yellow breast, a short pointed black bill and grey wings "
    "with white wing bars"
)


def _images(n: int, side: int) -> np.ndarray:
    # each image one flat, distinct colour so its placement can be checked pixel by pixel
    colours = np.array(
        [[200, 30, 30], [30, 200, 30], [30, 30, 200], [200, 200, 30], [30, 200, 200]]
    )
    return np.stack([np.full((side, side, 3), colours[i % 5], np.uint8) for i in range(n)])


def test_grid_geometry_and_image_placement():
    images = _images(5, 64)
    sheet = render_sheet(images, ["a bird"] * 5, columns=2, min_image_side=128, padding=8)
    pixels = np.asarray(sheet)
    # 64 px images are doubled to 128; 2 columns, 3 rows
    assert sheet.width == 8 + 2 * (128 + 8)
    first_row_top, second_col_left = 8, 8 + 128 + 8
    assert (pixels[first_row_top : first_row_top + 128, 8 : 8 + 128] == images[0][0, 0]).all()
    assert (
        pixels[first_row_top : first_row_top + 128, second_col_left : second_col_left + 128]
        == images[1][0, 0]
    ).all()
    # every caption fits one line, so each row is image + half padding + one line + padding
    ascent, descent = ImageFont.load_default(size=12).getmetrics()
    row_h = 128 + 4 + (ascent + descent + 2) + 8
    assert sheet.height == 8 + 3 * row_h
    # the last row holds one image; the empty cell next to it stays background
    last_top = 8 + 2 * row_h
    assert (pixels[last_top : last_top + 128, 8 : 8 + 128] == images[4][0, 0]).all()
    assert (pixels[last_top:, second_col_left:] == 255).all()


def test_captions_are_drawn_under_each_image_and_wrapped_inside_the_cell():
    images = _images(2, 16)
    sheet = render_sheet(images, [LONG_CAPTION, ""], columns=2, min_image_side=128)
    pixels = np.asarray(sheet).astype(int)
    image_bottom = 8 + 128
    first_text = pixels[image_bottom:, 8 : 8 + 128]
    second_text = pixels[image_bottom:, 8 + 136 : 8 + 136 + 128]
    # dark text pixels under the first image, none under the captionless one
    assert (first_text.sum(-1) < 200).sum() > 200
    assert (second_text.sum(-1) < 200).sum() == 0
    # the long caption needs several lines, each within the 128 px cell
    font = ImageFont.load_default(size=12)
    lines = wrap_text(LONG_CAPTION, font, 128)
    assert len(lines) >= 4
    assert " ".join(lines) == LONG_CAPTION
    assert all(font.getlength(line) <= 128 for line in lines)
    # the gutter between the two cells has no ink: no line ran past its cell
    gutter = pixels[image_bottom:, 8 + 128 : 8 + 136]
    assert (gutter == 255).all()


def test_word_wider_than_a_line_is_split_between_characters():
    font = ImageFont.load_default(size=12)
    lines = wrap_text("a " + "x" * 60 + " bird", font, 80)
    assert "".join(lines).replace(" ", "") == "a" + "x" * 60 + "bird"
    assert all(font.getlength(line) <= 80 for line in lines)


@pytest.mark.parametrize(
    "images, captions, columns, message",
    [
        (np.zeros((2, 8, 8, 3), np.float32), ["a", "b"], 1, "uint8"),
        (np.zeros((2, 8, 8), np.uint8), ["a", "b"], 1, "shape"),
        (np.zeros((2, 8, 8, 3), np.uint8), ["a"], 1, "2 images but 1 captions"),
        (np.zeros((2, 8, 8, 3), np.uint8), ["a", "b"], 0, "columns"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_error(images, captions, columns, message):
    with pytest.raises(ValueError, match=message):
        render_sheet(images, captions, columns)


def test_a_comparison_row_is_real_then_stage1_enlarged_without_smoothing_then_stage2():
    from stackgan.visualize.sample_sheet import render_comparison

    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    stage1 = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)  # a 4x smaller Stage-I
    stage2 = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    sheet = render_comparison(real, stage1, stage2, ["a red bird", "a blue bird"])
    pixels = np.asarray(sheet)
    assert sheet.width == 8 + 3 * (128 + 8)  # three 32 px cells, each shown at 128 px
    row_h = (sheet.height - 8) // 2  # two rows of equal labels (the layout test above)
    rows = [8, 8 + row_h]
    for i, top in enumerate(rows):
        cells = [pixels[top : top + 128, left : left + 128] for left in (8, 144, 280)]
        np.testing.assert_array_equal(cells[0], real[i].repeat(4, 0).repeat(4, 1))
        # each Stage-I pixel a flat 16 x 16 block: nearest-neighbour, no interpolation
        np.testing.assert_array_equal(cells[1], stage1[i].repeat(16, 0).repeat(16, 1))
        np.testing.assert_array_equal(cells[2], stage2[i].repeat(4, 0).repeat(4, 1))
    with pytest.raises(ValueError, match="2 real, 1 Stage-I, 2 Stage-II images and 2 captions"):
        render_comparison(real, stage1[:1], stage2, ["a", "b"])

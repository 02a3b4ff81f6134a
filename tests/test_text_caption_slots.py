"""The rule for caption files with fewer (or more) captions than embedding rows."""

from __future__ import annotations

import pytest

from stackgan.text.caption_slots import fill_caption_slots


def test_ten_captions_stay_as_they_are():
    captions = [f"caption {i}" for i in range(10)]
    slots = fill_caption_slots(captions, 10)
    assert slots.captions == tuple(captions)
    assert (slots.present, slots.blank_dropped, slots.truncated, slots.cycled) == (10, 0, 0, False)


def test_fewer_captions_are_cycled_in_order_and_blank_lines_dropped():
    slots = fill_caption_slots(["a red bird", "", "   ", " a blue bird "], 5)
    assert slots.captions == (
        "a red bird",
        "a blue bird",
        "a red bird",
        "a blue bird",
        "a red bird",
    )
    assert (slots.present, slots.blank_dropped, slots.cycled) == (2, 2, True)


def test_extra_captions_are_dropped_and_counted():
    slots = fill_caption_slots([str(i) for i in range(12)], 10)
    assert slots.captions == tuple(str(i) for i in range(10))
    assert slots.truncated == 2 and not slots.cycled


def test_no_usable_caption_gives_no_slots():
    slots = fill_caption_slots(["", " \t"], 10)
    assert slots.captions == () and slots.present == 0 and slots.blank_dropped == 2
    assert not slots.cycled


def test_slots_must_be_positive():
    with pytest.raises(ValueError, match="slots"):
        fill_caption_slots(["a"], 0)

"""An image's captions -> exactly `slots` captions, the rule for caption files that are short.

Reed et al.'s text_c10 files hold 10 captions per image, one per embedding row. When a file
holds fewer, blank lines are dropped and the remaining captions are repeated in order (cycled)
until the slots are full: every embedding row then comes from a real human caption of this
image, and rows i and i + k (k = captions present) are the same caption. Extra captions beyond
`slots` are dropped. An image with no non-blank caption cannot be embedded: `captions` is empty
and the caller skips the image, counting why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable


@dataclasses.dataclass(frozen=True)
class CaptionSlots:
    captions: tuple[str, ...]  # exactly `slots` captions, or () when there are none to use
    present: int  # non-blank captions found
    blank_dropped: int  # blank (empty or whitespace-only) captions removed
    truncated: int  # non-blank captions beyond `slots`, dropped

    @property
    def cycled(self) -> bool:
        """Some captions appear more than once because fewer than `slots` were present."""
        return 0 < self.present < len(self.captions)


def fill_caption_slots(captions: Iterable[str], slots: int) -> CaptionSlots:
    if slots < 1:
        raise ValueError(f"slots must be positive, got {slots}")
    captions = [c.strip() for c in captions]
    kept = [c for c in captions if c]
    blank = len(captions) - len(kept)
    if not kept:
        return CaptionSlots((), 0, blank, 0)
    filled = tuple(kept[i % len(kept)] for i in range(slots))
    return CaptionSlots(filled, len(kept), blank, max(0, len(kept) - slots))

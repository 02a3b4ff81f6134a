"""Mistakes a user can fix: a bad flag or `--set`, a missing folder, malformed data, a full disk.

Raise a `UserError` (or a subclass) where the mistake is detected, with a message that names the
thing (file and line, config field, flag) and what to do. The `stackgan` command prints such an
error as one line and exits with code 2, and so a full disk met anywhere in a command (a
checkpoint, an export: `disk_full`); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import re

# the text of an OS error that a Beam runner or TensorFlow passed on: its "[Errno 28] ..." part
# when it kept one (Beam), else the line that says it (TensorFlow's file errors)
_NO_SPACE_TEXT = (
    re.compile(rf"\[Errno {errno.ENOSPC}\][^\[\]\n]*"),
    re.compile(r"[^\n]*No space left on device[^\n]*"),
)


class UserError(Exception):
    """An error the user can fix; its message is the whole story (no traceback needed)."""


def disk_full(error: BaseException) -> str | None:
    """What could not be written when `error` (or an error it was raised from) is a full disk:
    an OSError with ENOSPC, or the text of one that a Beam runner or TensorFlow passed on;
    None otherwise."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            return str(cause)
        for pattern in _NO_SPACE_TEXT:
            match = pattern.search(str(cause))
            if match:
                return match.group(0).strip()
        cause = cause.__cause__ or cause.__context__
    return None

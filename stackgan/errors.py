"""Mistakes a user can fix: a bad flag or `--set`, a missing folder, malformed data, a full disk.

Raise a `UserError` (or a subclass) where the mistake is detected, with a message that names the
thing (file and line, config field, flag) and what to do. The `stackgan` command prints such an
error as one line and exits with code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; its message is the whole story (no traceback needed)."""

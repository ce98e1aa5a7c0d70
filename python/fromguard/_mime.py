"""Header fields and a body warning added to a raw message, changing nothing else.

The rewrite is the Rust core's (``fromguard::mime``, called without the GIL; text
parts' charsets are Python's codecs). Its pure-Python reference,
``fromguard.reference.mime``, says where the warning goes and why, and gives the same
bytes and notes.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

from ._core import _body_start, _rewrite
from ._warning import HTML_STYLE, Rewrite, WarningText, folded_field, html_block, new_boundary

__all__ = [
    "HTML_STYLE",
    "Rewrite",
    "WarningText",
    "body_start",
    "folded_field",
    "html_block",
    "new_boundary",
    "rewrite",
]


def rewrite(
    raw: bytes,
    headers: Sequence[Tuple[str, str]] = (),
    warning: Optional[WarningText] = None,
    *,
    body_only: bool = False,
    boundary: Optional[bytes] = None,
) -> Rewrite:
    """Add ``headers`` (name, value; ASCII, empty values skipped) at the top of the header
    block and, if given, prepend ``warning`` to the main text parts. Without either the
    message is returned as it is (the same object). ``body_only``: the header block must
    stay as it is (the caller changes fields through its MTA), so the message is never
    wrapped. ``boundary``: that of a wrapping multipart/mixed (a new random one if None,
    drawn only when the message is wrapped)."""
    message, notes, warned = _rewrite(raw, headers, warning, body_only=body_only, boundary=boundary)
    return Rewrite(message, notes, warned)


def body_start(raw: bytes) -> int:
    """Where the message's body starts: after the empty line that ends its header block
    (the end of ``raw`` when there is none)."""
    return _body_start(raw)

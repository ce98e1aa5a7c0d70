"""Header fields and a body warning added to a raw message, changing nothing else.

The rewrite is the Rust core's (``fromguard::mime``, called without the GIL; text
parts' charsets are Python's codecs). Its pure-Python reference,
``fromguard.reference.mime``, says where the warning goes and why, and gives the same
bytes and notes. Here: the types both return, the pieces both use, and the call.
"""

from __future__ import annotations

import html
import os
from typing import List, NamedTuple, Optional, Sequence, Tuple

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

HTML_STYLE = "border:1px solid #b00000;padding:4px 8px;background:#fff4f4;color:#600000"


class WarningText(NamedTuple):
    """The warning to prepend: ``text`` (lines separated by ``\\n``) and ``ascii_text``,
    what a plain-text part gets when its charset cannot represent ``text``."""

    text: str
    ascii_text: str


class Rewrite(NamedTuple):
    """The rewritten message, what the caller should know about it (parts left alone and
    why, the warning put in a part of its own and why), and how many parts received the
    warning."""

    message: bytes
    notes: Tuple[str, ...]
    warned: int


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
    wrapped. ``boundary``: that of a wrapping multipart/mixed (a new random one if None)."""
    from ._core import _rewrite

    message, notes, warned = _rewrite(
        raw, tuple(headers), warning, body_only=body_only, boundary=boundary or new_boundary()
    )
    return Rewrite(message, notes, warned)


def body_start(raw: bytes) -> int:
    """Where the message's body starts: after the empty line that ends its header block
    (the end of ``raw`` when there is none)."""
    from ._core import _body_start

    return _body_start(raw)


def new_boundary() -> bytes:
    """A boundary for a wrapping multipart/mixed that no message holds by chance."""
    return b"fromguard-" + os.urandom(16).hex().encode("ascii")


def html_block(text: str) -> str:
    """The HTML form of the warning: one escaped paragraph, a ``<br>`` and a source line
    per line of the text (so that no source line outgrows the 998-octet limit)."""
    body = "<br>\n".join(html.escape(line, quote=False) for line in text.split("\n"))
    return f'<p style="{HTML_STYLE}">{body}</p>'


def folded_field(name: str, value: str, eol: bytes) -> bytes:
    """One header field, folded at spaces to keep lines within 78 characters."""
    prefix = name + ":"
    lines: List[str] = []
    current = prefix
    for word in value.split():
        if len(current) + 1 + len(word) > 78 and current != prefix:
            lines.append(current)
            current = ""
        current += " " + word
    lines.append(current)
    return eol.join(line.encode("ascii") for line in lines) + eol

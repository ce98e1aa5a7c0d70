"""The warning the MIME rewrite prepends and what a rewrite returns, with the pieces of
the rewrite that are the same in both engines: the Rust core's (``fromguard._mime``) and
the pure-Python reference (``fromguard.reference.mime``, which runs without the
extension, hence this module of its own)."""

from __future__ import annotations

import html
import os
from typing import List, NamedTuple, Tuple

__all__ = ["HTML_STYLE", "Rewrite", "WarningText", "folded_field", "html_block", "new_boundary"]

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

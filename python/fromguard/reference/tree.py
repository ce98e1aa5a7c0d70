"""The grammar's output in the pure-Python reference (``rust/core/src/tree.rs``).

The parser (``parser.py``) fills a ``Tree`` while it reports findings to the sink
(``findings.py``); the deception analysis (``deception.py``) then reads the tree and
reports to the same sink, never reading the findings back. What the analysis needs to
know of a reported finding is therefore kept here too, appended at the place the grammar
reports it:

- ``rejected``: the span of each ``text-after-address`` and ``no-address``, of each list
  element without a mailbox (from its "<" on; in place of the spans rejected inside it), of
  each addr-spec whose local part is words without a period between
  (``space-in-local-part``), of each addr-spec the grammar could not recover (no local
  part or domain, a broken domain), and of the text skipped inside angle brackets after the
  addr-spec: text a lenient parser reads otherwise;
- ``encoded_words``: ``(start, end, code)`` of each ``encoded-word``,
  ``encoded-word-in-quoted-string``, ``encoded-word-in-address``,
  ``encoded-word-not-delimited``, ``encoded-word-unknown-charset`` and
  ``encoded-word-bad-encoding``, the lexer's included;
- ``routes``: the span of each ``obs-route``;
- ``backslashes``: where each backslash outside quotes, comments and literals stands
  (``backslash-outside-quotes``), in input order.

All lists are in the order the grammar produced them.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from .._model import Mailbox
from .lexer import Token

Span = Tuple[int, int]


class Tree:
    """What the grammar read in ``data[:end]`` (``end`` stops at MAX_INPUT_BYTES)."""

    __slots__ = (
        "backslashes",
        "data",
        "decoded",
        "elements",
        "encoded_words",
        "end",
        "mailboxes",
        "phrases",
        "rejected",
        "routes",
        "tokens",
    )

    def __init__(self, data: bytes, end: int) -> None:
        self.data = data
        self.end = end
        self.tokens: List[Token] = []  # a comment's decoded text is its token's ``text``
        self.mailboxes: List[Mailbox] = []  # those returned, at most MAX_MAILBOXES
        # Each kept mailbox's list element, from after the comma before it to the comma
        # after it: what a comment or a display name there belongs to.
        self.elements: List[Span] = []
        self.phrases: List[Tuple[int, int, str]] = []  # every display name read: span, text
        self.decoded: Dict[Span, str] = {}  # each encoded-word the grammar decoded, by span
        self.rejected: List[Span] = []
        self.encoded_words: List[Tuple[int, int, str]] = []
        self.routes: List[Span] = []
        self.backslashes: List[int] = []

"""The result types shared by the Rust-backed API and the pure-Python reference.

One definition serves both, so that a result from ``fromguard.parse`` and one from
``fromguard.reference.parse`` compare equal field by field. Spans are byte offsets
``[start, end)`` into the UTF-8 input.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, Optional, Protocol, Tuple

Span = Tuple[int, int]


class NamedIntEnum(enum.IntEnum):
    """An ordered enum that prints as its name (``print(r.verdict)`` shows ``VALID``, as
    it did before Python 3.11 made IntEnum print its number) and still compares, sorts
    and formats numerically like an int (``f"{v:d}"``, ``v > 1``)."""

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        # A numeric presentation type keeps the number; anything else formats the name.
        if spec[-1:] in tuple("bcdeEfFgGnoxX%"):
            return int.__format__(self, spec)
        return format(self.name, spec)


class Severity(NamedIntEnum):
    """How much a finding matters, ordered."""

    INFO = 0
    LEGACY = 1
    DECEPTIVE = 2
    INVALID = 3


class Verdict(NamedIntEnum):
    """The worst severity present (``INFO`` alone gives ``VALID``): the risk a gateway acts on."""

    VALID = 0
    LEGACY = 1
    DECEPTIVE = 2
    INVALID = 3


class Syntax(NamedIntEnum):
    """How the value stands against the grammar under the profile."""

    STRICT = 0
    OBSOLETE = 1
    INVALID = 2


class Finding(NamedTuple):
    """One observation about the value: a stable code, its severity and where it is."""

    code: str
    severity: Severity
    start: int
    end: int
    message: str


class Mailbox(NamedTuple):
    """One mailbox of the list, with its parts decoded and their byte spans."""

    display_name: Optional[str]
    local_part: str
    domain: str
    addr_spec: str
    route: Tuple[str, ...]
    comments: Tuple[str, ...]
    group: Optional[str]
    span: Span
    display_name_span: Optional[Span]
    local_part_span: Span
    domain_span: Span


class Shadow(NamedTuple):
    """An address-like string a lenient client could show or use instead of the real
    addr-spec: where it came from (``source``) and the byte span of that text."""

    address: str
    source: str
    start: int
    end: int


class ParsedValue(Protocol):
    """What both ``fromguard.FromHeader`` and ``fromguard.reference.FromHeader`` offer."""

    @property
    def value(self) -> bytes: ...
    @property
    def verdict(self) -> Verdict: ...
    @property
    def syntax(self) -> Syntax: ...
    @property
    def mailboxes(self) -> Tuple[Mailbox, ...]: ...
    @property
    def address(self) -> Optional[str]: ...
    @property
    def findings(self) -> Tuple[Finding, ...]: ...
    @property
    def codes(self) -> Tuple[str, ...]: ...
    @property
    def shadows(self) -> Tuple[Shadow, ...]: ...
    def explain(self) -> str: ...


class HeaderField(NamedTuple):
    """One checked field of a message: its name as written, the span of the whole field
    in the message, where its value starts (add it to the result's spans), and the parse
    of the value."""

    name: str
    start: int
    end: int
    value_start: int
    result: ParsedValue


class MessageCheck(NamedTuple):
    """The check of a message's header block: the message's verdict (the worst of its
    own findings and of every field's, but the field findings the header block explains:
    ``list-attribution``, ``sender-among-authors``), the checked fields in order, the
    message-level findings (spans into the raw message, at most MAX_FINDINGS and a
    ``too-many-findings``), every message-level code reported (past that cap too) in
    catalogue order, and the names of the rules a ``RuleSet`` passed to the check
    matched."""

    verdict: Verdict
    fields: Tuple[HeaderField, ...]
    findings: Tuple[Finding, ...]
    codes: Tuple[str, ...]
    rules: Tuple[str, ...] = ()

    def field(self, name: str) -> Optional[HeaderField]:
        """The first checked field of that name (case-insensitive)."""
        wanted = name.lower()
        return next((f for f in self.fields if f.name.lower().rstrip(" \t") == wanted), None)

"""The pure-Python reference implementation of fromguard's grammar.

It needs no compiled extension and is written for clarity, not speed: the Rust core is a
port of it, and the test suite proves both give the same verdict, syntax, mailboxes and
findings on every case file and on generated values. Use it to read how a value is
judged, to check the core, or where the extension cannot be installed.

It has the core's shape: the grammar (``parser.py``, with ``lexer.py`` and
``encoded_word.py``) fills a ``Tree`` (``tree.py``) and reports to a ``Findings`` sink
(``findings.py``); the deception analysis (``deception.py``, with ``lookalike.py``)
reads the tree and reports to the same sink. ``message.py`` checks a whole header block
with a sink of its own.
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Tuple, Union

from .._model import Finding, Mailbox, Shadow, Syntax, Verdict
from .deception import analyse
from .findings import Findings
from .parser import parse_tree

__all__ = ["FromHeader", "parse", "parse_many"]

Value = Union[bytes, str]


class FromHeader:
    """The parse of one From field body (the same attributes as ``fromguard.FromHeader``)."""

    __slots__ = (
        "codes",
        "findings",
        "groups",
        "mailboxes",
        "shadows",
        "syntax",
        "utf8",
        "value",
        "verdict",
    )

    def __init__(
        self,
        value: bytes,
        utf8: bool,
        groups: bool,
        verdict: Verdict,
        syntax: Syntax,
        mailboxes: Tuple[Mailbox, ...],
        findings: Tuple[Finding, ...],
        shadows: Tuple[Shadow, ...],
        codes: Tuple[str, ...],
    ) -> None:
        self.value = value
        self.utf8 = utf8
        self.groups = groups
        self.verdict = verdict
        self.syntax = syntax
        self.mailboxes = mailboxes
        self.findings = findings
        self.shadows = shadows
        self.codes = codes  # every code reported, past the findings cap too

    @property
    def address(self) -> Optional[str]:
        """The single author's addr-spec, or None when there is not exactly one mailbox."""
        return self.mailboxes[0].addr_spec if len(self.mailboxes) == 1 else None

    def explain(self) -> str:
        """The value with a caret line under each finding."""
        from .._explain import explain

        return explain(self)

    def __repr__(self) -> str:
        return (
            f"<FromHeader verdict={self.verdict.name} syntax={self.syntax.name}"
            f" address={self.address!r}>"
        )


def to_bytes(value: Value) -> bytes:
    """The bytes of a value: str is encoded as UTF-8, with surrogateescape so that text
    decoded that way by the ``email`` package gives back its original bytes."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass")
    raise TypeError(f"expected bytes or str, not {type(value).__name__}")


def parse(value: Value, *, utf8: bool = True, groups: bool = False) -> FromHeader:
    """Parse a From field body (the text after ``From:``), folded or not."""
    data = to_bytes(value)
    findings = Findings()
    tree = parse_tree(data, utf8, groups, findings)
    shadows = analyse(tree, findings)
    return FromHeader(
        data,
        utf8,
        groups,
        Verdict(int(findings.worst_severity)),
        findings.worst_syntax,
        tuple(tree.mailboxes),
        findings.sorted_findings(),
        shadows,
        findings.codes(),
    )


def parse_many(
    values: Iterable[Value], *, utf8: bool = True, groups: bool = False
) -> List[FromHeader]:
    """``parse`` over many values."""
    return [parse(value, utf8=utf8, groups=groups) for value in values]

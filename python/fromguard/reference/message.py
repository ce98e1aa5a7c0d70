"""The header block of a whole message, for the pure-Python reference.

    message  = (fields / obs-fields) [CRLF body]          (RFC 5322 §3.5)
    field    = field-name ":" unstructured CRLF;  field-name = 1*ftext (%d33-57 / %d59-126)
    obs-optional = field-name *WSP ":" unstructured CRLF   (§4.5)

``check_message(raw)`` finds the header block (after a leading mbox ``From `` line, up to
the first empty line), splits it into fields (CRLF or LF line ends, folded lines), parses
every ``From``, ``Sender``, ``Resent-From`` and ``Reply-To`` field with the field grammar,
and reports what only the whole block shows: no From, several From fields however they
are spelled, several authors without Sender, Sender or Resent-From naming someone else,
and the block's own line faults. The body is never read.

The message-level findings go to a ``Findings`` sink (``findings.py``) of their own, with
the cap and the code set of a value's: ``MessageCheck.codes`` holds the message-level
codes, past the cap too (each field's result has its own).
"""

from __future__ import annotations

from typing import Callable, List, NamedTuple

from .._model import HeaderField, MessageCheck, Severity, Verdict
from . import parse
from .findings import Findings
from .limits import MAX_CHECKED_FIELDS, MAX_LINE_OCTETS
from .psl import organisational_domain

CHECKED_FIELDS = ("from", "sender", "resent-from", "reply-to")

Report = Callable[[str, int, int], None]


class _Line(NamedTuple):
    start: int  # first byte
    end: int  # end of the content, before CR LF / LF


def _lines(raw: bytes, start: int) -> List[_Line]:
    """The header block's lines from ``start`` up to the first empty line."""
    lines: List[_Line] = []
    i = start
    while i < len(raw):
        newline = raw.find(b"\n", i)
        next_start = len(raw) if newline < 0 else newline + 1
        end = len(raw) if newline < 0 else newline
        if end > i and raw[end - 1] == 0x0D:
            end -= 1
        if end == i:
            break  # the empty line that ends the header block
        lines.append(_Line(i, end))
        i = next_start
    return lines


def check_message(raw: bytes, *, utf8: bool = True, groups: bool = False) -> MessageCheck:
    """Check the header block of ``raw`` (a whole message, or just its header)."""
    if not isinstance(raw, bytes):
        raise TypeError(f"expected bytes, not {type(raw).__name__}")
    findings = Findings()
    report = findings.report

    start = 0
    if raw.startswith(b"From ") and not raw[5:].lstrip(b" \t").startswith(b":"):
        newline = raw.find(b"\n")
        start = len(raw) if newline < 0 else newline + 1
        report("mbox-from-line", 0, start)
    lines = _lines(raw, start)
    for line in lines:
        if line.end - line.start > MAX_LINE_OCTETS:
            report("line-too-long", line.start + MAX_LINE_OCTETS, line.end)
        for i in range(line.start, line.end):
            if raw[i] == 0:
                report("nul", i, i + 1)
            elif raw[i] == 0x0D:
                report("bare-cr", i, i + 1)

    # Group the lines into fields: a line starting with SP or HTAB continues the field.
    fields: List[HeaderField] = []
    fields_left_out = False
    index = 0
    while index < len(lines):
        first = lines[index]
        last = index
        while last + 1 < len(lines) and raw[lines[last + 1].start] in b" \t":
            last += 1
        if raw[first.start] in b" \t":
            # A folded line with no field before it (the block starts with white space).
            report("malformed-header-line", first.start, lines[last].end)
            _report_hidden_fields(raw, lines[index : last + 1], report)
            index = last + 1
            continue
        colon = raw.find(b":", first.start, first.end)
        name_end = colon
        value_start = colon + 1
        if colon < 0:
            # No colon on the first line: a name folded before its colon, or junk.
            folded = next(
                (
                    k
                    for k in range(index + 1, last + 1)
                    if raw.find(b":", lines[k].start, lines[k].end) >= 0
                ),
                None,
            )
            if (
                folded is None
                or raw[lines[folded].start : lines[folded].end].lstrip(b" \t")[:1] != b":"
            ):
                report("malformed-header-line", first.start, lines[last].end)
                index = last + 1
                continue
            report("folded-field-name", first.start, lines[folded].end)
            name_end = first.end
            value_start = raw.find(b":", lines[folded].start) + 1
        else:
            _report_hidden_fields(raw, lines[index + 1 : last + 1], report)
        raw_name = raw[first.start : name_end]
        name = raw_name.rstrip(b" \t")
        if name != raw_name and colon >= 0:
            report("obs-field-name-space", first.start + len(name), name_end)
        checked = name.decode("latin-1").lower() in CHECKED_FIELDS
        if checked and len(fields) == MAX_CHECKED_FIELDS:
            if not fields_left_out:
                report("too-many-fields", first.start, lines[last].end)
                fields_left_out = True
        elif checked:
            value = raw[value_start : lines[last].end]
            result = parse(value, utf8=utf8, groups=groups)
            fields.append(
                HeaderField(
                    name.decode("utf-8", "replace"),
                    first.start,
                    lines[last].end,
                    value_start,
                    result,
                )
            )
        index = last + 1

    _report_authors(fields, start, report)
    worst = max([findings.worst_severity, *(Severity(int(f.result.verdict)) for f in fields)])
    return MessageCheck(
        Verdict(int(worst)), tuple(fields), findings.sorted_findings(), findings.codes()
    )


def _report_hidden_fields(raw: bytes, continuations: List[_Line], report: Report) -> None:
    """A folded line like `` From: x`` is part of the field above, but parsers that trim
    white space first take it for a field: report it where the name is a checked one."""
    for line in continuations:
        text = raw[line.start : line.end].lstrip(b" \t")
        colon = text.find(b":")
        if colon > 0 and text[:colon].rstrip(b" \t").decode("latin-1").lower() in CHECKED_FIELDS:
            report("field-in-continuation", line.start, line.end)


def _report_authors(fields: List[HeaderField], block_start: int, report: Report) -> None:
    """From exactly once; Sender at most once, and required with several authors;
    Sender and Resent-From compared with From by organisational domain."""

    def named(name: str) -> List[HeaderField]:
        return [f for f in fields if f.name.lower().rstrip(" \t") == name]

    froms, senders = named("from"), named("sender")
    if not froms:
        report("no-from", block_start, block_start)
        return
    for extra in froms[1:]:
        report("several-from-fields", extra.start, extra.end)
    for extra in senders[1:]:
        report("several-sender-fields", extra.start, extra.end)
    author = froms[0]
    if len(author.result.mailboxes) > 1 and not senders:
        report("several-authors-without-sender", author.start, author.end)
    # DMARC's relaxed alignment (RFC 7489 §3.2): another mailbox of the author's own
    # organisation (a secretary, the list server of the same domain) is no news.
    own = {organisational_domain(m.domain) for m in author.result.mailboxes}
    for code, others in (
        ("sender-differs", senders[:1]),
        ("resent-from-differs", named("resent-from")),
    ):
        for other in others:
            if any(organisational_domain(m.domain) not in own for m in other.result.mailboxes):
                report(code, other.start, other.end)

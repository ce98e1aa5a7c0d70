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

A field is checked when its name reads as a checked one to some parser: as written, or
once trimmed the way lenient parsers trim names (``_reads_as``). Such a disguised name is
reported and counts as that field (a second From is several From fields).

Some field findings are explained by the rest of the header block: a mailing list's credit
to the author in its own From (``list-attribution``), several authors with a Sender among
them (``sender-among-authors``). The field's result keeps its findings; the message verdict
is the worst of the message findings and of every field's findings but the explained ones
(a bare ``parse`` of the field keeps its verdict).

The message-level findings go to a ``Findings`` sink (``findings.py``) of their own, with
the cap and the code set of a value's: ``MessageCheck.codes`` holds the message-level
codes, past the cap too (each field's result has its own).
"""

from __future__ import annotations

import re
from typing import Callable, FrozenSet, Iterator, List, NamedTuple, Optional, Set, Tuple

from .._catalogue import CODE_ORDER, FINDINGS
from .._model import (
    Finding,
    HeaderField,
    Mailbox,
    MessageCheck,
    ParsedValue,
    Severity,
    Verdict,
)
from . import parse
from .deception import normalize_address
from .findings import Findings
from .limits import MAX_CHECKED_FIELDS, MAX_LINE_OCTETS
from .psl import organisation

CHECKED_FIELDS = ("from", "sender", "resent-from", "reply-to")

# What lenient parsers trim around a field name besides the bytes up to SP (JavaMail's
# ``InternetHeaders`` trims names with Java's ``String.trim()``, which drops every
# character up to U+0020: controls, NUL, SP): the Unicode white space .NET's
# ``String.Trim()`` drops (NEL, NBSP, the Zs spaces, line and paragraph separators; in
# .NET Framework 3.5 also U+200B and the byte-order mark U+FEFF), in UTF-8, then NEL and
# NBSP as single Latin-1 bytes. Longer sequences first: ``C2 A0`` is one NBSP, not ``C2``
# and a Latin-1 one.
TRIMMED_AROUND_NAMES = (
    *(
        c.encode("utf-8")
        for c in "\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
        "\u2008\u2009\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
    ),
    b"\x85",
    b"\xa0",
)

# The fields that say which list a message came through (RFC 2369, RFC 2919).
LIST_FIELDS = (b"list-post", b"list-id")

# A field's line breaks of folding.
_FOLD = re.compile(rb"\r?\n")

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


def _is_ftext_name(name: bytes) -> bool:
    """ftext = %d33-57 / %d59-126 (RFC 5322 §3.6.8): printable ASCII but ":"."""
    return bool(name) and all(33 <= b <= 126 and b != 58 for b in name)


def _lenient_trim(name: bytes) -> bytes:
    """A field name as lenient parsers read it: trimmed at both ends of what they trim
    (``TRIMMED_AROUND_NAMES``). Python's ``email`` package trims nothing: it ends the
    header block at the first name outside ftext (and drops a ``From :`` after the first
    line as a misplaced mbox line), so that the fields after it are not there for it."""
    while name:
        if name[0] <= 0x20:
            name = name[1:]
            continue
        sequence = next((s for s in TRIMMED_AROUND_NAMES if name.startswith(s)), None)
        if sequence is None:
            break
        name = name[len(sequence) :]
    while name:
        if name[-1] <= 0x20:
            name = name[:-1]
            continue
        sequence = next((s for s in TRIMMED_AROUND_NAMES if name.endswith(s)), None)
        if sequence is None:
            break
        name = name[: len(name) - len(sequence)]
    return name


def _reads_as(name: bytes) -> Optional[str]:
    """The checked field a name reads as, as written or trimmed by a lenient parser
    (ASCII case ignored, as field names are compared)."""
    trimmed = _lenient_trim(name).lower()
    return next((c for c in CHECKED_FIELDS if trimmed == c.encode("ascii")), None)


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
    fields_read_as: List[str] = []
    lists: List[Tuple[bytes, bytes]] = []  # (name lower-cased, value unfolded)
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
        _report_field_name(name, first.start, value_start, report)
        if name.lower() in LIST_FIELDS:
            value = _FOLD.sub(b"", raw[value_start : lines[last].end]).strip(b" \t")
            lists.append((name.lower(), value))
        read_as = _reads_as(name)
        if read_as is not None and len(fields) == MAX_CHECKED_FIELDS:
            if not fields_left_out:
                report("too-many-fields", first.start, lines[last].end)
                fields_left_out = True
        elif read_as is not None:
            fields_read_as.append(read_as)
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

    roles = _Roles(fields, fields_read_as)
    sender_elsewhere = _report_authors(roles, start, report)
    _report_odd_from_sender(raw, roles, sender_elsewhere, report)
    author, explained = _explain(roles, lists, report)
    worst = max(
        [
            findings.worst_severity,
            *(
                _severity_without(f.result, explained if k == author else frozenset())
                for k, f in enumerate(fields)
            ),
        ]
    )
    return MessageCheck(
        Verdict(int(worst)), tuple(fields), findings.sorted_findings(), findings.codes()
    )


def decision_inputs(check: MessageCheck) -> Tuple[Tuple[Finding, ...], Tuple[str, ...]]:
    """What a policy's decision reads of a check (the core's ``MessageCheck::all_findings``
    and ``policy_codes``): every finding of the message, the fields' spans moved into it,
    ordered as a field's are (start, end, catalogue order); and the codes a policy
    matches, those of the findings in their order, then every other code the check
    reported, in catalogue order. Findings lists stop at a cap; the codes do not, so
    padding a value past the cap cannot hide a code from a policy."""
    found = list(check.findings)
    for field in check.fields:
        shift = field.value_start
        found.extend(
            Finding(f.code, f.severity, f.start + shift, f.end + shift, f.message)
            for f in field.result.findings
        )
    found.sort(key=lambda f: (f.start, f.end, CODE_ORDER[f.code]))
    codes = dict.fromkeys(f.code for f in found)
    reported = set(check.codes).union(*(field.result.codes for field in check.fields))
    codes.update(dict.fromkeys(sorted(reported - codes.keys(), key=CODE_ORDER.__getitem__)))
    return tuple(found), tuple(codes)


def _report_hidden_fields(raw: bytes, continuations: List[_Line], report: Report) -> None:
    """A folded line like `` From: x`` is part of the field above, but parsers that trim
    white space first take it for a field: report it where the name is a checked one."""
    for line in continuations:
        text = raw[line.start : line.end].lstrip(b" \t")
        colon = text.find(b":")
        if colon > 0 and _reads_as(text[:colon]) is not None:
            report("field-in-continuation", line.start, line.end)


def _report_field_name(name: bytes, start: int, value_start: int, report: Report) -> None:
    """A field name outside ftext (RFC 5322 §3.6.8), ``From\\xa0:`` or a byte-order mark
    before ``From:`` say, is no field to a strict parser and ends the header block for
    Python's ``email``; when a lenient parser's trimming makes a checked name of it, it is
    a field that some programs read and others do not: reported as disguised, and checked
    as that field."""
    if _is_ftext_name(name):
        return
    # An empty name is pointed at by its colon.
    end = start + len(name) if name else value_start
    report("malformed-field-name", start, end)
    if _reads_as(name) is not None:
        report("disguised-field-name", start, end)


def _field_name(raw: bytes, field: HeaderField) -> bytes:
    """A checked field's name as written: up to its colon, the white space or line break
    before the colon included."""
    return raw[field.start : max(field.value_start - 1, 0)]


class _Roles:
    """The checked fields sorted by the name lenient parsers read them as (see
    ``_reads_as``), once per message."""

    def __init__(self, fields: List[HeaderField], reads_as: List[str]) -> None:
        self.froms = [f for f, role in zip(fields, reads_as) if role == "from"]
        self.senders = [f for f, role in zip(fields, reads_as) if role == "sender"]
        self.resent = [f for f, role in zip(fields, reads_as) if role == "resent-from"]
        # The first From's index in the checked fields (-1 without one): the author field.
        self.author = reads_as.index("from") if "from" in reads_as else -1


def _mailbox_address(mailbox: Mailbox) -> str:
    return normalize_address(mailbox.local_part + "@" + mailbox.domain)


def _report_authors(roles: _Roles, block_start: int, report: Report) -> bool:
    """From exactly once; Sender at most once, and required with several authors;
    Sender and Resent-From compared with From by organisational domain. True when a
    Sender or Resent-From names another organisation than the From's."""
    if not roles.froms:
        report("no-from", block_start, block_start)
        return False
    for extra in roles.froms[1:]:
        report("several-from-fields", extra.start, extra.end)
    for extra in roles.senders[1:]:
        report("several-sender-fields", extra.start, extra.end)
    author = roles.froms[0]
    if len(author.result.mailboxes) > 1 and not roles.senders:
        report("several-authors-without-sender", author.start, author.end)
    checks = (("sender-differs", roles.senders[:1]), ("resent-from-differs", roles.resent))
    # DMARC's relaxed alignment (RFC 7489 §3.2): another mailbox of the author's own
    # organisation (a secretary, the list server of the same domain) is no news; at a
    # shared mailbox provider another mailbox is another person.
    own = {organisation(m.local_part, m.domain) for m in author.result.mailboxes}
    elsewhere = False
    for code, others in checks:
        for other in others:
            if any(organisation(m.local_part, m.domain) not in own for m in other.result.mailboxes):
                report(code, other.start, other.end)
                elsewhere = True
    return elsewhere


def _report_odd_from_sender(
    raw: bytes, roles: _Roles, sender_elsewhere: bool, report: Report
) -> None:
    """Outlook does not recognise a From written with more than its name before the colon
    (``From :``, a name folded before its colon, a disguised name) and shows the Sender
    instead (Chen, Paxson, Jiang, "Composition Kills", USENIX Security 2020, Fig. 6): with
    a Sender or Resent-From of another organisation than the From's (``sender_elsewhere``,
    from ``_report_authors``), the reader is shown that sender."""
    if not roles.froms:
        return
    author = roles.froms[0]
    if sender_elsewhere and _field_name(raw, author).lower() != b"from":
        report("odd-from-other-sender", author.start, author.end)


def _explain(
    roles: _Roles, lists: List[Tuple[bytes, bytes]], report: Report
) -> Tuple[int, FrozenSet[str]]:
    """The author field's findings that the rest of the header block explains: the author
    field's index in ``fields`` (-1 without one) and the explained codes, each reported
    with a message-level finding of its own."""
    if not roles.froms:
        return roles.author, frozenset()
    field = roles.froms[0]
    explained: Set[str] = set()
    if _report_list_attribution(field, lists, report):
        explained.add("address-in-display-name")
    if _report_sender_among_authors(field, roles.senders, report):
        explained.add("several-authors")
    return roles.author, frozenset(explained)


def _report_list_attribution(
    field: HeaderField, lists: List[Tuple[bytes, bytes]], report: Report
) -> bool:
    """A mailing list that rewrites From to its own address credits the author in the
    display name: Google Groups writes ``"'jane@example.com' via Group" <group@...>``
    (Gmail Help, "Extra info next to sender's name"), Mailman's ``from_is_list`` and Sympa
    "Jane Doe via List". With a List-Post naming that address or a List-Id under its
    domain (RFC 2369 §3.4, RFC 2919), and the credit's " via ", an address in the display
    name is that attribution, not a forged sender. Without the credit the reader is shown
    the address as the sender, whoever added the list fields."""
    mailboxes = field.result.mailboxes
    if len(mailboxes) != 1:
        return False
    mailbox = mailboxes[0]
    credits = mailbox.display_name is not None and " via " in mailbox.display_name
    if not credits or "address-in-display-name" not in field.result.codes:
        return False
    address = _mailbox_address(mailbox)
    under_domain = b"." + mailbox.domain.encode("utf-8").lower()
    is_list = any(
        (
            name == b"list-post"
            and any(
                to is not None and normalize_address(to.decode("utf-8", "replace")) == address
                for to in map(_mailto, _angle_contents(value))
            )
        )
        or (
            name == b"list-id"
            and any(i.lower().endswith(under_domain) for i in _angle_contents(value))
        )
        for name, value in lists
    )
    if is_list:
        report("list-attribution", field.start, field.end)
    return is_list


def _report_sender_among_authors(
    field: HeaderField, senders: List[HeaderField], report: Report
) -> bool:
    """Several authors and a Sender that is one of them: what RFC 5322 §3.6.2 asks for
    (the Sender is the author responsible for sending), and what Exchange Online accepts
    where it rejects several authors alone."""
    if len(field.result.mailboxes) < 2:
        return False
    if not senders or len(senders[0].result.mailboxes) != 1:
        return False
    sender = senders[0]
    address = _mailbox_address(sender.result.mailboxes[0])
    among = any(_mailbox_address(m) == address for m in field.result.mailboxes)
    if among:
        report("sender-among-authors", sender.start, sender.end)
    return among


def _angle_contents(value: bytes) -> Iterator[bytes]:
    """What each ``<...>`` of a field value holds, left to right."""
    i = 0
    while True:
        opening = value.find(b"<", i)
        if opening < 0:
            return
        closing = value.find(b">", opening + 1)
        if closing < 0:
            return
        yield value[opening + 1 : closing]
        i = closing + 1


def _mailto(url: bytes) -> Optional[bytes]:
    """The address of a ``mailto:`` URL (RFC 6068), without its ``?`` fields."""
    url = url.strip(b" \t")
    if url[:7].lower() != b"mailto:":
        return None
    return url[7:].split(b"?", 1)[0]


def _severity_without(result: ParsedValue, explained: FrozenSet[str]) -> Severity:
    """A field's worst severity without the codes the header block explains."""
    if not explained:
        return Severity(int(result.verdict))
    return max(
        (FINDINGS[c].severity for c in result.codes if c not in explained),
        default=Severity.INFO,
    )

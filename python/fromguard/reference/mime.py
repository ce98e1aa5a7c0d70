"""Header fields and a body warning added to a raw message, changing nothing else: the
pure-Python reference of the Rust core's rewrite (``fromguard::mime``, which
``fromguard._mime.rewrite`` calls). Both give the same bytes and notes; the tests
compare them on every message file and on generated messages.

A gateway must deliver the message it received: re-serialising it with the ``email``
package rewrites folding, line ends, boundaries and encodings, which breaks DKIM body
hashes and S/MIME signatures for no reason and makes the change impossible to audit.
So this module works on the bytes: it reads the MIME structure (the few header fields it
needs read as the ``email`` package reads them, multipart bodies split at their
delimiter lines found with ``bytes.find``), decides where the warning goes, and splices
new bytes in at a few offsets. Every byte outside those insertions is the original's
(but for the Content-* fields of a wrapped message, below, which move to its inner part).

Where the warning goes: the top-level part if it is text/plain or text/html; in a
``multipart/alternative`` every text alternative (an HTML one inside
``multipart/related`` too); in any other multipart (``mixed``, ``related``, ``report``)
only its main body, the first inline part that can hold text. Attachments never change.
``multipart/signed``, ``multipart/encrypted`` and ``application/pkcs7-mime`` are left
alone: a warning inside them would break the signature or could not be read, and the
caller is told so in the notes.

Each text part gets the warning in its own Content-Transfer-Encoding and charset, so
that a reader sees it and a parser decodes it: 7bit, 8bit and binary raw;
quoted-printable encoded and spliced in where the decoded text puts it; base64 by
re-encoding only the line that holds the insertion point (the warning padded with up to
two spaces to whole 3-byte groups, so every later line keeps its bytes). A plain-text
part whose charset cannot represent the warning gets its ASCII form; an HTML part gets
character references instead. Only what the insertion point needs is decoded, with the
standard library's C codecs (``binascii``).

A text part that cannot be rewritten safely (base64 that does not decode strictly up to
the insertion point, an unknown transfer encoding, a charset that is not
ASCII-compatible, nesting or a part count past the limits below, a multipart whose
boundary is missing, a header block of the message or of the part that the ``email``
package ends before its empty line) must not hide the warning from a reader who sees
that part anyway: the warning then goes into a new first text part, in the top-level
``multipart/mixed`` if there is one, else with the whole message wrapped in a new
``multipart/mixed`` (its ``Content-Type`` first in the header block, after the added
fields; the old ``Content-*`` fields moved to the inner part); the notes say why and
how. A caller that may change only the body (a milter) gets no
wrapping: the note says the warning was not added.

Parameters are read as the email package reads them, but for one case both engines
decline rather than copy the email package's decoding: a ``boundary``, ``charset`` or
``start`` parameter that RFC 2231 parts (``name*=``, ``name*0=``, ...) could decide makes
the part unwritable ("an RFC 2231 ... parameter").
"""

from __future__ import annotations

import binascii
import codecs
import re
from email import utils as email_utils
from email.message import Message
from email.message import _parseparam as _parse_parameters  # type: ignore[attr-defined]
from email.utils import unquote
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from .._warning import Rewrite, WarningText, folded_field, html_block, new_boundary

__all__ = [
    "BODY_TAG_LIMIT",
    "HTML_HEAD_LIMIT",
    "MAX_BASE64_LINE",
    "MAX_DEPTH",
    "MAX_PARTS",
    "MAX_WARNED_PARTS",
    "body_start",
    "rewrite",
]

MAX_DEPTH = 32
"""How deep multiparts are searched for the main body (a message can nest without end)."""

MAX_PARTS = 1000
"""Delimiter lines read in one message, all multiparts together."""

MAX_WARNED_PARTS = 16
"""Text parts that get the warning in place (every alternative of a
``multipart/alternative``); more, and the warning gets a part of its own."""

HTML_HEAD_LIMIT = 256 << 10
"""Bytes of an HTML part, as written, searched for ``<body>``; past them the warning goes
first."""

MAX_BASE64_LINE = 998
"""Longer base64 lines (RFC 2045 allows 76, RFC 5322 998) are not rewritten: a line is
decoded and encoded whole."""

BODY_TAG_LIMIT = 16 << 10
"""Bytes a ``<body ...>`` tag may span; a longer one counts as none."""

_UNTOUCHABLE = {
    "multipart/signed": "signed part left untouched: multipart/signed",
    "multipart/encrypted": "encrypted part left untouched: multipart/encrypted",
    "application/pkcs7-mime": "signed or encrypted part left untouched: application/pkcs7-mime",
    "application/x-pkcs7-mime": (
        "signed or encrypted part left untouched: application/x-pkcs7-mime"
    ),
}

_RAW_ENCODINGS = ("7bit", "8bit", "binary")

_UTF8_BOM = b"\xef\xbb\xbf"

# The email package's reading of a header block (feedparser's headerRE and line breaks).
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)?")
_FIELD = re.compile(
    rb"([\x21-\x39\x3b-\x7e]*):[^\r\n]*(?:\r\n|\r|\n|\Z)(?:[ \t][^\r\n]*(?:\r\n|\r|\n|\Z))*"
)
# A line the email package takes into a header block (feedparser's headerRE).
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[ \t]")
_READ_FIELDS = frozenset(
    (b"content-type", b"content-transfer-encoding", b"content-disposition", b"content-id")
)

_EMPTY_LINE = re.compile(rb"\n\r?\n")
_MBOX_FROM_FIELD = re.compile(rb"From [ \t]*:")  # a field named From, not an mbox line

# A Content-Type parameter the email package reads as written (see _parameter).
# White space is what str.strip() strips (\s: also U+001C to U+001F, U+0085, U+00A0...),
# as the email package strips names and values.
_PARAMETER = re.compile(r';\s*([A-Za-z0-9_.+-]+)\s*=\s*("[^"\\;\r\n]*"|[^";\\\s]*)\s*')
_SIMPLE_PARAMETERS = re.compile(rf"(?:{_PARAMETER.pattern})*;?\s*")

_BODY_OPEN = re.compile(rb"<body[>/ \t\r\n\f]")  # searched in lowered text: fast
_BODY_SEARCH_WINDOW = 4096
_TAG_REST = re.compile(rb"""[^>"']*(?:(?:"[^"]*"|'[^']*')[^>"']*)*>""")

_QP_FIRST_CHUNK = 2048
"""Encoded bytes of a quoted-printable part decoded first (the ``<body>`` search)."""

_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BASE64_SPACE = b" \t\r\n\x0b\x0c"
_EARLY_IN_PLACE = "warning in place, which those readers may not show (only the body may change)"
"""The note on a warning left in place, where only the body may change, in a message whose
header block the email package ends early."""
_BAD_BASE64 = "a text part whose base64 does not decode strictly, in regular lines"
_SPACE_RUN = re.compile(rb"[ \t\r\n\x0b\x0c]*")
_BASE64_FIRST_LINES = 16
"""Lines of a base64 HTML part decoded first (the ``<body>`` search)."""
_BASE64_HEAD_READ = HTML_HEAD_LIMIT + BODY_TAG_LIMIT
"""Decoded bytes of a base64 HTML part past which no ``<body>`` tag can end within the
limits: where its search stops."""


class _Entity(NamedTuple):
    """One MIME entity inside the raw message: ``raw[start:body_start]`` is its header
    block with the empty line, ``raw[body_start:end]`` its body. ``has_body`` is false when
    no empty line ends the header block (then ``body_start == end``). ``fields`` are the
    spans ``(start, end, lowercase name)`` of its header fields, each with its line end.
    ``ctype`` and ``disposition`` are what ``headers`` says, read once."""

    start: int
    body_start: int
    end: int
    eol: bytes
    headers: Message
    has_body: bool
    fields: Tuple[Tuple[int, int, bytes], ...]
    ctype: str
    disposition: Optional[str]


class _Unwritable(Exception):
    """A part the warning cannot be written into safely; the message says why."""


Edit = Tuple[int, int, bytes]  # replace raw[start:end] by the bytes


def rewrite(
    raw: bytes,
    headers: Sequence[Tuple[str, str]] = (),
    warning: Optional[WarningText] = None,
    *,
    body_only: bool = False,
    boundary: Optional[bytes] = None,
) -> Rewrite:
    """Add ``headers`` (name, value; ASCII, empty values skipped) at the top of the header
    block (a wrapping multipart's fields after them) and, if given, prepend ``warning`` to
    the main text parts. Without either the message is returned as it is. ``body_only``:
    the header block must stay as it is (the caller changes fields through its MTA), so
    the message is never wrapped.
    ``boundary``: that of a wrapping multipart/mixed (a new random one if None)."""
    notes: List[str] = []
    edits: List[Edit] = []
    top = _top_start(raw)
    eol = _eol(raw, top, len(raw), b"\r\n")
    fields = b"".join(folded_field(name, value, eol) for name, value in headers if value)
    if fields:
        # After lines of white space that open the header block: in front of them, the
        # added fields would take them in as continuation lines.
        head = _past_continuations(raw, top, len(raw))
        edits.append((head, head, fields))
    warned = 0
    if warning is not None:
        entity = _entity(raw, top, len(raw), eol)
        if not entity.has_body:
            notes.append("message has no body: warning not added")
        else:
            reader = _Reader(raw, notes)
            try:
                targets = reader.targets(entity, 0)
                # Wrapped, every reader sees the warning part; where only the body may
                # change, the warning in place is still what most readers show.
                ended_early = _read_early(raw, entity, targets)
                if ended_early is not None and not body_only:
                    raise _Unwritable(ended_early)
                found = [_warn_part(raw, part, warning, notes) for part in targets]
                if _overlapping(found):
                    raise _Unwritable("text parts that overlap (a multipart not closed)")
                if ended_early is not None:
                    notes.append(f"{ended_early}: {_EARLY_IN_PLACE}")
            except _Unwritable as error:
                del notes[:]
                placed = _warning_part_edits(
                    raw, entity, warning, str(error), notes, body_only, boundary or new_boundary()
                )
                edits.extend(placed)
                warned = 1 if placed else 0
            else:
                edits.extend(found)
                warned = len(found)
                if not targets and not notes:
                    notes.append("no text part for the warning")
    if not edits:
        return Rewrite(raw, tuple(notes), 0)
    return Rewrite(_apply(raw, edits), tuple(notes), warned)


def _overlapping(edits: List[Edit]) -> bool:
    """Whether two edits overlap: two targets share bytes when a multipart whose close
    delimiter is missing reads its last part up to its parent's end, over the parts of
    the parent that follow it."""
    position = 0
    for start, end, _ in sorted(edits, key=lambda edit: (edit[0], edit[1])):
        if start < position:
            return True
        position = end
    return False


def _apply(raw: bytes, edits: List[Edit]) -> bytes:
    """The message with the edits made: one copy, the kept stretches read in place."""
    view = memoryview(raw)
    out: List[Union[bytes, memoryview]] = []
    position = 0
    for start, end, data in sorted(edits, key=lambda edit: (edit[0], edit[1])):
        if start < position:
            raise AssertionError("overlapping edits")  # a bug here, never the input's
        out.append(view[position:start])
        out.append(data)
        position = end
    out.append(view[position:])
    return b"".join(out)


def _top_start(raw: bytes) -> int:
    """Where the header block starts: after a leading mbox ``From `` line (the same test
    as the header check), which is storage, not part of the message. The line ends as
    the email package ends it, at a bare CR too: fields written after a CR inside it
    would be body to that reader (fuzz/regressions/policy/bare-cr-in-an-mbox-line)."""
    if raw.startswith(b"From ") and _MBOX_FROM_FIELD.match(raw) is None:
        return _line_end(raw, 0, len(raw))
    return 0


def body_start(raw: bytes) -> int:
    """Where the message's body starts: after the empty line that ends its header block
    (the end of ``raw`` when there is none)."""
    return _entity(raw, _top_start(raw), len(raw), b"\r\n").body_start


def _eol(raw: bytes, start: int, end: int, default: bytes) -> bytes:
    """The line end a region uses (its first one), so that new lines match the old."""
    newline = raw.find(b"\n", start, end)
    if newline < 0:
        return default
    return b"\r\n" if newline > start and raw[newline - 1] == 0x0D else b"\n"


def _header_end(raw: bytes, start: int, end: int) -> int:
    """Where the empty line that ends the header block starts, or -1 if there is none."""
    if raw.startswith(b"\n", start, end) or raw.startswith(b"\r\n", start, end):
        return start
    found = _EMPTY_LINE.search(raw, start, end)
    return -1 if found is None else found.start() + 1


def _entity(
    raw: bytes, start: int, end: int, eol: bytes, digest: bool = False, empty: Optional[int] = None
) -> _Entity:
    """The entity in ``raw[start:end]``: its header block ends at the first empty line
    (``empty``, where the caller knows it already)."""
    eol = _eol(raw, start, end, eol)
    if empty is None:
        empty = _header_end(raw, start, end)
    has_body = empty >= 0
    block_end = empty if has_body else end
    fields = _fields(raw, start, block_end)
    headers = Message()  # the compat32 policy: reads, never rewrites
    if digest:
        headers.set_default_type("message/rfc822")
    for field_start, field_end, name in fields:
        if name in _READ_FIELDS:
            headers.set_raw(*_field_value(raw[field_start:field_end]))
    ctype, disposition = headers.get_content_type(), headers.get_content_disposition()
    if not has_body:
        return _Entity(start, end, end, eol, headers, False, fields, ctype, disposition)
    body_start = raw.find(b"\n", empty, end) + 1
    return _Entity(start, body_start, end, eol, headers, True, fields, ctype, disposition)


def _fields(raw: bytes, start: int, end: int) -> Tuple[Tuple[int, int, bytes], ...]:
    """The ``Content-*`` and ``MIME-Version`` fields of ``raw[start:end]`` as the email
    package reads the header block: a field line starts a field, lines of white space
    continue it, ``From `` lines are skipped, and any other line ends the header block
    (the email package reads a body from it)."""
    fields: List[Tuple[int, int, bytes]] = []
    position = start
    while position < end:
        field = _FIELD.match(raw, position, end)
        if field is not None:
            name = raw[position : field.end(1)].lower()
            if name.startswith(b"content-") or name == b"mime-version":
                fields.append((position, field.end(), name))
            position = field.end()  # (a line starting with ':' is skipped, as it is there)
            continue
        line_end = _line_end(raw, position, end)
        if line_end == position:
            break
        if raw.startswith(b"From ", position, end):
            if position > start and line_end >= end:
                break  # a From line at the end: the email package reads it as the body's
        elif raw[position] not in b" \t":  # white space after a skipped line is skipped
            break
        position = line_end
    return tuple(fields)


def _read_early(raw: bytes, top: _Entity, targets: List[_Entity]) -> Optional[str]:
    """Why the email package ends a header block that matters to the warning before the
    rewrite does (``_ended_early``), or None: the message's (read from its first line, an
    mbox line included), where it reads the top-level Content-Type, when the warning
    would be written in place; and each text part's that would get it (a part's first
    line is after its delimiter line; one without a body gets no warning in place)."""
    if not targets:
        return None
    blocks = [(0, top.body_start)]
    nested = (part for part in targets if part.start > top.start and part.has_body)
    blocks += [(part.start, part.body_start) for part in nested]
    for start, body_start in blocks:
        ended_early = _ended_early(raw, start, body_start)
        if ended_early is not None:
            return ended_early
    return None


def _ended_early(raw: bytes, start: int, body_start: int) -> Optional[str]:
    """Why the email package ends the header block at ``start`` before ``body_start``,
    where the rewrite ends it, or None if it ends it there too. It breaks lines at a bare
    CR as well as at LF, takes lines into the header block up to the first that is not a
    field, a continuation or a ``From `` line, and skips that line if it is empty (a bare
    CR is one to it); a last line that starts ``From `` (not the first) it reads as the
    body's first. What lies between is body to it, shown before a warning written in
    place, and a base64 part then decodes to garbage, warning and all
    (fuzz/regressions/policy/from-space-field-before-base64-body): such a message gets
    the warning in a part of its own instead, the wrapping Content-Type first in the
    header block, where every reader sees it."""
    position = last_line = start
    while _HEADER_LINE.match(raw, position) is not None:
        last_line, position = position, _line_end(raw, position, len(raw))
    if last_line > start and raw.startswith(b"From ", last_line):
        return "a header block other readers end early (a last line starting 'From ')"
    if raw[position : position + 1] not in (b"\r", b"\n"):
        return "a header block other readers end early (a line that is no field)"
    if _line_end(raw, position, len(raw)) < body_start:
        return "a header block other readers end early (a bare CR)"
    return None


def _line_end(raw: bytes, position: int, end: int) -> int:
    """The end of the line at ``position`` (after its CRLF, CR or LF), at most ``end``."""
    line = _LINE.match(raw, position, end)
    assert line is not None  # the pattern matches the empty string
    return line.end()


def _past_continuations(raw: bytes, start: int, end: int) -> int:
    """Where the first line of ``raw[start:end]`` that starts with neither a space nor a
    tab starts: the lines before it continue no field, so the email package skips them,
    but a field written in front of them would take them in."""
    position = start
    while position < end and raw[position] in b" \t":
        position = _line_end(raw, position, end)
    return position


def _field_value(field: bytes) -> Tuple[str, str]:
    """A field's name and value as the email package's compat32 policy reads them."""
    name, _, value = field.decode("ascii", "surrogateescape").partition(":")
    return name, value.lstrip(" \t").rstrip("\r\n")


class _Reader:
    """Finds the parts that get the warning, counting the delimiter lines it reads.

    Children are read lazily, and a multipart child is read with its parent's end as
    its own: its end is where the parent's next delimiter line is, and nested multiparts
    would otherwise have each level search the rest of the message for it."""

    def __init__(self, raw: bytes, notes: List[str]) -> None:
        self.raw = raw
        self.notes = notes
        self.parts = 0
        self.empty_line = (0, 0, -1)  # (searched from, up to, found): the last search

    def header_end(self, start: int, end: int) -> int:
        """``_header_end``, remembering the last search: parts without an empty line of
        their own would each search the rest of the message again."""
        if self.raw.startswith(b"\n", start, end) or self.raw.startswith(b"\r\n", start, end):
            return start
        searched_from, up_to, found = self.empty_line
        if searched_from <= start and up_to == end and (found < 0 or found > start):
            return found
        found = _header_end(self.raw, start, end)
        self.empty_line = (start, end, found)
        return found

    def targets(self, entity: _Entity, depth: int) -> List[_Entity]:
        """The text parts of the main body of ``entity`` that should carry the warning."""
        found = self._targets(entity, depth)
        if len(found) > MAX_WARNED_PARTS:
            raise _Unwritable(f"more than {MAX_WARNED_PARTS} text parts for the warning")
        return found

    def _targets(self, entity: _Entity, depth: int) -> List[_Entity]:
        ctype = entity.ctype
        if ctype in _UNTOUCHABLE:
            self.notes.append(_UNTOUCHABLE[ctype])
            return []
        if entity.disposition == "attachment":
            return []
        if ctype in ("text/plain", "text/html"):
            return [entity]
        if not ctype.startswith("multipart/"):
            return []
        if depth >= MAX_DEPTH:
            raise _Unwritable(f"MIME nesting deeper than {MAX_DEPTH}")
        if ctype == "multipart/alternative":
            found: List[_Entity] = []
            for child in self.children(entity):
                found.extend(self._targets(child, depth + 1))
                if len(found) > MAX_WARNED_PARTS:
                    break
            return found
        if ctype == "multipart/related":
            start = _parameter(entity.headers, "start", lambda: _start(entity.headers))
            root = _related_root(self.children(entity), start)
            return [] if root is None else self._targets(root, depth + 1)
        for child in self.children(entity):
            if child.disposition == "attachment":
                continue
            child_type = child.ctype
            if (
                child_type in ("text/plain", "text/html")
                or child_type in _UNTOUCHABLE
                or child_type.startswith("multipart/")
            ):
                return self._targets(child, depth + 1)
        return []

    def children(self, entity: _Entity) -> Iterator[_Entity]:
        """The body parts of a multipart (RFC 2046 §5.1.1), between its delimiter lines;
        the line break before a delimiter belongs to it, not to the part. A missing close
        delimiter ends the last part at the body's end."""
        raw = self.raw
        delimiter = _delimiter(entity)
        digest = entity.ctype == "multipart/digest"
        line = self.delimiter_line(delimiter, entity.body_start, entity.end)
        if line is None or line[2]:
            ctype = _shown(entity.ctype)
            raise _Unwritable(f"malformed MIME: {ctype} whose boundary never occurs")
        while line is not None and not line[2]:
            self.parts += 1
            if self.parts > MAX_PARTS:
                raise _Unwritable(f"more than {MAX_PARTS} MIME parts")
            part_start = line[1]
            empty = self.header_end(part_start, entity.end)
            child = _entity(raw, part_start, entity.end, entity.eol, digest, empty)
            if child.ctype.startswith("multipart/"):
                yield child  # read up to the parent's end (see the class)
            following = self.delimiter_line(delimiter, part_start, entity.end)
            part_end = entity.end if following is None else following[0]
            if following is not None and part_end > part_start and raw[part_end - 1] == 0x0A:
                part_end -= 1
                if part_end > part_start and raw[part_end - 1] == 0x0D:
                    part_end -= 1
            if not child.ctype.startswith("multipart/"):
                if child.has_body and child.body_start <= part_end:
                    yield child._replace(end=part_end)
                else:  # no empty line before the part ends: no body
                    yield _entity(raw, part_start, part_end, entity.eol, digest)
            line = following

    def delimiter_line(
        self, delimiter: bytes, start: int, end: int
    ) -> Optional[Tuple[int, int, bool]]:
        """The first delimiter line in ``raw[start:end]`` that starts there or after a line
        break: (line start, next line start, is the close delimiter); None if none."""
        raw = self.raw
        found = start if raw.startswith(delimiter, start, end) else -1
        while True:
            if found < 0:
                found = raw.find(b"\n" + delimiter, start, end)
                if found < 0:
                    return None
                found += 1
            newline = raw.find(b"\n", found, end)
            next_line = end if newline < 0 else newline + 1
            rest = raw[found + len(delimiter) : next_line].rstrip(b"\r\n")
            if rest.rstrip(b" \t") == b"":
                return (found, next_line, False)
            if rest.startswith(b"--") and rest[2:].rstrip(b" \t") == b"":
                return (found, next_line, True)
            self.parts += 1  # a line that only starts like one counts too: each costs a search
            if self.parts > MAX_PARTS:
                raise _Unwritable(f"more than {MAX_PARTS} MIME parts")
            start, found = next_line - 1, -1


def _delimiter(entity: _Entity) -> bytes:
    """``--`` and the multipart's boundary; ``_Unwritable`` if it has none usable."""
    ctype = _shown(entity.ctype)
    boundary = _parameter(entity.headers, "boundary", entity.headers.get_boundary)
    if not boundary:
        raise _Unwritable(f"malformed MIME: {ctype} without a boundary")
    try:
        return b"--" + boundary.encode("ascii")
    except UnicodeEncodeError:
        raise _Unwritable(f"malformed MIME: {ctype} with a non-ASCII boundary") from None


def _parameter(headers: Message, name: str, read: Callable[[], Optional[str]]) -> Optional[str]:
    """A Content-Type parameter as ``read`` (the email package's ``get_boundary``,
    ``get_content_charset`` or ``get_param``) gives it, read directly from a simple value
    (``name=value`` or ``name="value"`` pairs, no escapes, comments or RFC 2231 parts):
    the email package parses every parameter and decodes RFC 2231 on each call, a tenth
    of the rewrite's time. Not simple: ``read()``, but ``_Unwritable`` where RFC 2231
    parts of that name could decide it (the email package's decoding of those is not
    worth copying into the core)."""
    value: object = headers.get("Content-Type")
    if value is None:
        return None
    if not isinstance(value, str) or not _SIMPLE_PARAMETERS.fullmatch(
        value, max(0, value.find(";"))
    ):
        for piece in _parse_parameters(str(value))[1:]:
            name_part = piece.partition("=")[0].strip()
            continuation = email_utils.rfc2231_continuation.match(name_part)  # type: ignore[attr-defined]
            if continuation is not None and continuation.group("name").lower() == name:
                raise _Unwritable(f"an RFC 2231 {name} parameter")
    if not isinstance(value, str):
        return read()
    semicolon = value.find(";")
    if (
        semicolon < 0
        or '"' in value[:semicolon]  # quotes decide which semicolons separate
        or "\\" in value[:semicolon]
        or _SIMPLE_PARAMETERS.fullmatch(value, semicolon) is None
        or value[:semicolon].partition("=")[0].strip().lower() == name  # read as one too
    ):
        return read()
    for match in _PARAMETER.finditer(value, semicolon):
        if match.group(1).lower() == name:
            found = unquote(match.group(2))  # get_boundary unquotes once more
            if name == "boundary":
                return unquote(found).rstrip()
            return found.lower() if name == "charset" else found
    return None


def _start(headers: Message) -> Optional[str]:
    """The ``start`` parameter as ``get_param`` reads it (RFC 2231 parts declined
    before)."""
    found = headers.get_param("start")
    return found if isinstance(found, str) else None


def _related_root(children: Iterator[_Entity], start: Optional[str]) -> Optional[_Entity]:
    """The root of a multipart/related (RFC 2387): the part named by ``start``, else the
    first."""
    first = next(children, None)
    if start is not None and first is not None:
        for child in (first, *children):
            if str(child.headers.get("Content-ID", "")).strip() == start.strip():
                return child
    return first


def _codec(charset: str, notes: List[str]) -> Optional[codecs.CodecInfo]:
    """The codec for a part's charset, or None when the warning must be ASCII (unknown
    charset: nearly all are ASCII supersets, and an ASCII line is the least harm)."""
    try:
        return codecs.lookup(charset)
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        notes.append(f"unknown charset {_shown(charset)}: warning in ASCII")
        return None


def _shown(text: str) -> str:
    """A name from the message as a note may show it: no control characters, no lone
    surrogates (8-bit header bytes), nothing that could break a log line."""
    return text.encode("unicode_escape").decode("ascii")


def _ascii_compatible(codec: codecs.CodecInfo) -> bool:
    """Whether ASCII text keeps its bytes in this charset (UTF-16, UTF-32 and UTF-7 do not:
    bytes spliced into them would not decode as the warning)."""
    sample = "a\n<>=+-~"
    try:
        return bool(codec.encode(sample)[0] == sample.encode("ascii"))
    except Exception:
        return False


def _warn_part(raw: bytes, part: _Entity, warning: WarningText, notes: List[str]) -> Edit:
    """The edit that prepends the warning to one text part; ``_Unwritable`` if it cannot
    be written there safely."""
    if not part.has_body:
        raise _Unwritable("a text part without a body")
    is_html = part.ctype == "text/html"
    cte = str(part.headers.get("Content-Transfer-Encoding", "7bit")).strip().lower() or "7bit"
    if cte not in (*_RAW_ENCODINGS, "quoted-printable", "base64"):
        raise _Unwritable(f"a text part in an unknown Content-Transfer-Encoding {_shown(cte)}")
    charset = _parameter(part.headers, "charset", part.headers.get_content_charset)
    charset = charset.lower() if charset and charset.isascii() else "us-ascii"
    codec = _codec(charset, notes)
    if codec is not None and not _ascii_compatible(codec):
        raise _Unwritable(f"a text part in {_shown(charset)}, which is not ASCII-compatible")
    seven_bit = cte == "7bit"
    if is_html:
        lines = [
            _encode_html(line, codec, seven_bit) for line in html_block(warning.text).split("\n")
        ]
    else:
        lines = _encode_plain(warning, codec, charset, seven_bit, notes)
    if cte in _RAW_ENCODINGS:
        position = _insert_at(raw, part.body_start, part.end, is_html, codec)
        data = _insertion(lines, is_html, position > part.body_start, part.eol)
        return (position, position, data)
    if cte == "quoted-printable":
        return _qp_edit(raw, part, lines, is_html, codec)
    return _base64_edit(raw, part, lines, is_html, codec)


def _qp_edit(
    raw: bytes, part: _Entity, lines: List[bytes], is_html: bool, codec: Optional[codecs.CodecInfo]
) -> Edit:
    """The warning encoded and spliced into a quoted-printable part where its decoded
    text puts it. Only the text before that point is decoded."""
    start, end = part.body_start, part.end
    if is_html:  # the tag is nearly always written as itself: decode up to just past it
        opening = _body_open(raw, start, min(end, start + HTML_HEAD_LIMIT))
        guess = _QP_FIRST_CHUNK if opening < 0 else opening - start + 1024
    else:
        guess = len(_UTF8_BOM) * 3  # the mark, escaped
    cut = _qp_cut(raw, start, end, start + guess)
    decoded = binascii.a2b_qp(memoryview(raw)[start:cut])
    if is_html and cut < end and _body_tag_end(decoded, 0, len(decoded)) is None:
        cut = _qp_cut(raw, start, end, start + HTML_HEAD_LIMIT)
        decoded = binascii.a2b_qp(memoryview(raw)[start:cut])
    position = _insert_at(decoded, 0, len(decoded), is_html, codec)
    offset = _qp_offset(raw, start, decoded, position)
    if offset is None:  # text before the point that does not map back: the warning first
        offset = start
    if is_html:  # a hard break before the block, as in the raw case
        lead = part.eol if offset > start else b""
    else:  # a soft one, so the warning's first line starts a decoded line
        lead = b"=" + part.eol if offset > start and raw[offset - 1] != 0x0A else b""
    data = lead + b"".join(_qp_line(line, part.eol) + part.eol for line in lines)
    return (offset, offset, data)


def _qp_cut(raw: bytes, start: int, end: int, target: int) -> int:
    """An offset at or after ``target`` (at most ``end``) where quoted-printable text can
    be cut and each side decoded alone: after a line end, or else where no escape or
    soft line break is cut in two."""
    if target >= end:
        return end
    newline = raw.find(b"\n", target, min(end, target + 1024))
    if newline >= 0:
        return newline + 1
    while target > start and (b"=" in raw[target - 2 : target] or raw[target - 1] == 0x0D):
        target -= 1
    return target


def _qp_offset(raw: bytes, start: int, decoded: bytes, position: int) -> Optional[int]:
    """The offset in the quoted-printable body at ``start`` just after the characters
    that decode to its first ``position`` bytes (``decoded`` holds at least those). Each
    ``=XX`` gives one byte, a soft line break none, any other character itself: the least
    offset that fits is found by counting ``=`` in C, each stretch once, and checked by
    decoding up to it. None if the text before it is written otherwise."""
    offset = start + position
    equals = raw.count(b"=", start, offset)
    soft_crlf = raw.count(b"=\r\n", start, offset)
    while True:
        wanted = start + position + 2 * equals + soft_crlf
        if wanted == offset:
            break
        if wanted > len(raw):
            return None
        equals += raw.count(b"=", offset, wanted)
        soft_crlf += raw.count(b"=\r\n", max(start, offset - 2), wanted)
        offset = wanted
    if b"=" in raw[max(start, offset - 2) : offset]:
        return None  # inside an escape
    if binascii.a2b_qp(memoryview(raw)[start:offset]) != memoryview(decoded)[:position]:
        return None
    return offset


def _base64_edit(
    raw: bytes, part: _Entity, lines: List[bytes], is_html: bool, codec: Optional[codecs.CodecInfo]
) -> Edit:
    """The warning spliced into a base64 part: the line that holds the insertion point is
    decoded, the warning put in (padded with spaces to whole 3-byte groups, so that the
    lines after keep their bytes) and encoded again at the same line length. Only the
    lines up to that point are read, and they must decode strictly, in regular lines,
    else ``_Unwritable``: readers decode such text in different ways. What comes after
    decodes as it did, after the warning."""
    layout = _Base64Layout(raw, part.body_start, part.end, part.eol)
    if layout.lines == 0:
        insertion = _insertion(lines, is_html, False, b"\r\n")
        return (part.body_start, part.body_start, binascii.b2a_base64(insertion, newline=False))
    if is_html:
        # The head is read in runs of lines that double, each decoded once: at most about
        # twice the lines before the <body> tag are read. Past HTML_HEAD_LIMIT +
        # BODY_TAG_LIMIT decoded bytes, more could not change where the tag ends.
        done, count, decoded = 0, _BASE64_FIRST_LINES, b""
        while True:
            decoded += layout.decode(done, count)
            done = min(count, layout.lines)
            position = _insert_at(decoded, 0, len(decoded), True, codec)
            if position or done >= layout.lines or len(decoded) >= _BASE64_HEAD_READ:
                break
            count *= 2
    else:
        decoded = layout.decode(0, 1)
        position = _insert_at(decoded, 0, len(decoded), False, codec)
    content_eol = b"\r\n" if b"\r\n" in decoded else b"\n" if b"\n" in decoded else b"\r\n"
    insertion = _insertion(lines, is_html, position > 0, content_eol)
    per_line = layout.width // 4 * 3
    index = min(position // per_line, layout.lines - 1)
    unit_start, unit_end = layout.span(index, index + 1)
    unit = layout.decode(index, index + 1)
    inside = position - index * per_line
    width = layout.width
    if unit_end < layout.last:  # spaces end the warning's last line, where no one sees them
        cut = len(insertion) - len(content_eol) * (1 if is_html else 2)
        padding = b" " * (-len(insertion) % 3)
        insertion = insertion[:cut] + padding + insertion[cut:]
    encoded = binascii.b2a_base64(unit[:inside] + insertion + unit[inside:], newline=False)
    rows = [encoded[i : i + width] for i in range(0, len(encoded), width)]
    return (unit_start, unit_end, layout.eol.join(rows))


class _Base64Layout:
    """The lines of a base64 body as far as they are read: every line ``width``
    characters of the alphabet but the last, ended by ``eol``, ``=`` only at the end of
    the last. Checked line range by line range, as they are read (``_Unwritable``
    otherwise): a part is not read to its end for a warning at its start."""

    def __init__(self, raw: bytes, start: int, end: int, eol: bytes) -> None:
        self.raw = raw
        space = _SPACE_RUN.match(raw, start, end)
        assert space is not None  # the pattern matches the empty string
        self.first = space.end()
        self.last = _end_of_text(raw, self.first, end)
        newline = raw.find(b"\n", self.first, self.last)
        if newline < 0:
            self.eol = eol
            self.width = self.last - self.first
        else:
            self.eol = b"\r\n" if raw[newline - 1] == 0x0D else b"\n"
            self.width = newline + 1 - len(self.eol) - self.first
        if self.width > MAX_BASE64_LINE:
            raise _Unwritable(f"a text part with base64 lines over {MAX_BASE64_LINE} octets")
        step = self.width + len(self.eol)
        self.lines = 0 if self.last == self.first else (self.last - self.first) // step + 1
        if self.width % 4 or self.first + (self.lines - 1) * step > self.last:
            raise _Unwritable(_BAD_BASE64)

    def span(self, first_line: int, end_line: int) -> Tuple[int, int]:
        """Where lines ``first_line`` to ``end_line`` (exclusive) are, their last line end
        left out; checked to hold nothing but those lines."""
        raw, eol, step = self.raw, self.eol, self.width + len(self.eol)
        start = self.first + first_line * step
        end = min(self.first + end_line * step - len(eol), self.last)
        text = raw[start:end].translate(None, _BASE64_ALPHABET + eol)
        equals = len(text) if end == self.last and text.strip(b"=") == b"" else 0
        if (
            (text and not 0 < equals <= 2)
            or raw.count(b"\n", start, end) != end_line - first_line - 1
            or (equals and raw.find(b"=", start, end) != end - equals)
            or (first_line and raw[start - len(eol) : start] != eol)
            or (end < self.last and raw[end : end + len(eol)] != eol)
        ):
            raise _Unwritable(_BAD_BASE64)
        return start, end

    def decode(self, first_line: int, end_line: int) -> bytes:
        start, end = self.span(first_line, min(end_line, self.lines))
        try:
            return binascii.a2b_base64(memoryview(self.raw)[start:end])
        except binascii.Error:
            raise _Unwritable(_BAD_BASE64) from None


def _end_of_text(raw: bytes, start: int, end: int) -> int:
    """The offset after the last character of ``raw[start:end]`` that is not white space,
    found by stripping pieces from the end (white space at the end can be long)."""
    while end > start:
        piece = raw[max(start, end - 4096) : end]
        kept = piece.rstrip(_BASE64_SPACE)
        end -= len(piece) - len(kept)
        if kept:
            break
    return end


def _encode_plain(
    warning: WarningText,
    codec: Optional[codecs.CodecInfo],
    charset: str,
    seven_bit: bool,
    notes: List[str],
) -> List[bytes]:
    """The warning's lines in the part's charset, then an empty line. A part declared 7bit
    gets 8-bit bytes from no one, so its warning falls back to ASCII too."""
    lines = warning.text.split("\n")
    if codec is not None:
        try:
            encoded = [codec.encode(line)[0] for line in lines]
        except UnicodeError:
            notes.append(f"warning in ASCII: charset {_shown(charset)} cannot represent it")
        else:
            if not seven_bit or all(line.isascii() for line in encoded):
                return [*encoded, b""]
            notes.append(f"warning in ASCII: the part is 7bit and {_shown(charset)} needs 8 bits")
    return [*(line.encode("ascii") for line in warning.ascii_text.split("\n")), b""]


def _encode_html(block: str, codec: Optional[codecs.CodecInfo], seven_bit: bool) -> bytes:
    """The HTML block in the part's charset; what the charset (or 7bit) cannot carry
    becomes character references, which HTML readers show as the characters."""
    if codec is not None:
        encoded = codec.encode(block, "xmlcharrefreplace")[0]
        if not seven_bit or encoded.isascii():
            return encoded
    return block.encode("ascii", "xmlcharrefreplace")


def _insertion(lines: List[bytes], is_html: bool, after_tag: bool, eol: bytes) -> bytes:
    """The decoded bytes to insert: the lines, each ended; the HTML block also starts on
    a line of its own (so the ``<body>`` line does not grow past the 998-octet limit)."""
    return (eol if is_html and after_tag else b"") + b"".join(line + eol for line in lines)


def _insert_at(
    content: bytes, start: int, end: int, is_html: bool, codec: Optional[codecs.CodecInfo]
) -> int:
    """Where in the decoded ``content[start:end]`` the warning goes: after ``<body ...>``
    for HTML (found within ``HTML_HEAD_LIMIT``; the start if there is none), after a UTF-8
    byte-order mark, else the start. The byte search is safe in every ASCII-compatible
    charset fromguard writes into: ``<`` and ``>`` are never a trail byte of Shift_JIS,
    EUC or GB18030."""
    if is_html:
        tag_end = _body_tag_end(content, start, end)
        if tag_end is not None:
            return tag_end
    bom = codec is not None and codec.name == "utf-8" and content.startswith(_UTF8_BOM, start, end)
    return start + len(_UTF8_BOM) if bom else start


def _body_tag_end(content: bytes, start: int, end: int) -> Optional[int]:
    """The offset after the first ``<body ...>`` tag within ``HTML_HEAD_LIMIT`` of
    ``start``, or None if there is none (or it is not closed within ``BODY_TAG_LIMIT``).
    Quoted attribute values may hold ``>``."""
    opening = _body_open(content, start, min(end, start + HTML_HEAD_LIMIT))
    if opening < 0:
        return None
    rest = _TAG_REST.match(content, opening - 1, min(end, opening - 6 + BODY_TAG_LIMIT))
    return None if rest is None else rest.end()


def _body_open(content: bytes, start: int, end: int) -> int:
    """The offset after ``<body`` and the character that ends the name (any case) of the
    first such tag in ``content[start:end]``, or -1. Searched in lowered copies, of a
    first window and then of the rest: a case-blind regular expression reads byte by
    byte."""
    window = start
    for limit in (min(end, start + _BODY_SEARCH_WINDOW), end):
        found = _BODY_OPEN.search(content[window:limit].lower())
        if found is not None:
            return window + found.end()
        window = max(start, limit - 5)  # a tag cut by the window is found in the next
    return -1


def _warning_part_edits(
    raw: bytes,
    top: _Entity,
    warning: WarningText,
    reason: str,
    notes: List[str],
    body_only: bool,
    boundary: bytes,
) -> List[Edit]:
    """The warning in a text part of its own, first in the message: in the top-level
    ``multipart/mixed`` if it has a delimiter line, else with the message wrapped in a new
    one (not when only the body may change). The note says why and how.

    The wrapping multipart's fields (``MIME-Version`` if there is none, ``Content-Type``)
    go at the top of the header block, right after the added fields (``_apply`` keeps
    edits at one offset in their order): the ``email`` package ends a header block early
    at a bare CR (inside a field or alone on a line) and reads a last line starting
    ``From `` as the body's, so a field written further down could be body to it, and
    the warning part unseen (``fuzz/regressions/policy/bare-cr-*-then-wrapped``). Lines
    of white space that open the header block stay in front of them: they would continue
    the new ``Content-Type`` and break its boundary."""
    eol = top.eol
    part = _warning_part(warning, eol)
    if top.ctype == "multipart/mixed":
        try:
            delimiter = _delimiter(top)
            first = _Reader(raw, []).delimiter_line(delimiter, top.body_start, top.end)
        except _Unwritable:
            first = None
        if first is not None and not first[2] and first[1] > first[0] + len(delimiter):
            notes.append(f"{reason}: warning added as a new first text part")
            return [(first[1], first[1], part + eol + delimiter + eol)]
    if body_only:
        notes.append(f"{reason}: warning not added (only the body may change)")
        return []
    moved = [(start, end) for start, end, name in top.fields if name.startswith(b"content-")]
    has_version = any(name == b"mime-version" for _, _, name in top.fields)
    top_field = _past_continuations(raw, top.start, top.body_start)
    new_fields = (b"" if has_version else b"MIME-Version: 1.0" + eol) + (
        b'Content-Type: multipart/mixed; boundary="' + boundary + b'"' + eol
    )
    inner = b"".join(raw[start:end] for start, end in moved)
    notes.append(
        f"{reason}: warning added as a new first text part, the message wrapped in multipart/mixed"
    )
    return [
        *((start, end, b"") for start, end in moved),
        (top_field, top_field, new_fields),
        (top.body_start, top.body_start,
         b"--" + boundary + eol + part + eol + b"--" + boundary + eol + inner + eol),
        (top.end, top.end, eol + b"--" + boundary + b"--" + eol),
    ]  # fmt: skip


def _warning_part(warning: WarningText, eol: bytes) -> bytes:
    """A text/plain part (header block and body) holding the warning, in UTF-8 encoded
    quoted-printable so that any transport carries it."""
    head = (
        b"Content-Type: text/plain; charset=utf-8" + eol
        + b"Content-Disposition: inline" + eol
        + b"Content-Transfer-Encoding: quoted-printable" + eol + eol
    )  # fmt: skip
    lines = warning.text.encode("utf-8").split(b"\n")
    return head + b"".join(_qp_line(line, eol) + eol for line in lines)


def _qp_line(data: bytes, eol: bytes) -> bytes:
    """One line of text quoted-printable encoded, soft-broken to at most 76 characters
    (``binascii``: line breaks and every other control are escaped, and so is a line
    that is only a period)."""
    encoded = binascii.b2a_qp(data, istext=False)
    return encoded if eol == b"\n" else encoded.replace(b"=\n", b"=" + eol)

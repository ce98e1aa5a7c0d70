"""Header fields and a body warning added to a raw message, changing nothing else.

A gateway must deliver the message it received: re-serialising it with the ``email``
package rewrites folding, line ends, boundaries and encodings, which breaks DKIM body
hashes and S/MIME signatures for no reason and makes the change impossible to audit.
So this module works on the bytes: it reads the MIME structure (each header block is
parsed with the standard library, the multipart bodies are split by their boundaries
here), decides where the warning goes, and splices new bytes in at a few offsets. Every
byte outside those insertions is the original's.

Where the warning goes: the top-level part if it is text/plain or text/html; in a
``multipart/alternative`` every text alternative (an HTML one inside
``multipart/related`` too); in any other multipart (``mixed``, ``related``, ``report``)
only its main body, the first inline part that can hold text. Attachments never change.
``multipart/signed``, ``multipart/encrypted`` and ``application/pkcs7-mime`` are left
alone: a warning inside them would break the signature or could not be read, and the
caller is told so in the notes.

Each text part gets the warning in its own Content-Transfer-Encoding (7bit, 8bit and
binary raw; quoted-printable encoded; base64 decoded, prepended, re-encoded with the
same line length) and in its own charset, so that a reader sees it and a parser decodes
it. A plain-text part whose charset cannot represent the warning gets its ASCII form; an
HTML part gets character references instead.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.parser
import html
from email.message import Message
from typing import List, NamedTuple, Optional, Sequence, Tuple

__all__ = ["Rewrite", "WarningText", "body_start", "folded_field", "html_block", "rewrite"]

QP_PREFIX = 65536
"""How much of a quoted-printable HTML part is decoded first to find ``<body>``."""

MAX_DEPTH = 32
"""How deep multiparts are searched for the main body (a message can nest without end)."""

HTML_STYLE = "border:1px solid #b00000;padding:4px 8px;background:#fff4f4;color:#600000"

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


class WarningText(NamedTuple):
    """The warning to prepend: ``text`` (lines separated by ``\\n``) and ``ascii_text``,
    what a plain-text part gets when its charset cannot represent ``text``."""

    text: str
    ascii_text: str


class Rewrite(NamedTuple):
    """The rewritten message, what the caller should know about it (parts left alone and
    why), and how many text parts received the warning."""

    message: bytes
    notes: Tuple[str, ...]
    warned: int


class _Entity(NamedTuple):
    """One MIME entity inside the raw message: ``raw[start:body_start]`` is its header
    block with the empty line, ``raw[body_start:end]`` its body. ``has_body`` is false when
    no empty line ends the header block (then ``body_start == end``)."""

    start: int
    body_start: int
    end: int
    eol: bytes
    headers: Message
    has_body: bool


Edit = Tuple[int, int, bytes]  # replace raw[start:end] by the bytes


def html_block(text: str) -> str:
    """The HTML form of the warning: one escaped paragraph, a ``<br>`` and a source line
    per line of the text (so that no source line outgrows the 998-octet limit)."""
    body = "<br>\n".join(html.escape(line, quote=False) for line in text.split("\n"))
    return f'<p style="{HTML_STYLE}">{body}</p>'


def rewrite(
    raw: bytes,
    headers: Sequence[Tuple[str, str]] = (),
    warning: Optional[WarningText] = None,
) -> Rewrite:
    """Add ``headers`` (name, value; ASCII, empty values skipped) at the top of the header
    block and, if given, prepend ``warning`` to the main text parts. Without either the
    message is returned as it is."""
    notes: List[str] = []
    edits: List[Edit] = []
    top = _top_start(raw)
    eol = _eol(raw, top, len(raw), b"\r\n")
    fields = b"".join(folded_field(name, value, eol) for name, value in headers if value)
    if fields:
        edits.append((top, top, fields))
    warned = 0
    if warning is not None:
        entity = _entity(raw, top, len(raw), eol)
        if not entity.has_body:
            notes.append("message has no body: warning not added")
        else:
            targets = _targets(raw, entity, notes, 0)
            for part in targets:
                edit = _warn_part(raw, part, warning, notes)
                if edit is not None:
                    edits.append(edit)
                    warned += 1
            if not targets and not notes:
                notes.append("no text part for the warning")
    if not edits:
        return Rewrite(raw, tuple(notes), 0)
    return Rewrite(_apply(raw, edits), tuple(notes), warned)


def _apply(raw: bytes, edits: List[Edit]) -> bytes:
    out: List[bytes] = []
    position = 0
    for start, end, data in sorted(edits, key=lambda edit: (edit[0], edit[1])):
        if start < position:
            raise AssertionError("overlapping edits")  # a bug here, never the input's
        out.append(raw[position:start])
        out.append(data)
        position = end
    out.append(raw[position:])
    return b"".join(out)


def _top_start(raw: bytes) -> int:
    """Where the header block starts: after a leading mbox ``From `` line (the same test
    as the header check), which is storage, not part of the message."""
    if raw.startswith(b"From ") and not raw[5:].lstrip(b" \t").startswith(b":"):
        newline = raw.find(b"\n")
        return len(raw) if newline < 0 else newline + 1
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


def _entity(raw: bytes, start: int, end: int, eol: bytes, digest: bool = False) -> _Entity:
    """The entity in ``raw[start:end]``: its header block ends at the first empty line."""
    eol = _eol(raw, start, end, eol)
    parser = email.parser.BytesHeaderParser()  # the compat32 policy: reads, never rewrites
    position = start
    while position < end:
        newline = raw.find(b"\n", position, end)
        if newline < 0:
            break
        if raw[position:newline] in (b"", b"\r"):
            headers = parser.parsebytes(raw[start:position])
            if digest:
                headers.set_default_type("message/rfc822")
            return _Entity(start, newline + 1, end, eol, headers, True)
        position = newline + 1
    headers = parser.parsebytes(raw[start:end])
    return _Entity(start, end, end, eol, headers, False)


def _targets(raw: bytes, entity: _Entity, notes: List[str], depth: int) -> List[_Entity]:
    """The text parts of the main body of ``entity`` that should carry the warning."""
    ctype = entity.headers.get_content_type()
    if ctype in _UNTOUCHABLE:
        notes.append(_UNTOUCHABLE[ctype])
        return []
    if entity.headers.get_content_disposition() == "attachment":
        return []
    if ctype in ("text/plain", "text/html"):
        return [entity]
    if not ctype.startswith("multipart/"):
        return []
    if depth >= MAX_DEPTH:
        notes.append(f"MIME nesting deeper than {MAX_DEPTH}: not searched further")
        return []
    children = _children(raw, entity, notes)
    if ctype == "multipart/alternative":
        found: List[_Entity] = []
        for child in children:
            found.extend(_targets(raw, child, notes, depth + 1))
        return found
    if ctype == "multipart/related":
        root = _related_root(children, entity.headers.get_param("start"))
        return [] if root is None else _targets(raw, root, notes, depth + 1)
    for child in children:
        if child.headers.get_content_disposition() == "attachment":
            continue
        child_type = child.headers.get_content_type()
        if (
            child_type in ("text/plain", "text/html")
            or child_type in _UNTOUCHABLE
            or child_type.startswith("multipart/")
        ):
            return _targets(raw, child, notes, depth + 1)
    return []


def _related_root(children: List[_Entity], start: object) -> Optional[_Entity]:
    """The root of a multipart/related (RFC 2387): the part named by ``start``, else the
    first."""
    if isinstance(start, str):
        for child in children:
            if str(child.headers.get("Content-ID", "")).strip() == start.strip():
                return child
    return children[0] if children else None


def _children(raw: bytes, entity: _Entity, notes: List[str]) -> List[_Entity]:
    """The body parts of a multipart (RFC 2046 §5.1.1): between delimiter lines
    ``--boundary`` at the start of a line; the line break before a delimiter belongs to
    it, not to the part. A missing close delimiter ends the last part at the body's end."""
    ctype = entity.headers.get_content_type()
    boundary = entity.headers.get_boundary()
    if not boundary:
        notes.append(f"malformed MIME: {_shown(ctype)} without a boundary")
        return []
    try:
        delimiter = b"--" + boundary.encode("ascii")
    except UnicodeEncodeError:
        notes.append(f"malformed MIME: {_shown(ctype)} with a non-ASCII boundary")
        return []
    lines: List[Tuple[int, int, bool]] = []  # (line start, next line start, close)
    position = entity.body_start
    while True:
        found = raw.find(delimiter, position, entity.end)
        if found < 0:
            break
        newline = raw.find(b"\n", found, entity.end)
        next_line = entity.end if newline < 0 else newline + 1
        position = next_line
        if found > entity.body_start and raw[found - 1] != 0x0A:
            continue
        rest = raw[found + len(delimiter) : next_line].rstrip(b"\r\n")
        if rest.rstrip(b" \t") == b"":
            lines.append((found, next_line, False))
        elif rest.startswith(b"--") and rest[2:].rstrip(b" \t") == b"":
            lines.append((found, next_line, True))
            break
    if not lines or lines[0][2]:
        notes.append(f"malformed MIME: {_shown(ctype)} whose boundary never occurs")
        return []
    children: List[_Entity] = []
    digest = ctype == "multipart/digest"
    for (_, part_start, close), following in zip(lines, [*lines[1:], None]):
        if close:
            break
        if following is None:
            part_end = entity.end
        else:
            part_end = following[0]
            if part_end > part_start and raw[part_end - 1] == 0x0A:
                part_end -= 1
                if part_end > part_start and raw[part_end - 1] == 0x0D:
                    part_end -= 1
        children.append(_entity(raw, part_start, part_end, entity.eol, digest))
    return children


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
        return codec.encode(sample)[0] == sample.encode("ascii")
    except UnicodeError:
        return False


def _warn_part(raw: bytes, part: _Entity, warning: WarningText, notes: List[str]) -> Optional[Edit]:
    """The edit that prepends the warning to one text part, or None (with a note)."""
    if not part.has_body:
        notes.append("text part without a body: left untouched")
        return None
    is_html = part.headers.get_content_type() == "text/html"
    cte = str(part.headers.get("Content-Transfer-Encoding", "7bit")).strip().lower() or "7bit"
    if cte not in (*_RAW_ENCODINGS, "quoted-printable", "base64"):
        notes.append(f"text part left untouched: unknown Content-Transfer-Encoding {_shown(cte)}")
        return None
    charset = part.headers.get_content_charset() or "us-ascii"
    codec = _codec(charset, notes)
    if codec is not None and not _ascii_compatible(codec):
        notes.append(f"text part left untouched: charset {_shown(charset)} is not ASCII-compatible")
        return None
    seven_bit = cte == "7bit"
    body = raw[part.body_start : part.end]

    if is_html:
        lines = [
            _encode_html(line, codec, seven_bit) for line in html_block(warning.text).split("\n")
        ]
    else:
        lines = _encode_plain(warning, codec, charset, seven_bit, notes)

    if cte in _RAW_ENCODINGS:
        position = _insert_at(body, is_html, codec)
        data = _insertion(lines, is_html, position > 0, part.eol)
        return (part.body_start + position, part.body_start + position, data)
    if cte == "quoted-printable":
        # Only as much is decoded as the position needs: the BOM test reads 3 bytes, the
        # <body> search a first 64 KiB (all of it only if the tag is not there).
        decoded, ends, done = _qp_decode(body, QP_PREFIX if is_html else 3)
        if is_html and not done and _body_tag_end(decoded) is None:
            decoded, ends, done = _qp_decode(body)
        position = _insert_at(decoded, is_html, codec)
        offset = ends[position - 1] if position > 0 else 0
        mid_line = offset > 0 and body[offset - 1] != 0x0A
        if is_html:  # a hard break before the block, as in the raw case
            lead = part.eol if position > 0 else b""
        else:  # a soft one, so the warning's first line starts a decoded line
            lead = b"=" + part.eol if mid_line else b""
        data = lead + b"".join(_qp_line(line, part.eol) + part.eol for line in lines)
        return (part.body_start + offset, part.body_start + offset, data)
    # base64
    stripped = body.strip()
    first = body.find(stripped[:1]) if stripped else 0
    last = first + len(stripped)
    try:
        decoded = base64.b64decode(b"".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError):
        notes.append("text part left untouched: its base64 body does not decode")
        return None
    rows = stripped.split(b"\n")
    width = len(rows[0].rstrip(b"\r"))
    if len(rows) < 2 or width == 0 or width % 4:
        width = 76
    content_eol = b"\r\n" if b"\r\n" in decoded else b"\n" if b"\n" in decoded else b"\r\n"
    position = _insert_at(decoded, is_html, codec)
    data = _insertion(lines, is_html, position > 0, content_eol)
    encoded = base64.b64encode(decoded[:position] + data + decoded[position:])
    wrapped = part.eol.join(encoded[i : i + width] for i in range(0, len(encoded), width))
    return (part.body_start + first, part.body_start + last, wrapped)


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
            if not seven_bit or all(byte < 0x80 for line in encoded for byte in line):
                return [*encoded, b""]
            notes.append(f"warning in ASCII: the part is 7bit and {_shown(charset)} needs 8 bits")
    return [*(line.encode("ascii") for line in warning.ascii_text.split("\n")), b""]


def _encode_html(block: str, codec: Optional[codecs.CodecInfo], seven_bit: bool) -> bytes:
    """The HTML block in the part's charset; what the charset (or 7bit) cannot carry
    becomes character references, which HTML readers show as the characters."""
    if codec is not None:
        encoded = codec.encode(block, "xmlcharrefreplace")[0]
        if not seven_bit or all(byte < 0x80 for byte in encoded):
            return encoded
    return block.encode("ascii", "xmlcharrefreplace")


def _insertion(lines: List[bytes], is_html: bool, after_tag: bool, eol: bytes) -> bytes:
    """The decoded bytes to insert: the lines, each ended; the HTML block also starts on
    a line of its own (so the ``<body>`` line does not grow past the 998-octet limit)."""
    return (eol if is_html and after_tag else b"") + b"".join(line + eol for line in lines)


def _insert_at(content: bytes, is_html: bool, codec: Optional[codecs.CodecInfo]) -> int:
    """Where in the decoded content the warning goes: after ``<body ...>`` for HTML (the
    start if there is none), after a UTF-8 byte-order mark, else the start. The byte
    search is safe in every ASCII-compatible charset fromguard writes into: ``<`` and
    ``>`` are never a trail byte of Shift_JIS, EUC or GB18030."""
    start = (
        3 if content.startswith(_UTF8_BOM) and codec is not None and codec.name == "utf-8" else 0
    )
    if is_html:
        end = _body_tag_end(content)
        if end is not None:
            return end
    return start


def _body_tag_end(content: bytes) -> Optional[int]:
    """The offset after the first ``<body ...>`` tag, or None if there is none (or it is
    not closed)."""
    lowered = content.lower()
    position = lowered.find(b"<body")
    while position >= 0:
        after = lowered[position + 5 : position + 6]
        if after in (b">", b"/") or (after and after in b" \t\r\n\f"):
            end = _tag_end(content, position + 5)
            return None if end < 0 else end
        position = lowered.find(b"<body", position + 5)
    return None


def _tag_end(content: bytes, position: int) -> int:
    """The offset after the ``>`` that closes a tag, skipping quoted attribute values."""
    quote = 0
    for index in range(position, len(content)):
        byte = content[index]
        if quote:
            if byte == quote:
                quote = 0
        elif byte in (0x22, 0x27):
            quote = byte
        elif byte == 0x3E:
            return index + 1
    return -1


def _qp_decode(body: bytes, stop: int = -1) -> Tuple[bytes, List[int], bool]:
    """Decode quoted-printable (RFC 2045 §6.7) and, for each decoded byte, the offset in
    ``body`` just after the characters that gave it: how a position found in the text
    maps back into the encoded body. With ``stop``, the first line that reaches ``stop``
    decoded bytes is the last; the flag says whether all of ``body`` was decoded."""
    decoded = bytearray()
    ends: List[int] = []
    position = 0
    length = len(body)
    while position < length:
        newline = body.find(b"\n", position)
        line_end = length if newline < 0 else newline
        next_line = length if newline < 0 else newline + 1
        content_end = line_end
        if content_end > position and body[content_end - 1] == 0x0D:
            content_end -= 1
        while content_end > position and body[content_end - 1] in (0x20, 0x09):
            content_end -= 1  # trailing white space is transport padding
        soft = content_end > position and body[content_end - 1] == 0x3D
        if soft:
            content_end -= 1
        index = position
        while index < content_end:
            byte = body[index]
            if byte == 0x3D and index + 3 <= content_end:
                pair = body[index + 1 : index + 3]
                if all(c in b"0123456789ABCDEFabcdef" for c in pair):
                    decoded.append(int(pair, 16))
                    ends.append(index + 3)
                    index += 3
                    continue
            decoded.append(byte)
            ends.append(index + 1)
            index += 1
        if not soft and newline >= 0:
            decoded.append(0x0A)
            ends.append(next_line)
        position = next_line
        if 0 <= stop <= len(decoded):
            break
    return bytes(decoded), ends, position >= length


def _qp_line(data: bytes, eol: bytes) -> bytes:
    """One line of text quoted-printable encoded, soft-broken to at most 76 characters."""
    rows: List[bytes] = []
    current = b""
    last = len(data) - 1
    for index, byte in enumerate(data):
        if (33 <= byte <= 126 and byte != 0x3D) or (byte in (0x20, 0x09) and index != last):
            token = bytes((byte,))
        else:
            token = b"=%02X" % byte
        if len(current) + len(token) > 75:
            rows.append(current + b"=")
            current = b""
        current += token
    rows.append(current)
    return eol.join(rows)

"""The warning written into MIME bodies, byte-exactly, by both engines (the ``rewrite``
fixture: ``fromguard._mime.rewrite``, the Rust core, and ``fromguard.reference.mime``;
``test_mime_parity.py`` compares the two byte for byte).

For every rewritten message: the standard library re-parses it (``email.policy.default``)
with no new defects; each warned text part decodes to the warning followed by the
original text (HTML: the block right after ``<body ...>``); every other part, and every
byte outside the warned parts' bodies and the added header fields, is the original's;
line ends stay LF or CRLF as they were. The messages are ``tests/data/messages/*.eml``
(stored with LF, each also run with CRLF) plus generated ones.
"""

from __future__ import annotations

import base64
import email
import email.message
import email.parser
import email.policy
import email.utils
import json
import re
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fromguard._mime
import fromguard._warning
from fromguard._mime import Rewrite, WarningText, html_block
from fromguard.reference.mime import (
    BODY_TAG_LIMIT,
    HTML_HEAD_LIMIT,
    MAX_BASE64_LINE,
    MAX_DEPTH,
    MAX_PARTS,
    MAX_WARNED_PARTS,
    _ended_early,
    _parameter,
    _past_continuations,
    _Unwritable,
    body_start,
)

Rewriter = Callable[..., Rewrite]

MESSAGES = Path(__file__).parent / "data" / "messages"
README = Path(__file__).resolve().parent.parent / "README.md"
CAUTION = "Caution: the sender's address of this message could not be verified as shown."
DEFAULT = WarningText(CAUTION, CAUTION)
GERMAN = WarningText("Achtung: Absender nicht überprüft.", "Achtung: Absender nicht uberpruft.")
JAPANESE = WarningText("差出人を確認できません。", "Caution: sender not verified.")
HEADERS = [("X-Test", "yes")]


class Case(NamedTuple):
    warned: Tuple[int, ...]  # indexes of the warned leaf parts, in walk order
    notes: Tuple[str, ...] = ()


CASES: Dict[str, Case] = {
    "plain.eml": Case((0,)),
    "no-mime.eml": Case((0,)),
    "valid.eml": Case((0,)),
    "alternative.eml": Case((0, 1)),
    "mixed.eml": Case((0, 1)),  # plain, html | pdf and notes.txt attachments untouched
    "quoted-printable.eml": Case((0,)),
    "base64.eml": Case((0, 1)),
    "latin1.eml": Case((0,)),
    "shift-jis.eml": Case((0, 1)),
    "html-no-body.eml": Case((0,)),
    "related.eml": Case((0, 2)),  # plain | png, html (the related root, named by start)
    "signed.eml": Case((), ("signed part left untouched: multipart/signed",)),
    "encrypted.eml": Case((), ("encrypted part left untouched: multipart/encrypted",)),
    "smime-encrypted.eml": Case(
        (), ("signed or encrypted part left untouched: application/pkcs7-mime",)
    ),
}
EOLS = {"LF": b"\n", "CRLF": b"\r\n"}


def load(name: str, eol: bytes) -> bytes:
    raw = (MESSAGES / name).read_bytes()
    return raw if eol == b"\n" else raw.replace(b"\n", eol)


def leaves(raw: bytes, policy: email.policy.Policy) -> List[email.message.Message]:
    parsed = email.message_from_bytes(raw, policy=policy)
    return [part for part in parsed.walk() if not part.is_multipart()]


def decoded_text(part: email.message.Message) -> str:
    assert isinstance(part, EmailMessage)
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


BODY_TAG = re.compile(r"""<body(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)


def expected_texts(original: str, part: email.message.Message, warning: str) -> List[str]:
    """What a warned part may decode to (line ends as LF). In HTML, what the part's
    charset (or 7bit) cannot carry is a character reference. In base64 the warning's last
    line may end in up to two spaces: they pad it to whole 3-byte groups, so that the
    lines after it keep their bytes."""
    cte = str(part.get("Content-Transfer-Encoding", "")).lower()
    return [
        expected_text(original, part, warning, padding)
        for padding in (["", " ", "  "] if cte == "base64" else [""])
    ]


def expected_text(
    original: str, part: email.message.Message, warning: str, padding: str = ""
) -> str:
    if part.get_content_subtype() == "html":
        charset = part.get_content_charset() or "us-ascii"
        if str(part.get("Content-Transfer-Encoding", "")).lower() in ("", "7bit"):
            charset = "ascii"
        block = html_block(warning).encode(charset, "xmlcharrefreplace").decode(charset)
        block += padding
        tag = BODY_TAG.search(original)
        if tag is None:
            return block + "\n" + original
        return original[: tag.end()] + "\n" + block + "\n" + original[tag.end() :]
    bom = "\ufeff" if original.startswith("\ufeff") else ""
    return bom + warning + padding + "\n\n" + original[len(bom) :]


def payload_bytes(part: email.message.Message) -> bytes:
    """A leaf part's body exactly as it is in the message: the parser keeps it raw, but
    ``get_payload()`` decodes 8-bit text with the charset, so read it as stored."""
    payload = part._payload  # type: ignore[attr-defined]
    assert isinstance(payload, str)
    return payload.encode("ascii", "surrogateescape")


def after_empty_line(raw: bytes, start: int) -> int:
    ends = [raw.find(s, start) + len(s) for s in (b"\n\n", b"\r\n\r\n") if s in raw[start:]]
    return min(ends) if ends else len(raw)


def check_rewrite(
    raw: bytes,
    rewritten: bytes,
    warned: Sequence[int],
    warnings: Sequence[str],
    added: bytes = b"",
) -> None:
    """The invariants of a rewrite. ``warnings[i]`` is the text warned part ``i`` shows
    (the warning, or its ASCII form); ``added`` the header fields expected at the top."""
    assert rewritten.startswith(added)
    assert rewritten.count(b"\r\n") == rewritten.count(b"\n") or b"\r" not in rewritten
    crlf = b"\r\n" in raw
    if crlf:  # no bare LF appears ...
        assert rewritten.count(b"\n") == rewritten.count(b"\r\n")
    else:  # ... nor any CR
        assert b"\r" not in rewritten

    # The standard library reads the same structure, with no new defects.
    before = leaves(raw, email.policy.default)
    after = leaves(rewritten, email.policy.default)
    assert [p.get_content_type() for p in after] == [p.get_content_type() for p in before]
    assert [len(p.defects) for p in after] == [len(p.defects) for p in before]
    parsed = email.message_from_bytes(rewritten, policy=email.policy.default)
    assert len(parsed.defects) == len(email.message_from_bytes(raw).defects)

    # Warned parts decode to the warning and the original; the others are unchanged.
    raw_before = leaves(raw, email.policy.compat32)
    raw_after = leaves(rewritten, email.policy.compat32)
    spans: List[Tuple[int, int]] = []
    cursor = after_empty_line(raw, 0)  # bodies are searched after the message's header
    for index, (old, new, old_raw, new_raw) in enumerate(zip(before, after, raw_before, raw_after)):
        body = payload_bytes(old_raw)
        if body:
            start = raw.find(body, cursor)
        else:  # an empty body: after the next empty line
            start = after_empty_line(raw, cursor)
        assert start >= 0
        cursor = start + len(body)
        if index in warned:
            warning = warnings[list(warned).index(index)]
            assert decoded_text(new) in expected_texts(decoded_text(old), old, warning)
            spans.append((start, start + len(body)))
        else:
            assert payload_bytes(new_raw) == body
            assert body in rewritten
            assert [i for i in new_raw.items() if i[0] != "X-Test"] == old_raw.items()

    # Byte for byte: the message is the original's bytes outside the warned parts' bodies
    # (each found in order, the first at the start, the last at the end), with anything
    # in those bodies' places.
    body = rewritten[len(added) :]
    kept = []
    previous = 0
    for start, end in spans:
        kept.append(raw[previous:start])
        previous = end
    kept.append(raw[previous:])
    if not spans:
        assert body == raw
        return
    assert body.startswith(kept[0])
    position = len(kept[0])
    for segment in kept[1:-1]:
        found = body.find(segment, position)
        assert found >= 0
        position = found + len(segment)
    assert body.endswith(kept[-1]) and len(body) - len(kept[-1]) >= position


def reader_texts(raw: bytes) -> List[str]:
    """The text parts a mail reader shows, in order: every inline text leaf."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    return [
        decoded_text(part)
        for part in parsed.walk()
        if part.get_content_maintype() == "text" and part.get_content_disposition() != "attachment"
    ]


def check_warning_part(
    raw: bytes, result: Rewrite, warning: str, originals: Optional[List[str]] = None
) -> None:
    """The warning in a part of its own: the first text a reader sees is the warning, the
    original parts follow with the same payload bytes, and nothing else changed."""
    assert result.warned == 1
    texts = reader_texts(result.message)
    assert texts[0] == warning + "\n"
    if originals is not None:
        assert texts[1:] == originals
    before = leaves(raw, email.policy.compat32)
    after = leaves(result.message, email.policy.compat32)[1:]
    # (a multipart whose boundary is broken reads with the line break of the new close
    # delimiter: compared without line breaks at its end)
    assert [payload_bytes(p).rstrip(b"\r\n") for p in after] == [
        payload_bytes(p).rstrip(b"\r\n") for p in before
    ]
    body = raw[after_empty_line(raw, 0) :]
    assert body in result.message
    parsed = email.message_from_bytes(result.message, policy=email.policy.default)
    assert not parsed.defects


@pytest.mark.parametrize("eol", list(EOLS.values()), ids=list(EOLS))
@pytest.mark.parametrize("name", sorted(CASES))
def test_warning_in_every_message(name: str, eol: bytes, rewrite: Rewriter) -> None:
    raw = load(name, eol)
    case = CASES[name]
    result = rewrite(raw, HEADERS, DEFAULT)
    assert result.notes == case.notes
    assert result.warned == len(case.warned)
    check_rewrite(
        raw, result.message, case.warned, [DEFAULT.text] * len(case.warned), b"X-Test: yes" + eol
    )


def test_every_message_file_is_a_case() -> None:
    names = {path.name for path in MESSAGES.glob("*.eml")}
    assert set(CASES) <= names
    assert names - set(CASES) == {"legacy.eml", "two-from.eml"}  # policy tests only


@pytest.mark.parametrize("name", ["signed.eml", "encrypted.eml", "smime-encrypted.eml"])
def test_signed_and_encrypted_bodies_are_byte_identical(name: str, rewrite: Rewriter) -> None:
    raw = load(name, b"\r\n")
    result = rewrite(raw, HEADERS, DEFAULT)
    assert result.message == b"X-Test: yes\r\n" + raw
    assert rewrite(raw, (), DEFAULT).message is raw


def test_nothing_to_do_returns_the_same_object(rewrite: Rewriter) -> None:
    raw = load("mixed.eml", b"\n")
    assert rewrite(raw).message is raw
    assert rewrite(raw, [("X-Empty", "")]).message is raw  # empty values are left out


def test_headers_go_after_an_mbox_from_line(rewrite: Rewriter) -> None:
    raw = b"From mallory@evil.example Mon Nov  4 09:00:00 2024\n" + load("plain.eml", b"\n")
    result = rewrite(raw, HEADERS, DEFAULT)
    first, rest = result.message.split(b"\n", 1)
    assert first == b"From mallory@evil.example Mon Nov  4 09:00:00 2024"
    assert rest.startswith(b"X-Test: yes\nFrom: ")


# -- Charsets --------------------------------------------------------------------------


def test_the_warning_is_written_in_the_parts_charset(rewrite: Rewriter) -> None:
    raw = load("latin1.eml", b"\n")
    result = rewrite(raw, (), GERMAN)
    assert result.notes == ()
    assert b"Achtung: Absender nicht \xfcberpr\xfcft.\n\nCher coll\xe8gue" in result.message
    check_rewrite(raw, result.message, (0,), [GERMAN.text])


def test_shift_jis_parts_get_a_shift_jis_warning(rewrite: Rewriter) -> None:
    raw = load("shift-jis.eml", b"\r\n")
    result = rewrite(raw, (), JAPANESE)
    assert result.notes == ()
    assert JAPANESE.text.encode("shift_jis") + b"\r\n\r\n" in result.message
    check_rewrite(raw, result.message, (0, 1), [JAPANESE.text, JAPANESE.text])


def test_a_charset_that_cannot_show_the_warning_gets_the_ascii_form(rewrite: Rewriter) -> None:
    # Shift_JIS has no ü: the plain part falls back to ASCII, the HTML part (base64) gets
    # a character reference, which a browser shows as ü.
    raw = load("shift-jis.eml", b"\n")
    result = rewrite(raw, (), GERMAN)
    assert result.notes == ("warning in ASCII: charset shift_jis cannot represent it",)
    html_part = leaves(result.message, email.policy.default)[1]
    assert "&#252;berpr&#252;ft" in decoded_text(html_part)
    plain = leaves(result.message, email.policy.default)[0]
    assert decoded_text(plain).startswith(GERMAN.ascii_text + "\n\n")
    # The HTML part reads the same once the references are resolved.
    html_expected = html_block(GERMAN.text).replace("ü", "&#252;")
    assert html_expected in decoded_text(html_part)


def test_a_japanese_warning_in_a_latin1_part_is_ascii(rewrite: Rewriter) -> None:
    raw = load("latin1.eml", b"\n")
    result = rewrite(raw, (), JAPANESE)
    assert result.notes == ("warning in ASCII: charset iso-8859-1 cannot represent it",)
    check_rewrite(raw, result.message, (0,), [JAPANESE.ascii_text])


def test_a_7bit_part_gets_no_8bit_bytes(rewrite: Rewriter) -> None:
    raw = load("plain.eml", b"\n").replace(b"charset=us-ascii", b"charset=utf-8")
    result = rewrite(raw, (), GERMAN)
    assert result.notes == ("warning in ASCII: the part is 7bit and utf-8 needs 8 bits",)
    assert all(byte < 0x80 for byte in result.message)
    check_rewrite(raw, result.message, (0,), [GERMAN.ascii_text])
    html = load("html-no-body.eml", b"\n")
    rewritten = rewrite(html, (), GERMAN).message
    assert all(byte < 0x80 for byte in rewritten)
    assert b"&#252;berpr&#252;ft" in rewritten


def test_quoted_printable_warning_in_utf8(rewrite: Rewriter) -> None:
    raw = load("quoted-printable.eml", b"\n")
    result = rewrite(raw, (), GERMAN)
    assert b"Achtung: Absender nicht =C3=BCberpr=C3=BCft.\n\nDear colleague," in result.message
    check_rewrite(raw, result.message, (0,), [GERMAN.text])


def test_an_unknown_charset_gets_the_ascii_form(rewrite: Rewriter) -> None:
    raw = load("plain.eml", b"\n").replace(b"charset=us-ascii", b"charset=x-unheard-of")
    result = rewrite(raw, (), GERMAN)
    assert result.notes == ("unknown charset x-unheard-of: warning in ASCII",)
    assert GERMAN.ascii_text.encode() + b"\n\nPlease wire" in result.message


def test_a_charset_that_is_not_ascii_compatible_gets_a_part_of_its_own(rewrite: Rewriter) -> None:
    body = "Hello\n".encode("utf-16")
    raw = (
        b"From: x@y.example\nContent-Type: text/plain; charset=utf-16\n"
        b"Content-Transfer-Encoding: binary\n\n" + body
    )
    result = rewrite(raw, HEADERS, DEFAULT)
    assert result.notes == (
        "a text part in utf-16, which is not ASCII-compatible: warning added as a new first text part, the message wrapped in multipart/mixed",
    )
    check_warning_part(raw, result, DEFAULT.text, ["Hello\n"])


def test_a_utf8_byte_order_mark_stays_first(rewrite: Rewriter) -> None:
    raw = (
        b"From: x@y.example\nContent-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n\n\xef\xbb\xbfHello\n"
    )
    result = rewrite(raw, (), DEFAULT)
    assert result.message.endswith(b"\n\n\xef\xbb\xbf" + DEFAULT.text.encode() + b"\n\nHello\n")
    encoded = raw.replace(b"8bit", b"quoted-printable").replace(
        b"\xef\xbb\xbfHello", b"=EF=BB=BFHello"
    )
    qp = rewrite(encoded, (), DEFAULT).message
    part = leaves(qp, email.policy.default)[0]
    assert decoded_text(part) == "\ufeff" + DEFAULT.text + "\n\nHello\n"


# -- Transfer encodings ----------------------------------------------------------------


def part_lines(message: bytes, marker: bytes) -> List[bytes]:
    """The encoded body lines of the part whose header block contains ``marker``."""
    start = message.index(marker)
    body = message.index(b"\n\n", start) + 2
    end = message.index(b"\n--", body)
    return message[body:end].split(b"\n")


def test_base64_keeps_its_line_length(rewrite: Rewriter) -> None:
    raw = load("base64.eml", b"\n")
    rewritten = rewrite(raw, (), DEFAULT).message
    html_lines = part_lines(rewritten, b"BASE64")
    assert part_lines(raw, b"BASE64")[0].__len__() == 60
    assert_spliced_lines(html_lines[:-1], 60)  # the blank line after the body
    assert_spliced_lines(part_lines(rewritten, b"Content-Transfer-Encoding: base64"), 76)


def assert_spliced_lines(lines: List[bytes], width: int) -> None:
    """Base64 lines after a splice: ``width`` long, but for the end of the lines written
    anew (one line) and the last line."""
    assert all(len(line) <= width for line in lines)
    assert sum(len(line) != width for line in lines[:-1]) <= 1


def test_base64_lines_after_the_warning_keep_their_bytes(rewrite: Rewriter) -> None:
    """Only the line that holds the insertion point is written anew: the warning is
    padded to whole 3-byte groups, and every later line is the original's."""
    raw = build("x" * 5000 + "\n", "plain", "base64", "utf-8", "\n")
    assert raw is not None
    rewritten = rewrite(raw, (), DEFAULT).message
    old, new = raw.split(b"\n\n", 1)[1].split(b"\n"), rewritten.split(b"\n\n", 1)[1].split(b"\n")
    assert new[-len(old) + 1 :] == old[1:]
    text = decoded_text(leaves(rewritten, email.policy.default)[0])
    assert text in expected_texts(
        "x" * 5000 + "\n", leaves(raw, email.policy.default)[0], DEFAULT.text
    )


def test_quoted_printable_lines_stay_within_76(rewrite: Rewriter) -> None:
    long = WarningText("Achtung " * 12 + "= Ende", "x")
    for name in ("quoted-printable.eml", "mixed.eml"):
        raw = load(name, b"\r\n")
        result = rewrite(raw, (), long)
        for line in result.message.split(b"\r\n"):
            assert len(line) <= 78
        qp = [p for p in leaves(result.message, email.policy.compat32)]
        for part in qp:
            if part["Content-Transfer-Encoding"] == "quoted-printable":
                assert all(len(line) <= 76 for line in payload_bytes(part).split(b"\r\n"))
        text = decoded_text(leaves(result.message, email.policy.default)[0])
        assert text.startswith(long.text + "\n\n")


def test_a_body_tag_split_by_a_soft_line_break(rewrite: Rewriter) -> None:
    raw = (
        b"From: x@y.example\nContent-Type: text/html; charset=utf-8\n"
        b"Content-Transfer-Encoding: quoted-printable\n\n"
        b'<html><bo=\ndy class=3D"x">caf=C3=A9 =\nmenu</body></html>\n'
    )
    result = rewrite(raw, (), DEFAULT)
    check_rewrite(raw, result.message, (0,), [DEFAULT.text])


def test_an_unknown_transfer_encoding_gets_a_part_of_its_own(rewrite: Rewriter) -> None:
    raw = load("plain.eml", b"\n").replace(b"7bit", b"x-uuencode")
    result = rewrite(raw, (), DEFAULT)
    assert result.notes == (
        "a text part in an unknown Content-Transfer-Encoding x-uuencode: warning added as a new first text part, the message wrapped in multipart/mixed",
    )
    check_warning_part(raw, result, DEFAULT.text)


def test_binary_is_written_raw(rewrite: Rewriter) -> None:
    raw = load("latin1.eml", b"\r\n").replace(b"8bit", b"binary")
    check_rewrite(raw, rewrite(raw, (), DEFAULT).message, (0,), [DEFAULT.text])


# -- Structure -------------------------------------------------------------------------


def test_no_body_no_warning(rewrite: Rewriter) -> None:
    raw = b"From: x@y.example\r\nSubject: only a header"
    result = rewrite(raw, HEADERS, DEFAULT)
    assert result.notes == ("message has no body: warning not added",)
    assert result.message == b"X-Test: yes\r\n" + raw


def test_an_empty_body_gets_the_warning(rewrite: Rewriter) -> None:
    raw = b"From: x@y.example\r\n\r\n"
    result = rewrite(raw, (), DEFAULT)
    assert result.message == raw + DEFAULT.text.encode() + b"\r\n\r\n"


def test_a_text_attachment_alone_is_not_a_body(rewrite: Rewriter) -> None:
    raw = (
        b"From: x@y.example\nContent-Type: text/plain\n"
        b'Content-Disposition: attachment; filename="a.txt"\n\nData\n'
    )
    result = rewrite(raw, (), DEFAULT)
    assert result.notes == ("no text part for the warning",)
    assert result.message is raw


def test_a_non_text_body_gets_no_warning(rewrite: Rewriter) -> None:
    raw = b"From: x@y.example\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\nAAAA\n"
    assert rewrite(raw, (), DEFAULT).notes == ("no text part for the warning",)


def test_mixed_skips_leading_attachments_and_inline_images(rewrite: Rewriter) -> None:
    raw = (
        b'From: x@y.example\nContent-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: application/pdf\nContent-Disposition: attachment\n\n%PDF\n"
        b"--b\nContent-Type: image/gif\n\nGIF89a\n"
        b"--b\nContent-Type: text/plain\n\nThe body.\n"
        b"--b\nContent-Type: text/plain\n\nA second text, not the main body.\n"
        b"--b--\n"
    )
    result = rewrite(raw, (), DEFAULT)
    check_rewrite(raw, result.message, (2,), [DEFAULT.text])


def test_a_signed_part_inside_mixed_is_left_alone(rewrite: Rewriter) -> None:
    signed = (MESSAGES / "signed.eml").read_bytes().split(b"\n", 5)[5]  # its MIME part
    raw = (
        b'From: x@y.example\nContent-Type: multipart/mixed; boundary="outer"\n\n'
        b"--outer\n" + signed + b"\n--outer--\n"
    )
    result = rewrite(raw, HEADERS, DEFAULT)
    assert result.notes == ("signed part left untouched: multipart/signed",)
    assert result.message == b"X-Test: yes\n" + raw


def test_a_missing_close_delimiter(rewrite: Rewriter) -> None:
    raw = (
        b'From: x@y.example\nContent-Type: multipart/alternative; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nPlain.\n"
        b"--b\nContent-Type: text/html\n\n<body>HTML.</body>\n"
    )
    result = rewrite(raw, (), DEFAULT)
    assert result.warned == 2
    check_rewrite(raw, result.message, (0, 1), [DEFAULT.text] * 2)


def test_boundaries_that_prefix_each_other(rewrite: Rewriter) -> None:
    raw = (
        b'From: x@y.example\nContent-Type: multipart/mixed; boundary="b"\n\n'
        b'--b\nContent-Type: multipart/alternative; boundary="b2"\n\n'
        b"--b2\nContent-Type: text/plain\n\nPlain.\n--b2--\n"
        b"--b\nContent-Type: text/plain\nContent-Disposition: attachment\n\nAttached.\n"
        b"--b--\n"
    )
    result = rewrite(raw, (), DEFAULT)
    check_rewrite(raw, result.message, (0,), [DEFAULT.text])


@pytest.mark.parametrize(
    ("content_type", "note"),
    [
        (b"multipart/mixed", "malformed MIME: multipart/mixed without a boundary"),
        (
            b'multipart/mixed; boundary="elsewhere"',
            "malformed MIME: multipart/mixed whose boundary never occurs",
        ),
    ],
)
def test_a_malformed_multipart_gets_a_part_of_its_own(
    content_type: bytes, note: str, rewrite: Rewriter
) -> None:
    raw = b"From: x@y.example\nContent-Type: " + content_type + b"\n\n--b\n\nText\n--b--\n"
    result = rewrite(raw, (), DEFAULT)
    assert result.notes == (
        note + ": warning added as a new first text part, the message wrapped in multipart/mixed",
    )
    check_warning_part(raw, result, DEFAULT.text)


REGRESSIONS = Path(__file__).resolve().parent.parent / "fuzz" / "regressions" / "policy"
UTF16_HELLO = "Hello\r\n".encode("utf-16")
# Header blocks the email package ends before their empty line, on a message that gets
# wrapped (the Content-* field the rewrite reads comes before that point).
ENDED_EARLY = {
    **{path.name: path.read_bytes() for path in sorted(REGRESSIONS.glob("bare-cr-*-then-wrapped"))},
    "a bare CR in From": (
        b"Content-Type: text/plain; charset=utf-16\r\n"
        b"From: Bank Support <support@bank.example>\r<m@mallory.example>\r\n"
        b"Subject: your invoice\r\n\r\n" + UTF16_HELLO
    ),
    "a last line starting From": (
        b"Content-Type: text/plain; charset=utf-16\r\nFrom: a@x.example\r\n"
        b"From : b@x.example\r\n\r\n" + UTF16_HELLO
    ),
}


@pytest.mark.parametrize("name", sorted(ENDED_EARLY))
def test_wrapping_fields_come_first_for_a_header_block_ended_early(
    name: str, rewrite: Rewriter
) -> None:
    """The email package ends a header block at a bare CR (in a field or alone on a
    line), and reads a last line starting ``From `` as the body's: what follows is body
    to it. The wrapping multipart's fields come first in the header block, after the
    added fields, so it reads them all the same and sees the warning part first
    (issue 17: the body warning could be dodged so)."""
    raw = ENDED_EARLY[name]
    result = rewrite(raw, HEADERS, DEFAULT)
    assert result.notes[0].endswith("the message wrapped in multipart/mixed")
    assert re.match(
        rb'X-Test: yes\r\nMIME-Version: 1\.0\r\nContent-Type: multipart/mixed; boundary="[^"]+"\r\n',
        result.message,
    )
    check_warning_part_first(result.message)


@pytest.mark.parametrize("headers", [HEADERS, []], ids=["added fields", "none"])
def test_leading_white_space_stays_in_front_of_the_wrapping_fields(
    headers: List[Tuple[str, str]], rewrite: Rewriter
) -> None:
    """A header block that opens with a line of white space (it continues no field, the
    email package skips it): the added and wrapping fields go after it, or it would
    continue the last of them (a tag's value read as 'yes "ceo@bank.example" ...', which
    a transport rule comparing it would miss; the new Content-Type's boundary broken)."""
    leading = b' "ceo@bank.example"\r\n\t<m@mallory.example>\r\n'
    result = rewrite(leading + ENDED_EARLY["a bare CR in From"], headers, DEFAULT)
    added = b"X-Test: yes\r\n" if headers else b""
    assert result.message.startswith(leading + added + b"MIME-Version: 1.0\r\n")
    check_warning_part_first(result.message)
    if headers:
        read = email.message_from_bytes(result.message, policy=email.policy.compat32)
        assert read["X-Test"] == "yes"
        plain = leading + b"From: a@b.example\r\nContent-Type: text/plain\r\n\r\nHello\r\n"
        result = rewrite(plain, headers, DEFAULT)
        assert result.message.startswith(leading + added + b"From: a@b.example\r\n")
        assert (
            email.message_from_bytes(result.message, policy=email.policy.compat32)["X-Test"]
            == "yes"
        )


def check_warning_part_first(message: bytes) -> None:
    """The email package (compat32, as mail clients built on it read) sees a
    multipart/mixed whose first part, the first leaf it meets, is the warning."""
    parsed = email.message_from_bytes(message, policy=email.policy.compat32)
    assert parsed.get_content_type() == "multipart/mixed"
    first = next(part for part in parsed.walk() if not part.is_multipart())
    assert first is parsed.get_payload(0)
    assert first.get_content_type() == "text/plain"
    warning = first.get_payload(decode=True)
    assert isinstance(warning, bytes)
    assert warning.decode("utf-8") == DEFAULT.text + "\r\n"


HELLO_BASE64 = base64.b64encode(b"Hello, please pay the attached invoice.\r\n") + b"\r\n"
HELLO_QP = b"Hello, please pay the =\r\nattached invoice.\r\n"
# Header blocks the email package ends before their empty line, after the Content-*
# fields, on a text body the rewrite could warn in place: (the lines after those fields,
# the transfer encoding, the body, what ends the header block for the email package).
ENDED_EARLY_IN_PLACE = {
    "a bare CR inside From, base64": (
        b"From: Bank Support <support@bank.example>\rUGF5IG5vdy4=\r\n",
        b"base64",
        HELLO_BASE64,
        "a line that is no field",
    ),
    "a bare CR alone on a line, base64": (
        b"From: support@bank.example\r\n\rUGF5IG5vdy4=\r\n",
        b"base64",
        HELLO_BASE64,
        "a bare CR",
    ),
    "a last line 'From : x', base64": (
        b"From: a@x.example\r\nFrom : support@bank.example\r\n",
        b"base64",
        HELLO_BASE64,
        "a last line starting 'From '",
    ),
    "a last line 'From : x', quoted-printable": (
        b"From: a@x.example\r\nFrom : support@bank.example\r\n",
        b"quoted-printable",
        HELLO_QP,
        "a last line starting 'From '",
    ),
}


def text_message(cte: bytes, rest: bytes, body: bytes) -> bytes:
    return (
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: " + cte + b"\r\n"
        + rest + b"\r\n" + body
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(ENDED_EARLY_IN_PLACE))
def test_a_header_block_ended_early_is_wrapped_not_warned_in_place(
    name: str, rewrite: Rewriter
) -> None:
    """The email package (and clients built on it) reads such a body from where it ends
    the header block: what lies before the empty line shows first, and a base64 body
    decodes to garbage, warning and all (issue 17). The message is wrapped instead, and
    the warning part is first for every reader. A milter (body only) cannot wrap: the
    warning stays in place, which most readers show, and the note says who may not."""
    rest, cte, body, why = ENDED_EARLY_IN_PLACE[name]
    raw = text_message(cte, rest, body)
    assert payload_bytes(email.message_from_bytes(raw, policy=email.policy.compat32)) != body
    reason = f"a header block other readers end early ({why})"
    result = rewrite(raw, HEADERS, DEFAULT)
    assert result.notes == (
        f"{reason}: warning added as a new first text part, the message wrapped in multipart/mixed",
    )
    assert result.warned == 1
    check_warning_part_first(result.message)
    result = rewrite(raw, (), DEFAULT, body_only=True)
    assert result.warned == 1
    assert result.message != raw and body_start(result.message) == body_start(raw)
    assert result.message[: body_start(raw)] == raw[: body_start(raw)]
    assert result.notes == (
        f"{reason}: warning in place, which those readers may not show (only the body may change)",
    )


def test_an_mbox_line_ends_at_a_bare_cr_as_the_email_package_ends_it(rewrite: Rewriter) -> None:
    """A leading mbox line with a bare CR: the email package ends the line there and the
    header block at what follows (no field). The added fields and the wrapping go after
    the CR, where it reads them (fuzz/regressions/policy/bare-cr-in-an-mbox-line)."""
    mbox_line = b"From mallory@evil.example Mon Nov  4 09:00:00 2024\r"
    raw = mbox_line + b"m\r\nFrom: a@x.example\r\nContent-Type: text/plain\r\n\r\nPay now.\r\n"
    result = rewrite(raw, HEADERS, DEFAULT)
    assert result.message.startswith(mbox_line + b"X-Test: yes\r\n")
    check_warning_part_first(result.message)
    read = email.message_from_bytes(result.message, policy=email.policy.compat32)
    assert read["X-Test"] == "yes"


@pytest.mark.parametrize("subtype", [b"mixed", b"alternative"])
def test_a_text_part_whose_header_block_ends_early_gets_no_warning_in_place(
    subtype: bytes, rewrite: Rewriter
) -> None:
    """The same inside a multipart: the email package reads the part's body from where
    it ends the part's header block (here at a bare CR, what follows base64 of the
    attacker's choice). The warning gets a part of its own, first."""
    part = text_message(b"base64", b"X-A: a\rUGF5IG5vdy4=\r\n", HELLO_BASE64)
    raw = (
        b"From: a@x.example\r\nContent-Type: multipart/" + subtype + b"; boundary=b\r\n\r\n"
        b"--b\r\n" + part + b"--b--\r\n"
    )  # fmt: skip
    inner = email.message_from_bytes(raw, policy=email.policy.compat32).get_payload(0)
    assert inner.get_payload(decode=True) == b"Pay now."
    result = rewrite(raw, (), DEFAULT)
    how = "" if subtype == b"mixed" else ", the message wrapped in multipart/mixed"
    assert result.notes == (
        "a header block other readers end early (a line that is no field): warning added as"
        " a new first text part" + how,
    )
    check_warning_part_first(result.message)


@pytest.mark.parametrize(
    "first",
    [b"", b"From mallory@evil.example Mon Nov  4 09:00:00 2024\r\n", b"From : a@x.example\r\n"],
    ids=["fields only", "an mbox From line", "a first line 'From : x'"],
)
def test_a_header_block_read_alike_is_warned_in_place(first: bytes, rewrite: Rewriter) -> None:
    """A first line starting ``From `` is an mbox line to the email package, which ends
    nothing early: the base64 body gets the warning in place."""
    raw = first + text_message(b"base64", b"From: support@bank.example\r\n", HELLO_BASE64)
    result = rewrite(raw, (), DEFAULT)
    assert (result.notes, result.warned) == ((), 1)
    parsed = email.message_from_bytes(result.message, policy=email.policy.compat32)
    assert parsed.get_content_type() == "text/plain"
    text = parsed.get_payload(decode=True)
    assert isinstance(text, bytes)
    assert text.decode("utf-8").startswith(DEFAULT.text + "\r\n\r\nHello, please pay")


HEADER_PIECES = [b"From ", b"From: a", b"From : x", b"X: y", b":", b"abc", b"\x80", b" ", b"\t"]
HEADER_PIECES += [b"\r", b"\n", b"\r\n", b"\n\n", b"\r\n\r\n"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(HEADER_PIECES), max_size=14))
def test_a_header_block_ends_early_where_the_email_package_ends_it(pieces: List[bytes]) -> None:
    """The rule (``_ended_early``) holds exactly when the email package reads a body
    other than the one after the rewrite's empty line."""
    raw = b"".join(pieces) + b"\n\nbody\n"
    start = body_start(raw)
    parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
        raw, headersonly=True
    )
    assert (_ended_early(raw, 0, start) is None) == (payload_bytes(parsed) == raw[start:])


def nested(depth: int, subtype: bytes = b"mixed") -> bytes:
    head = b"".join(
        b'Content-Type: multipart/%s; boundary="b%d"\n\n--b%d\n' % (subtype, i, i)
        for i in range(depth)
    )
    tail = b"".join(b"\n--b%d--" % i for i in reversed(range(depth)))
    return b"From: x@y.example\n" + head + b"Content-Type: text/plain\n\nDeep.\n" + tail + b"\n"


def test_deep_nesting_is_not_followed_forever(rewrite: Rewriter) -> None:
    """Past the depth limit the warning goes first in the top-level multipart/mixed."""
    raw = nested(40)
    result = rewrite(raw, (), DEFAULT)
    assert result.notes == ("MIME nesting deeper than 32: warning added as a new first text part",)
    check_warning_part(raw, result, DEFAULT.text, ["Deep.\n"])


def test_a_digest_part_without_content_type_is_a_message(rewrite: Rewriter) -> None:
    raw = (
        b'From: x@y.example\nContent-Type: multipart/digest; boundary="d"\n\n'
        b"--d\n\nFrom: a@b.example\nSubject: one\n\nForwarded text.\n--d--\n"
    )
    assert rewrite(raw, (), DEFAULT).notes == ("no text part for the warning",)


def test_an_html_part_with_a_body_tag_in_capitals_and_quotes(rewrite: Rewriter) -> None:
    raw = load("alternative.eml", b"\n")
    html = decoded_text(leaves(rewrite(raw, (), DEFAULT).message, email.policy.default)[1])
    assert "<BODY class=\"main\" data-x='a>b'>\n<p style=" in html


def test_a_multi_line_warning(rewrite: Rewriter) -> None:
    warning = WarningText("Caution: sender not verified.\nDo not act on requests.", "x")
    for name in ("alternative.eml", "base64.eml", "mixed.eml"):
        raw = load(name, b"\r\n")
        result = rewrite(raw, (), warning)
        check_rewrite(raw, result.message, CASES[name].warned, [warning.text] * 2)
    assert html_block(warning.text).count("<br>\n") == 1


# -- Generated messages ----------------------------------------------------------------

TEXT = st.text(
    st.characters(
        codec="utf-8",
        exclude_categories=("Cs", "Cc", "Zl", "Zp"),
        include_characters="\n\t",
    ),
    max_size=300,
)


def build(text: str, subtype: str, cte: str, charset: str, eol: str) -> Optional[bytes]:
    """A one-part message made by the standard library, or None if the charset cannot
    represent the text."""
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        return None
    message = EmailMessage(policy=email.policy.default.clone(linesep=eol))
    message["From"] = '"boss@bank.example" <m@evil.example>'
    message.set_content(text, subtype=subtype, charset=charset, cte=cte)
    return message.as_bytes()


@settings(max_examples=300, deadline=None)
@given(
    text=TEXT,
    subtype=st.sampled_from(["plain", "html"]),
    cte=st.sampled_from(["8bit", "quoted-printable", "base64"]),
    charset=st.sampled_from(["utf-8", "iso-8859-1", "shift_jis"]),
    eol=st.sampled_from(["\n", "\r\n"]),
    warning=st.sampled_from([DEFAULT, GERMAN, JAPANESE]),
    body_tag=st.booleans(),
)
def test_generated_messages(
    text: str,
    subtype: str,
    cte: str,
    charset: str,
    eol: str,
    warning: WarningText,
    body_tag: bool,
    rewrite: Rewriter,
) -> None:
    if subtype == "html" and body_tag:
        text = "<html><body>" + text + "</body></html>"
    text = text.replace("\r", "")
    raw = build(text, subtype, cte, charset, eol)
    if raw is None:
        return
    result = rewrite(raw, HEADERS, warning)
    try:
        warning.text.encode(charset)
        shown = warning.text
    except UnicodeEncodeError:  # plain text: the ASCII form; HTML: character references
        shown = warning.ascii_text if subtype == "plain" else warning.text
    check_rewrite(raw, result.message, (0,), [shown], ("X-Test: yes" + eol).encode())


def test_base64_of_the_generated_kind_keeps_76(rewrite: Rewriter) -> None:
    raw = build("x" * 500, "plain", "base64", "utf-8", "\r\n")
    assert raw is not None
    body = rewrite(raw, (), DEFAULT).message.split(b"\r\n\r\n", 1)[1]
    lines = body.split(b"\r\n")
    assert_spliced_lines(lines[:-1], 76)
    assert base64.b64decode(b"".join(lines)).startswith(DEFAULT.text.encode())


def test_a_body_tag_far_into_a_quoted_printable_part(rewrite: Rewriter) -> None:
    style = "p { color: #333; }\n" * 4000  # 76 KB of head before <body>
    message = EmailMessage()
    message["From"] = "x@y.example"
    message.set_content(
        f"<html><head><style>{style}</style></head><body>Text</body></html>",
        subtype="html",
        cte="quoted-printable",
    )
    raw = message.as_bytes()
    result = rewrite(raw, (), DEFAULT)
    check_rewrite(raw, result.message, (0,), [DEFAULT.text])
    assert "</head><body>\n<p style=" in decoded_text(
        leaves(result.message, email.policy.default)[0]
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            # the last line of the PDF attachment
            b"\nJVBERi0xLjQKJeLjz9MKMSAwIG9iajw8Pj5lbmRvYmoKdHJhaWxlcjw8Pj4KJSVFT0YK\n\n",
            b"\nJVBERi0xLjQKJeLjz9MKMSAwIG9iajw8Pj5lbmRvYmoKdHJhaWxlcjw8Pj4KJSVFT0YL\n\n",
        ),
        (b'boundary="==inner=="', b'boundary="==inner==" '),  # a header of a part
        (b"\n--==outer==--", b"\n--==outer==--\n"),  # the epilogue
        (b"notes are", b"notes  are"),  # the text attachment
    ],
)
def test_the_check_catches_any_other_change(old: bytes, new: bytes, rewrite: Rewriter) -> None:
    """The invariants above are not vacuous: one changed byte outside the warned bodies
    fails them."""
    raw = load("mixed.eml", b"\n")
    rewritten = rewrite(raw, HEADERS, DEFAULT).message
    assert rewritten.count(old) == 1
    with pytest.raises(AssertionError):
        check_rewrite(
            raw, rewritten.replace(old, new), (0, 1), [DEFAULT.text] * 2, b"X-Test: yes\n"
        )


def test_names_from_the_message_are_escaped_in_notes(rewrite: Rewriter) -> None:
    raw = load("latin1.eml", b"\n").replace(b"ISO-8859-1", b"IS\x00O-8859-1")
    result = rewrite(raw, (), GERMAN)
    assert result.notes == ("unknown charset is\\x00o-8859-1: warning in ASCII",)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(CASES)),
    edits=st.lists(
        st.tuples(
            st.floats(0, 1),
            st.integers(0, 20),
            st.sampled_from(
                [b"", b"\n", b"\r", b"--", b"=", b'"', b"<body>", b"\x00", b"\xff", b"=\n"]
            ),
        ),
        max_size=6,
    ),
)
def test_damaged_messages_never_raise(
    name: str, edits: List[Tuple[float, int, bytes]], rewrite: Rewriter
) -> None:
    """Whatever the damage, the rewrite returns a message that keeps every original
    byte (insertions only, or a base64 body re-encoded)."""
    data = bytearray(load(name, b"\n"))
    for where, length, insert in edits:
        position = int(where * len(data))
        data[position : position + length] = insert
    raw = bytes(data)
    result = rewrite(raw, HEADERS, GERMAN)
    # The fields go first, or right after a first line that the damage made an mbox
    # "From " line (storage, not the message's), and after lines of white space that
    # the damage made open the header block.
    after_mbox_line = raw.find(b"\n") + 1 if raw.startswith(b"From ") else 0
    heads = {_past_continuations(raw, start, len(raw)) for start in (0, after_mbox_line)}
    assert any(result.message[head:].startswith(b"X-Test: yes") for head in heads)
    assert len(result.message) > len(raw) or result.warned


# -- Bodies the warning cannot be written into (issue 17, milter fault 4) ----------------

DODGES = {
    # base64 that Python's email (and mail clients) still decode
    "a stray '!' in base64": (b"text/plain", b"base64", b"SGVsbG8g!d29ybGQ=\n"),
    "base64 without its padding": (b"text/plain", b"base64", b"SGVsbG8gd29ybGQ\n"),
    "junk after the base64 padding": (b"text/plain", b"base64", b"SGVsbG8gd29ybA==junk\n"),
    "base64 lines of uneven length": (b"text/html", b"base64", b"PGI+SGVs\nbG8gd29ybGQ8L2I+\n"),
    "an unknown transfer encoding": (b"text/plain", b"x-gzip64", b"Hello world\n"),
}


@pytest.mark.parametrize("name", sorted(DODGES))
@pytest.mark.parametrize("container", ["single", "mixed", "alternative"])
def test_a_text_part_that_cannot_be_rewritten_still_shows_the_warning(
    name: str, container: str, rewrite: Rewriter
) -> None:
    """The text Python's email reads from the part is what a reader sees: the warning
    must come before it, in a part of its own, and the outcome says how."""
    ctype, cte, body = DODGES[name]
    part = b"Content-Type: " + ctype + b"\nContent-Transfer-Encoding: " + cte + b"\n\n" + body
    if container == "single":
        raw = b"From: x@y.example\nSubject: s\n" + part
    else:  # the part is the main body of a mixed, one alternative of an alternative
        raw = (
            b"From: x@y.example\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/" + container.encode() + b'; boundary="b"\n\n'
            b"--b\n" + part + b"--b\nContent-Type: text/plain\n\nPlain twin.\n--b--\n"
        )
    before = reader_texts(raw)
    assert all(DEFAULT.text not in text for text in before)
    result = rewrite(raw, HEADERS, DEFAULT)
    assert len(result.notes) == 1
    how = "new first text part" if container == "mixed" else "wrapped in multipart/mixed"
    assert how in result.notes[0]
    check_warning_part(raw, result, DEFAULT.text, before)
    assert result.message.startswith(b"X-Test: yes\n")


def test_nesting_past_the_limit_still_shows_the_warning(rewrite: Rewriter) -> None:
    for subtype in (b"mixed", b"alternative", b"related"):
        raw = nested(100, subtype)  # (Python's email recurses: 1000 levels overflow it)
        assert reader_texts(raw)[-1:] == ["Deep.\n"]  # what Python's email reads
        result = rewrite(raw, (), DEFAULT)
        assert result.notes[0].startswith("MIME nesting deeper than 32: warning added")
        assert reader_texts(result.message)[0] == DEFAULT.text + "\n"


def test_nesting_within_the_limit_is_rewritten_in_place(rewrite: Rewriter) -> None:
    raw = nested(32)
    result = rewrite(raw, (), DEFAULT)
    assert (result.notes, result.warned) == ((), 1)
    assert reader_texts(result.message) == [DEFAULT.text + "\n\nDeep.\n"]


def test_only_the_body_may_change(rewrite: Rewriter) -> None:
    """``body_only`` (a milter): the header block stays; a new first part goes into a
    top-level multipart/mixed, and a message that would need wrapping is not warned."""
    _, cte, body = DODGES["a stray '!' in base64"]
    single = b"From: x@y.example\nContent-Transfer-Encoding: " + cte + b"\n\n" + body
    result = rewrite(single, (), DEFAULT, body_only=True)
    assert result.message is single
    assert result.warned == 0
    assert result.notes == (
        "a text part whose base64 does not decode strictly, in regular lines: warning not"
        " added (only the body may change)",
    )
    mixed = nested(40)
    result = rewrite(mixed, (), DEFAULT, body_only=True)
    assert result.message.split(b"\n\n", 1)[0] == mixed.split(b"\n\n", 1)[0]
    assert reader_texts(result.message)[0] == DEFAULT.text + "\n"


@pytest.mark.parametrize(
    ("subtype", "shape", "note"),
    [
        (b"mixed", b"--b\nContent-Type: image/gif\n\nx\n" * 1_001, "more than 1000 MIME parts"),
        (
            b"alternative",
            b"--b\nContent-Type: text/plain\n\nx\n" * 17,
            "more than 16 text parts for the warning",
        ),
        (b"alternative", b"--bb\n" * 1_001 + b"--b\n\nx\n", "more than 1000 MIME parts"),
    ],
)
def test_part_limits(subtype: bytes, shape: bytes, note: str, rewrite: Rewriter) -> None:
    raw = b"From: x@y.example\nContent-Type: multipart/" + subtype + b'; boundary="b"\n\n' + shape
    result = rewrite(raw, (), DEFAULT)
    how = "" if subtype == b"mixed" else ", the message wrapped in multipart/mixed"
    assert result.notes == (note + ": warning added as a new first text part" + how,)
    assert reader_texts(result.message)[0] == DEFAULT.text + "\n"


@pytest.mark.parametrize(
    "html",
    [
        b"<html><head>" + b"<p>x</p>" * (HTML_HEAD_LIMIT // 8) + b"</head><body>Text</body>",
        b'<html><body class="' + b"x" * BODY_TAG_LIMIT + b'">Text</body>',
    ],
    ids=["body tag past the search limit", "body tag longer than its limit"],
)
def test_a_body_tag_past_its_limits_puts_the_block_first(html: bytes, rewrite: Rewriter) -> None:
    raw = b"From: x@y.example\nContent-Type: text/html; charset=utf-8\n\n" + html + b"\n"
    result = rewrite(raw, (), DEFAULT)
    assert result.notes == ()
    assert decoded_text(leaves(result.message, email.policy.default)[0]).startswith(
        html_block(DEFAULT.text) + "\n<html>"
    )


def readme_rewrite_limits() -> Dict[str, Tuple[str, str]]:
    """The README's table of the rewrite's limits: limit -> (value, what happens past it)."""
    rows: Dict[str, Tuple[str, str]] = {}
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("| limit | value | past it | why |") + 2  # after the separator
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        limit, value, past, _ = (cell.strip() for cell in line.strip("|").split("|"))
        rows[limit] = (value, past)
    return rows


def test_the_readme_documents_the_rewrite_limits() -> None:
    own_part = "`: a part of its own"
    first = "the HTML block goes first in the part"
    assert readme_rewrite_limits() == {
        "MIME nesting": (str(MAX_DEPTH), f"`MIME nesting deeper than {MAX_DEPTH}{own_part}"),
        "MIME parts": (str(MAX_PARTS), f"`more than {MAX_PARTS} MIME parts{own_part}"),
        "warned text parts": (
            str(MAX_WARNED_PARTS),
            f"`more than {MAX_WARNED_PARTS} text parts for the warning{own_part}",
        ),
        "base64 line": (
            f"{MAX_BASE64_LINE} octets",
            f"`a text part with base64 lines over {MAX_BASE64_LINE} octets{own_part}",
        ),
        "body tag search": (f"{HTML_HEAD_LIMIT >> 10} KiB", first),
        "body tag length": (f"{BODY_TAG_LIMIT >> 10} KiB", first),
    }


# -- Memory (issue 17: at most twice a message's size beyond it, released after) ---------

MEMORY_PROBE = """
import base64, gc, json, sys, tracemalloc
import fromguard

SIZE = 20_000_000
HEAD = b'From: "ceo@bank.example" <m@mallory.example>\\r\\nMIME-Version: 1.0\\r\\n'

def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmRSS:"))

def lines(data):
    return base64.encodebytes(data).replace(b"\\n", b"\\r\\n")

attachment = HEAD + (
    b'Content-Type: multipart/mixed; boundary="b"\\r\\n\\r\\n'
    b"--b\\r\\nContent-Type: text/plain\\r\\n\\r\\nSee the file.\\r\\n"
    b"--b\\r\\nContent-Type: application/octet-stream\\r\\n"
    b"Content-Transfer-Encoding: base64\\r\\n\\r\\n" + lines(b"\\x00\\x01" * (SIZE * 3 // 8))
    + b"--b--\\r\\n"
)
html = b"<html><body>" + b"Verify your account. " * (SIZE * 3 // 84) + b"</body></html>"
base64_html = HEAD + (
    b"Content-Type: text/html; charset=utf-8\\r\\nContent-Transfer-Encoding: base64\\r\\n\\r\\n"
    + lines(html)
)
base64_line = HEAD + (
    b"Content-Type: text/html; charset=utf-8\\r\\nContent-Transfer-Encoding: base64\\r\\n\\r\\n"
    + base64.b64encode(html) + b"\\r\\n"
)
quoted_printable = HEAD + (
    b"Content-Type: text/html; charset=utf-8\\r\\n"
    b"Content-Transfer-Encoding: quoted-printable\\r\\n\\r\\n<html><body>\\r\\n"
    + b"<p class=3D\\"x\\">caf=C3=A9 verify</p>=\\r\\n" * (SIZE // 40)
)
policy = fromguard.Policy.exchange()
policy.process(HEAD + b"\\r\\nwarm-up\\r\\n")
peaks = {}
shapes = [("attachment", attachment), ("base64", base64_html), ("base64 line", base64_line),
          ("qp", quoted_printable)]
for name, raw in shapes:
    gc.collect()
    tracemalloc.start()
    held = tracemalloc.get_traced_memory()[0]
    outcome = policy.process(raw)
    peaks[name] = (tracemalloc.get_traced_memory()[1] - held) / len(raw)
    tracemalloc.stop()
    assert outcome.action.name == "WARN" and bool(outcome.notes) == (name == "base64 line")
    del outcome
del base64_html, base64_line, quoted_printable, shapes, raw
policy.process(attachment)  # the allocator keeps one result's worth from here on
gc.collect()
start = rss()
for _ in range(100):
    policy.process(attachment)
gc.collect()
print(json.dumps({"peaks": peaks, "start": start, "end": rss()}))
"""


@pytest.mark.linux  # resident memory from /proc
def test_memory_of_20_mb_messages() -> None:
    """A fresh interpreter: warning a 20 MB message allocates at most twice its size
    beyond it, result included (``tracemalloc``), and after 100 such messages the
    resident memory is back within 20 MB of where it was after the first (glibc keeps
    a freed result's memory for the next one, or returns it: either way once)."""
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, check=True
    )
    figures = json.loads(result.stdout)
    assert all(peak <= 2.0 for peak in figures["peaks"].values()), figures
    assert figures["end"] - figures["start"] <= 20_000_000, figures


def test_base64_is_read_only_up_to_the_insertion_point(rewrite: Rewriter) -> None:
    """Junk far into a base64 part is not read: the warning goes in place, and it
    decodes as before after the warning (Python's email skips the stray character)."""
    raw = build("Dear customer,\n" * 400, "plain", "base64", "utf-8", "\n")
    assert raw is not None
    lines = raw.split(b"\n")
    lines[-20] = lines[-20][:10] + b"!" + lines[-20][10:]
    damaged = b"\n".join(lines)
    result = rewrite(damaged, (), DEFAULT)
    assert (result.notes, result.warned) == ((), 1)
    assert reader_texts(result.message)[0] in [
        DEFAULT.text + padding + "\n\n" + "Dear customer,\n" * 400 for padding in ("", " ", "  ")
    ]


def test_a_random_boundary_is_drawn_only_for_a_wrapped_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The core asks for a wrapping boundary (fromguard._warning.new_boundary, random)
    only when it wraps: a message warned in place costs no system call for one."""
    drawn: List[bytes] = []

    def counted() -> bytes:
        drawn.append(b"fromguard-test%d" % len(drawn))
        return drawn[-1]

    monkeypatch.setattr(fromguard._warning, "new_boundary", counted)
    plain = b"From: a@b.example\nContent-Type: text/plain\n\nHello\n"
    assert fromguard._mime.rewrite(plain, (), DEFAULT).warned == 1
    assert drawn == []
    bad = b"From: a@b.example\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nSGVsbG8g!\n"
    wrapped = fromguard._mime.rewrite(bad, (), DEFAULT)
    assert drawn == [b"fromguard-test0"]
    assert b'boundary="fromguard-test0"' in wrapped.message
    given = fromguard._mime.rewrite(bad, (), DEFAULT, boundary=b"given").message
    assert given.count(b"--given") == 3 and b'boundary="given"' in given
    assert len(drawn) == 1


def test_a_base64_html_head_is_read_to_twice_the_lines_before_the_body_tag(
    rewrite: Rewriter,
) -> None:
    """The <body> tag of a base64 HTML part is searched in runs of lines that double:
    junk well past it (here line 400 of 740, the tag near line 150) is not read, and
    the warning goes after the tag."""
    style = "".join(f".c{i} {{ color: #{i:06x}; padding: {i}px; }}\n" for i in range(200))
    html = f"<html><head><style>\n{style}</style></head>\n<body>\n" + "<p>Hello</p>\n" * 2500
    raw = build(html, "html", "base64", "utf-8", "\n")
    assert raw is not None
    lines = raw.split(b"\n")
    assert len(lines) > 700
    head_lines = len(style) // 57 + 1
    assert 120 < head_lines < 200, head_lines
    damaged = b"\n".join([*lines[:400], lines[400][:10] + b"!" + lines[400][10:], *lines[401:]])
    result = rewrite(damaged, (), DEFAULT)
    assert (result.notes, result.warned) == ((), 1)
    shown = reader_texts(result.message)[0]
    assert shown.startswith(html[: html.index("<body>") + len("<body>")] + "\n<p style=")
    assert shown.endswith("<p>Hello</p>\n" * 2000)


PIECES = ["text/plain", ";", " ", "\r\n\t", "charset", "boundary", "CHARSET", "=", '"', "'", "\\"]
PIECES += ["utf-8", "a b", "<x>", "*", "*0", "(c)", ",", "UTF-8", "=_x", "é", "<", ">", '"x"']
PIECES += ["\x1f", "\xa0"]  # white space to str.strip() (the email package's), not to RFC 5322


@pytest.mark.parametrize(
    "value",
    [
        "text/plain; charset=_x\x1f",  # the policy fuzz's parity find: \x1f ends the value
        "text/plain; charset=\xa0utf-8\xa0",
        "text/plain;\x1c charset=\x1eutf-8 ; format=flowed",
        'multipart/mixed; boundary="b"\x1d',
        "multipart/mixed; boundary=b\x1f; charset=x",
    ],
)
def test_parameters_are_stripped_as_the_email_package_strips_them(value: str) -> None:
    """The direct reading strips names and values of what str.strip() strips, as the
    email package does (U+001C to U+001F and U+00A0 too, not only RFC 5322's space)."""
    headers = email.message.Message()
    headers.set_raw("Content-Type", value)
    for name, read in (
        ("boundary", headers.get_boundary),
        ("charset", headers.get_content_charset),
    ):
        assert _parameter(headers, name, read) == read(), name


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=14))
def test_parameters_read_as_the_email_package_reads_them(pieces: List[str]) -> None:
    """The direct reading of simple Content-Type values gives what the email package's
    get_boundary and get_content_charset give, and anything else is left to them, but
    where RFC 2231 parts of that name could decide the value: that declines."""
    headers = email.message.Message()
    headers.set_raw("Content-Type", "".join(pieces))
    rfc2231_names = {  # the names of the pieces the email package reads as RFC 2231 parts
        found.group("name").lower()
        for piece in email.message._parseparam("".join(pieces))[1:]  # type: ignore[attr-defined]
        for found in [email.utils.rfc2231_continuation.match(piece.partition("=")[0].strip())]
        if found is not None
    }
    for name, read in (
        ("boundary", headers.get_boundary),
        ("charset", headers.get_content_charset),
    ):
        try:
            value = _parameter(headers, name, read)
        except _Unwritable:
            assert name in rfc2231_names
            continue
        expected = read()
        if name == "charset":
            value = value if value is None or value.isascii() else None
        assert value == expected


def test_a_long_base64_line_gets_a_part_of_its_own(rewrite: Rewriter) -> None:
    text = "<html><body>" + "Verify your account. " * 100 + "</body></html>"
    raw = (
        b"From: x@y.example\nContent-Type: text/html; charset=us-ascii\n"
        b"Content-Transfer-Encoding: base64\n\n" + base64.b64encode(text.encode()) + b"\n"
    )
    result = rewrite(raw, (), DEFAULT)
    assert result.notes == (
        "a text part with base64 lines over 998 octets: warning added as a new first text"
        " part, the message wrapped in multipart/mixed",
    )
    check_warning_part(raw, result, DEFAULT.text, [text])

"""The warning written into MIME bodies (``fromguard._mime``), byte-exactly.

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
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fromguard._mime import WarningText, html_block, rewrite

MESSAGES = Path(__file__).parent / "data" / "messages"
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


def expected_text(original: str, part: email.message.Message, warning: str) -> str:
    """What a warned part must decode to (line ends as LF). In HTML, what the part's
    charset (or 7bit) cannot carry is a character reference."""
    if part.get_content_subtype() == "html":
        charset = part.get_content_charset() or "us-ascii"
        if str(part.get("Content-Transfer-Encoding", "")).lower() in ("", "7bit"):
            charset = "ascii"
        block = html_block(warning).encode(charset, "xmlcharrefreplace").decode(charset)
        tag = BODY_TAG.search(original)
        if tag is None:
            return block + "\n" + original
        return original[: tag.end()] + "\n" + block + "\n" + original[tag.end() :]
    bom = "\ufeff" if original.startswith("\ufeff") else ""
    return bom + warning + "\n\n" + original[len(bom) :]


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
            assert decoded_text(new) == expected_text(decoded_text(old), old, warning)
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


@pytest.mark.parametrize("eol", list(EOLS.values()), ids=list(EOLS))
@pytest.mark.parametrize("name", sorted(CASES))
def test_warning_in_every_message(name: str, eol: bytes) -> None:
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
def test_signed_and_encrypted_bodies_are_byte_identical(name: str) -> None:
    raw = load(name, b"\r\n")
    result = rewrite(raw, HEADERS, DEFAULT)
    assert result.message == b"X-Test: yes\r\n" + raw
    assert rewrite(raw, (), DEFAULT).message is raw


def test_nothing_to_do_returns_the_same_object() -> None:
    raw = load("mixed.eml", b"\n")
    assert rewrite(raw).message is raw
    assert rewrite(raw, [("X-Empty", "")]).message is raw  # empty values are left out


def test_headers_go_after_an_mbox_from_line() -> None:
    raw = b"From mallory@evil.example Mon Nov  4 09:00:00 2024\n" + load("plain.eml", b"\n")
    result = rewrite(raw, HEADERS, DEFAULT)
    first, rest = result.message.split(b"\n", 1)
    assert first == b"From mallory@evil.example Mon Nov  4 09:00:00 2024"
    assert rest.startswith(b"X-Test: yes\nFrom: ")


# -- Charsets --------------------------------------------------------------------------


def test_the_warning_is_written_in_the_parts_charset() -> None:
    raw = load("latin1.eml", b"\n")
    result = rewrite(raw, (), GERMAN)
    assert result.notes == ()
    assert b"Achtung: Absender nicht \xfcberpr\xfcft.\n\nCher coll\xe8gue" in result.message
    check_rewrite(raw, result.message, (0,), [GERMAN.text])


def test_shift_jis_parts_get_a_shift_jis_warning() -> None:
    raw = load("shift-jis.eml", b"\r\n")
    result = rewrite(raw, (), JAPANESE)
    assert result.notes == ()
    assert JAPANESE.text.encode("shift_jis") + b"\r\n\r\n" in result.message
    check_rewrite(raw, result.message, (0, 1), [JAPANESE.text, JAPANESE.text])


def test_a_charset_that_cannot_show_the_warning_gets_the_ascii_form() -> None:
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


def test_a_japanese_warning_in_a_latin1_part_is_ascii() -> None:
    raw = load("latin1.eml", b"\n")
    result = rewrite(raw, (), JAPANESE)
    assert result.notes == ("warning in ASCII: charset iso-8859-1 cannot represent it",)
    check_rewrite(raw, result.message, (0,), [JAPANESE.ascii_text])


def test_a_7bit_part_gets_no_8bit_bytes() -> None:
    raw = load("plain.eml", b"\n").replace(b"charset=us-ascii", b"charset=utf-8")
    result = rewrite(raw, (), GERMAN)
    assert result.notes == ("warning in ASCII: the part is 7bit and utf-8 needs 8 bits",)
    assert all(byte < 0x80 for byte in result.message)
    check_rewrite(raw, result.message, (0,), [GERMAN.ascii_text])
    html = load("html-no-body.eml", b"\n")
    rewritten = rewrite(html, (), GERMAN).message
    assert all(byte < 0x80 for byte in rewritten)
    assert b"&#252;berpr&#252;ft" in rewritten


def test_quoted_printable_warning_in_utf8() -> None:
    raw = load("quoted-printable.eml", b"\n")
    result = rewrite(raw, (), GERMAN)
    assert b"Achtung: Absender nicht =C3=BCberpr=C3=BCft.\n\nDear colleague," in result.message
    check_rewrite(raw, result.message, (0,), [GERMAN.text])


def test_an_unknown_charset_gets_the_ascii_form() -> None:
    raw = load("plain.eml", b"\n").replace(b"charset=us-ascii", b"charset=x-unheard-of")
    result = rewrite(raw, (), GERMAN)
    assert result.notes == ("unknown charset x-unheard-of: warning in ASCII",)
    assert GERMAN.ascii_text.encode() + b"\n\nPlease wire" in result.message


def test_a_charset_that_is_not_ascii_compatible_is_left_alone() -> None:
    body = "Hello\n".encode("utf-16")
    raw = (
        b"From: x@y.example\nContent-Type: text/plain; charset=utf-16\n"
        b"Content-Transfer-Encoding: binary\n\n" + body
    )
    result = rewrite(raw, HEADERS, DEFAULT)
    assert result.notes == ("text part left untouched: charset utf-16 is not ASCII-compatible",)
    assert result.message == b"X-Test: yes\n" + raw


def test_a_utf8_byte_order_mark_stays_first() -> None:
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


def test_base64_keeps_its_line_length() -> None:
    raw = load("base64.eml", b"\n")
    rewritten = rewrite(raw, (), DEFAULT).message
    html_lines = part_lines(rewritten, b"BASE64")
    assert part_lines(raw, b"BASE64")[0].__len__() == 60
    assert all(len(line) == 60 for line in html_lines[:-2])  # last line and blank line
    plain_lines = part_lines(rewritten, b"Content-Transfer-Encoding: base64")
    assert all(len(line) == 76 for line in plain_lines[:-1])


def test_quoted_printable_lines_stay_within_76() -> None:
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


def test_a_body_tag_split_by_a_soft_line_break() -> None:
    raw = (
        b"From: x@y.example\nContent-Type: text/html; charset=utf-8\n"
        b"Content-Transfer-Encoding: quoted-printable\n\n"
        b'<html><bo=\ndy class=3D"x">caf=C3=A9 =\nmenu</body></html>\n'
    )
    result = rewrite(raw, (), DEFAULT)
    check_rewrite(raw, result.message, (0,), [DEFAULT.text])


def test_an_unknown_transfer_encoding_is_left_alone() -> None:
    raw = load("plain.eml", b"\n").replace(b"7bit", b"x-uuencode")
    result = rewrite(raw, (), DEFAULT)
    assert result.notes == (
        "text part left untouched: unknown Content-Transfer-Encoding x-uuencode",
    )
    assert result.message is raw


def test_a_base64_body_that_does_not_decode_is_left_alone() -> None:
    raw = (
        b"From: x@y.example\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
        b"SGVsbG8*\n"
    )
    result = rewrite(raw, (), DEFAULT)
    assert result.notes == ("text part left untouched: its base64 body does not decode",)
    assert result.message is raw


def test_binary_is_written_raw() -> None:
    raw = load("latin1.eml", b"\r\n").replace(b"8bit", b"binary")
    check_rewrite(raw, rewrite(raw, (), DEFAULT).message, (0,), [DEFAULT.text])


# -- Structure -------------------------------------------------------------------------


def test_no_body_no_warning() -> None:
    raw = b"From: x@y.example\r\nSubject: only a header"
    result = rewrite(raw, HEADERS, DEFAULT)
    assert result.notes == ("message has no body: warning not added",)
    assert result.message == b"X-Test: yes\r\n" + raw


def test_an_empty_body_gets_the_warning() -> None:
    raw = b"From: x@y.example\r\n\r\n"
    result = rewrite(raw, (), DEFAULT)
    assert result.message == raw + DEFAULT.text.encode() + b"\r\n\r\n"


def test_a_text_attachment_alone_is_not_a_body() -> None:
    raw = (
        b"From: x@y.example\nContent-Type: text/plain\n"
        b'Content-Disposition: attachment; filename="a.txt"\n\nData\n'
    )
    result = rewrite(raw, (), DEFAULT)
    assert result.notes == ("no text part for the warning",)
    assert result.message is raw


def test_a_non_text_body_gets_no_warning() -> None:
    raw = b"From: x@y.example\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\nAAAA\n"
    assert rewrite(raw, (), DEFAULT).notes == ("no text part for the warning",)


def test_mixed_skips_leading_attachments_and_inline_images() -> None:
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


def test_a_signed_part_inside_mixed_is_left_alone() -> None:
    signed = (MESSAGES / "signed.eml").read_bytes().split(b"\n", 5)[5]  # its MIME part
    raw = (
        b'From: x@y.example\nContent-Type: multipart/mixed; boundary="outer"\n\n'
        b"--outer\n" + signed + b"\n--outer--\n"
    )
    result = rewrite(raw, HEADERS, DEFAULT)
    assert result.notes == ("signed part left untouched: multipart/signed",)
    assert result.message == b"X-Test: yes\n" + raw


def test_a_missing_close_delimiter() -> None:
    raw = (
        b'From: x@y.example\nContent-Type: multipart/alternative; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nPlain.\n"
        b"--b\nContent-Type: text/html\n\n<body>HTML.</body>\n"
    )
    result = rewrite(raw, (), DEFAULT)
    assert result.warned == 2
    check_rewrite(raw, result.message, (0, 1), [DEFAULT.text] * 2)


def test_boundaries_that_prefix_each_other() -> None:
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
def test_a_malformed_multipart_is_left_alone(content_type: bytes, note: str) -> None:
    raw = b"From: x@y.example\nContent-Type: " + content_type + b"\n\n--b\n\nText\n--b--\n"
    result = rewrite(raw, (), DEFAULT)
    assert result.notes == (note,)
    assert result.message is raw


def test_deep_nesting_is_not_followed_forever() -> None:
    depth = 40
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth)
    )
    tail = b"".join(b"\n--b%d--" % i for i in reversed(range(depth)))
    raw = b"From: x@y.example\n" + head + b"Content-Type: text/plain\n\nDeep.\n" + tail + b"\n"
    result = rewrite(raw, (), DEFAULT)
    assert result.notes == ("MIME nesting deeper than 32: not searched further",)
    assert result.message is raw


def test_a_digest_part_without_content_type_is_a_message() -> None:
    raw = (
        b'From: x@y.example\nContent-Type: multipart/digest; boundary="d"\n\n'
        b"--d\n\nFrom: a@b.example\nSubject: one\n\nForwarded text.\n--d--\n"
    )
    assert rewrite(raw, (), DEFAULT).notes == ("no text part for the warning",)


def test_an_html_part_with_a_body_tag_in_capitals_and_quotes() -> None:
    raw = load("alternative.eml", b"\n")
    html = decoded_text(leaves(rewrite(raw, (), DEFAULT).message, email.policy.default)[1])
    assert "<BODY class=\"main\" data-x='a>b'>\n<p style=" in html


def test_a_multi_line_warning() -> None:
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


def test_base64_of_the_generated_kind_keeps_76() -> None:
    raw = build("x" * 500, "plain", "base64", "utf-8", "\r\n")
    assert raw is not None
    body = rewrite(raw, (), DEFAULT).message.split(b"\r\n\r\n", 1)[1]
    lines = body.split(b"\r\n")
    assert all(len(line) == 76 for line in lines[:-2])
    assert base64.b64decode(b"".join(lines)).startswith(DEFAULT.text.encode())


def test_a_body_tag_far_into_a_quoted_printable_part() -> None:
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
def test_the_check_catches_any_other_change(old: bytes, new: bytes) -> None:
    """The invariants above are not vacuous: one changed byte outside the warned bodies
    fails them."""
    raw = load("mixed.eml", b"\n")
    rewritten = rewrite(raw, HEADERS, DEFAULT).message
    assert rewritten.count(old) == 1
    with pytest.raises(AssertionError):
        check_rewrite(
            raw, rewritten.replace(old, new), (0, 1), [DEFAULT.text] * 2, b"X-Test: yes\n"
        )


def test_names_from_the_message_are_escaped_in_notes() -> None:
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
def test_damaged_messages_never_raise(name: str, edits: List[Tuple[float, int, bytes]]) -> None:
    """Whatever the damage, the rewrite returns a message that keeps every original
    byte (insertions only, or a base64 body re-encoded)."""
    data = bytearray(load(name, b"\n"))
    for where, length, insert in edits:
        position = int(where * len(data))
        data[position : position + length] = insert
    raw = bytes(data)
    result = rewrite(raw, HEADERS, GERMAN)
    assert result.message.startswith(b"X-Test: yes")
    assert len(result.message) > len(raw) or result.warned

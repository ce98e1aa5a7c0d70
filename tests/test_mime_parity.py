"""The Rust core's MIME rewrite (``fromguard._mime.rewrite``) and the pure-Python
reference (``fromguard.reference.mime.rewrite``) give the same message, byte for byte,
the same notes and the same count of warned parts: on every message file, on the
messages the benches generate, and on generated MIME (nesting, transfer encodings,
charsets, line ends, broken boundaries, attachments, HTML with and without ``<body>``,
damage). A wrapping multipart/mixed gets the same boundary in both (it is random in use).
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import json
import quopri
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fromguard._mime import Rewrite, WarningText
from fromguard._mime import rewrite as core_rewrite
from fromguard.reference.mime import rewrite as reference_rewrite

ROOT = Path(__file__).resolve().parent.parent
BOUNDARY = b"fromguard-0123456789abcdef0123456789abcdef"
WARNINGS = [
    WarningText("Caution: the sender's address could not be verified.", "Caution"),
    WarningText("Achtung: Absender nicht überprüft.\nÄußerst <wichtig> & so", "Achtung"),
    WarningText("差出人を確認できません。", "Caution: sender not verified."),
    WarningText("Line one.\n\nA 😀 and a long line " + "x" * 90, "ascii form"),
]
HEADERS = [("X-Fromguard-Verdict", "deceptive"), ("X-Empty", "")]


def outcome(rewrite: Callable[..., Rewrite], raw: bytes, *args: Any, **options: Any) -> Any:
    """A rewrite's result, or the class of what it raised."""
    try:
        return rewrite(raw, *args, boundary=BOUNDARY, **options)
    except Exception as error:  # both engines must fail alike
        return ("raised", isinstance(error, ValueError))


def assert_same(raw: bytes, warnings: Sequence[Optional[WarningText]] = WARNINGS) -> int:
    """Both engines on ``raw`` with each warning, headers or none, body only or not; the
    number of comparisons."""
    compared = 0
    for warning in warnings:
        for headers in (HEADERS, ()):
            for body_only in (False, True):
                core = outcome(core_rewrite, raw, headers, warning, body_only=body_only)
                reference = outcome(reference_rewrite, raw, headers, warning, body_only=body_only)
                assert core == reference, (warning, headers, body_only)
                compared += 1
    return compared


def message_files() -> List[Tuple[str, bytes]]:
    files = [
        (path.name, path.read_bytes())
        for path in sorted((ROOT / "tests/data/messages").glob("*.eml"))
    ]
    with open(ROOT / "tests/cases/messages/messages.jsonl", encoding="utf-8") as cases:
        for line in cases:
            case = json.loads(line)
            files.append((case["name"], case["message"].encode("utf-8", "surrogateescape")))
    return files


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_every_message_file(eol: bytes) -> None:
    files = message_files()
    assert len(files) > 60
    for _, raw in files:
        assert_same(raw if eol == b"\n" else raw.replace(b"\r\n", b"\n").replace(b"\n", eol))


def bench_mail() -> Any:
    spec = importlib.util.spec_from_file_location("bench_mail", ROOT / "benches" / "mail.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benches_phishing_and_ham() -> None:
    mail = bench_mail()
    messages = mail.phishing(120) + mail.ham(120)
    for raw in messages:
        assert_same(raw, WARNINGS[:2])


# -- Generated MIME ----------------------------------------------------------------------

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), include_characters="\n\t\r"),
    max_size=200,
)
CHARSETS = [
    "utf-8", "us-ascii", "iso-8859-1", "latin1", "UTF-8", '"utf-8"', "shift_jis",
    "koi8-r", "utf-16", "utf-8-sig", "x-unknown", "hex", "base64", "", "'x'", "<utf-8>",
    "windows-1252", "cp1252", "euc-jp", "utf-7",
]  # fmt: skip
ENCODINGS = ["7bit", "8bit", "binary", "quoted-printable", "base64", "x-uuencode", "", " Base64 "]
LEAF_TYPES = [
    "text/plain", "text/html", "text/html", "application/pdf", "image/png", "TEXT/Plain",
    "application/pkcs7-mime", "text", "message/rfc822",
]  # fmt: skip


def encoded(body: bytes, cte: str, width: int, damage: int) -> bytes:
    cte = cte.strip().lower()
    if cte == "quoted-printable":
        data = quopri.encodestring(body)
    elif cte == "base64":
        data = base64.b64encode(body)
        data = b"\n".join(data[i : i + width] for i in range(0, len(data), width)) + b"\n"
    else:
        data = body
    if damage and data:
        position = damage % len(data)
        data = data[:position] + b"!=\n"[damage % 3 : damage % 3 + 1] + data[position + 1 :]
    return data


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    ctype = draw(st.sampled_from(LEAF_TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    cte = draw(st.sampled_from(ENCODINGS))
    text = draw(TEXT)
    if "html" in ctype and draw(st.booleans()):
        tag = draw(st.sampled_from(["<body>", "<BODY class='a>b'>", '<body\n id="x">', "<body/>"]))
        text = draw(st.sampled_from(["<html><head></head>", ""])) + tag + text
    if draw(st.booleans()):
        text = "\ufeff" + text
    codec = charset.strip("\"'<>").lower() or "us-ascii"
    try:
        body = text.encode(codec)
    except (LookupError, UnicodeError, TypeError):
        body = text.encode("utf-8")
    head = f"Content-Type: {ctype}"
    if charset:
        head += f"; charset={charset}"
    head += "\n"
    if cte:
        head += f"Content-Transfer-Encoding: {cte}\n"
    if draw(st.integers(0, 5)) == 0:
        head += "Content-Disposition: attachment; filename=a.txt\n"
    if draw(st.integers(0, 5)) == 0:
        head += "Content-ID: <root@x>\n"
    width = draw(st.sampled_from([76, 60, 64, 8, 1000]))
    damage = draw(st.integers(0, 40)) if draw(st.integers(0, 3)) == 0 else 0
    return head.encode("utf-8") + b"\n" + encoded(body, cte, width, damage)


SUBTYPES = ["mixed", "alternative", "alternative", "related", "signed", "digest", "encrypted"]


def multipart(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        subtype = draw(st.sampled_from(SUBTYPES))
        boundary = draw(
            st.sampled_from(["b1", "b2", "=_b3", "b4", "b5", "b6", "b b", "b1 ", '"quoted;b"'])
        )
        parts = draw(st.lists(children, max_size=4))
        parameter = draw(
            st.sampled_from(
                [f'boundary="{boundary}"'] * 4
                + [f"boundary={boundary}", "", 'boundary="elsewhere"', f"BOUNDARY = {boundary}"]
            )
        )
        extra = draw(st.sampled_from(["", '; start="<root@x>"', "; start*=x", "; type=text/html"]))
        head = f"Content-Type: multipart/{subtype}; {parameter}{extra}\n\n".encode()
        delimiter = b"--" + boundary.strip('"').encode()
        body = draw(st.sampled_from([b"", b"preamble\n"]))
        body += b"".join(delimiter + b"\n" + part + b"\n" for part in parts)
        if draw(st.booleans()):
            body += delimiter + b"--\n" + draw(st.sampled_from([b"", b"epilogue\n"]))
        return head + body

    return build()


ENTITY = st.recursive(leaf(), multipart, max_leaves=8)


@st.composite
def message(draw: st.DrawFn) -> bytes:
    head = b"From: x@y.example\nSubject: s\n"
    if draw(st.booleans()):
        head += b"MIME-Version: 1.0\n"
    if draw(st.integers(0, 7)) == 0:
        head = b"From mallory@evil.example Mon Nov  4 09:00:00 2024\n" + head
    raw = head + draw(ENTITY)
    if draw(st.booleans()):
        raw = raw.replace(b"\n", b"\r\n")
    for position, length, insert in draw(
        st.lists(
            st.tuples(
                st.floats(0, 1),
                st.integers(0, 8),
                st.sampled_from([b"", b"\n", b"\r", b"--", b"=", b'"', b"<body>", b"\xff"]),
            ),
            max_size=2,
        )
    ):
        at = int(position * len(raw))
        raw = raw[:at] + insert + raw[at + length :]
    return raw


@settings(max_examples=1500, deadline=None)
@given(raw=message(), warning=st.sampled_from(WARNINGS), body_only=st.booleans())
def test_generated_messages(raw: bytes, warning: WarningText, body_only: bool) -> None:
    core = outcome(core_rewrite, raw, HEADERS, warning, body_only=body_only)
    reference = outcome(reference_rewrite, raw, HEADERS, warning, body_only=body_only)
    assert core == reference


HEADER_PIECES = [b"From ", b"From: a", b"From : x", b"X: y", b"abc", b":", b" ", b"\r", b"\n"]
HEADER_PIECES += [b"\r\n", b"\r\n\r\n", b"Content-Transfer-Encoding: base64\r\n"]


@settings(max_examples=1500, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(HEADER_PIECES), max_size=12),
    body=leaf(),
    container=st.sampled_from([b"", b"mixed", b"alternative"]),
    warning=st.sampled_from(WARNINGS),
    body_only=st.booleans(),
)
def test_header_blocks_other_readers_end_early(
    pieces: List[bytes], body: bytes, container: bytes, warning: WarningText, body_only: bool
) -> None:
    """Header blocks with bare CRs, lines that are no field and ``From `` lines (the
    email package ends some of them early), before a text part of every kind: the
    message's, or a part's in a multipart."""
    raw = b"".join(pieces) + body
    if container:
        raw = (
            b"From: x@y.example\nContent-Type: multipart/" + container + b"; boundary=b\n\n"
            b"--b\n" + raw + b"\n--b--\n"
        )  # fmt: skip
    core = outcome(core_rewrite, raw, HEADERS, warning, body_only=body_only)
    reference = outcome(reference_rewrite, raw, HEADERS, warning, body_only=body_only)
    assert core == reference


PIECES = ["text/plain", ";", " ", "\r\n\t", "charset", "boundary", "CHARSET", "=", '"', "'", "\\"]
PIECES += ["utf-8", "a b", "<x>", "*", "*0", "(c)", ",", "UTF-8", "=_x", "é", "<", ">", '"x"']
PIECES += ["multipart/mixed", "start", "\x1f", "--b", "iso-8859-1"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=14))
def test_content_type_parameters(pieces: List[str]) -> None:
    """Content-Type values of every shape, in a multipart and in a text part: both
    engines read the boundary, the charset and the start alike (or both decline)."""
    value = "".join(pieces).encode("utf-8")
    multipart = (
        b"From: x@y.example\nContent-Type: " + value + b"\n\n--b\nContent-Type: text/plain; "
        + value + b"\n\nText\n--a b\n\nMore\n--b--\n"
    )  # fmt: skip
    single = b"From: x@y.example\nContent-Type: text/html; " + value + b"\n\n<body>Text\n"
    for raw in (multipart, single):
        assert_same(raw, WARNINGS[1:2])


def test_a_base64_part_of_every_line_shape() -> None:
    """Base64 bodies whose lines are cut at every width, with every padding, each
    with a stray character at a few places."""
    text = ("Dear customer, caf\u00e9 \u2014 " * 40).encode("utf-8")
    compared = 0
    for width in (4, 8, 60, 64, 76, 996, 1000):
        for length in (len(text), len(text) - 1, len(text) - 2):
            data = binascii.b2a_base64(text[:length], newline=False)
            lines = [data[i : i + width] for i in range(0, len(data), width)]
            for damage in (None, 0, len(data) // 2, len(data) - 1):
                body = b"\n".join(lines) + b"\n"
                if damage is not None:
                    body = body[:damage] + b"!" + body[damage:]
                raw = (
                    b"From: x@y.example\nContent-Type: text/plain; charset=utf-8\n"
                    b"Content-Transfer-Encoding: base64\n\n" + body
                )
                compared += assert_same(raw, WARNINGS[:1])
    assert compared == 7 * 3 * 4 * 4


def test_the_fuzz_regressions() -> None:
    """The inputs that made the core's fuzz target fail (``fuzz/regressions/rewrite``: a
    flags byte, then the message; see ``fuzz/fuzz_targets/rewrite.rs``), with the
    warning the target chose: the engines agree and neither fails."""
    texts = [
        "Caution: the sender's address could not be verified.",
        "Achtung: Absender nicht überprüft.\nZweite <Zeile> & so",
        "差出人",
    ]
    found = sorted((ROOT / "fuzz" / "regressions" / "rewrite").iterdir())
    assert found
    for path in found:
        flags, raw = path.read_bytes()[0], path.read_bytes()[1:]
        warning = WarningText(texts[(flags >> 1) % 3], "Caution: sender not verified.")
        headers = [("X-Fromguard", "warned")] if flags & 0x80 else []
        core = outcome(core_rewrite, raw, headers, warning, body_only=bool(flags & 1))
        reference = outcome(reference_rewrite, raw, headers, warning, body_only=bool(flags & 1))
        assert core == reference
        assert isinstance(core, Rewrite)


def test_the_policy_fuzz_regressions() -> None:
    """The inputs the policy fuzz found (``fuzz/regressions/policy``: header blocks the
    email package ends early, some of them wrapped): the engines agree byte for byte."""
    found = sorted((ROOT / "fuzz" / "regressions" / "policy").iterdir())
    assert found
    for path in found:
        assert assert_same(path.read_bytes()) == len(WARNINGS) * 4

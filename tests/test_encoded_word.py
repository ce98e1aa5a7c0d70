"""RFC 2047 encoded-words in the pure-Python reference (fromguard.reference.encoded_word).

The case file tests/cases/encoded_words.jsonl is shared with the Rust core's test
(rust/core/tests/encoded_words.rs): both implementations must give exactly the expected
spans, charsets, decoded text, errors and too-long flags. Each case is one JSON object:

    name        what the case shows
    input       the text searched (its UTF-8 bytes; spans are byte offsets)
    words       [[start, end], ...]: every encoded-word find_encoded_words returns
    decoded     the decode of each word: a string, or {"error": "unknown-charset" |
                "bad-encoding"}; absent when there are no words
    error       (single-word cases) the word's decode error, instead of "decoded"
    too_long    true when every word is over 75 characters (default false: none is)
    charsets    the charset label of each word, as written, without a *language suffix
    encodings   "B" or "Q" for each word
"""

from __future__ import annotations

import base64
import codecs
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from fromguard.reference import encoded_word as ew

CASES_FILE = Path(__file__).parent / "cases" / "encoded_words.jsonl"


def load_cases() -> List[Dict[str, Any]]:
    with CASES_FILE.open(encoding="utf-8", newline="\n") as f:
        return [json.loads(line) for line in f if line.strip()]


CASES = load_cases()


def expected_results(case: Dict[str, Any]) -> List[Any]:
    if "error" in case:
        return [{"error": case["error"]}] * len(case["words"])
    return case.get("decoded", [])


def result_json(result: Any) -> Any:
    return result if isinstance(result, str) else {"error": result.value}


def test_case_file_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({case["name"] for case in CASES}) == len(CASES), "case names are unique"


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_case(case: Dict[str, Any]) -> None:
    data = case["input"].encode("utf-8")
    words = ew.find_encoded_words(data, 0, len(data))
    assert [[w.start, w.end] for w in words] == case["words"]
    assert [result_json(ew.decode(data, w)) for w in words] == expected_results(case)
    assert [ew.too_long(w) for w in words] == [case.get("too_long", False)] * len(words)
    if "charsets" in case:
        assert [w.charset for w in words] == case["charsets"]
    if "encodings" in case:
        assert [w.encoding.value for w in words] == case["encodings"]
    for w in words:
        # A word found by the search is matched at its start, and not within a shorter end.
        assert ew.match_encoded_word(data, w.start, len(data)) == w
        assert ew.match_encoded_word(data, w.start, w.end) == w
        assert ew.match_encoded_word(data, w.start, w.end - 1) is None
        assert data[w.text_start - 1 : w.text_start] == b"?"
        assert data[w.text_end : w.end] == b"?="


def test_every_label_has_a_real_text_case() -> None:
    names = {case["name"] for case in CASES}
    missing = [label for label in ew.charset_labels() if "real text in " + label not in names]
    assert not missing


# -- the charset table ---------------------------------------------------------------------

WHATWG_NAMES = ew.SINGLE_BYTE | {
    "UTF-8",
    "UTF-16LE",
    "UTF-16BE",
    "GBK",
    "gb18030",
    "Big5",
    "EUC-JP",
    "ISO-2022-JP",
    "Shift_JIS",
    "EUC-KR",
}


def test_charset_table() -> None:
    labels = ew.charset_labels()
    assert len(labels) == len(set(labels)), "no duplicate labels"
    for label in labels:
        assert label == label.lower()
        encoding = ew.charset_encoding_name(label)
        assert encoding == "utf-7" or encoding in WHATWG_NAMES, label
        charset = ew._lookup_charset(label)
        assert charset is not None
        codec = charset.python_codec
        if encoding == "utf-7":
            assert codec == "-"
        else:
            codecs.lookup(codec)
    assert ew.charset_encoding_name("UTF-8") == "UTF-8"
    assert ew.charset_encoding_name("Iso-8859-1") == "windows-1252"
    assert ew.charset_encoding_name("x-unknown") is None
    assert ew.charset_encoding_name("a" * 100) is None


def test_decode_error_codes() -> None:
    assert ew.DecodeError.UNKNOWN_CHARSET.code == "encoded-word-unknown-charset"
    assert ew.DecodeError.BAD_ENCODING.code == "encoded-word-bad-encoding"


def test_bounds() -> None:
    data = b"=?utf-8?q?a?="
    assert ew.match_encoded_word(data, 0, len(data)) is not None
    assert ew.match_encoded_word(data, 0, len(data) - 1) is None
    assert ew.match_encoded_word(data, 1, len(data)) is None
    assert ew.match_encoded_word(data, len(data) + 5, len(data) + 9) is None
    assert ew.find_encoded_words(data, 0, len(data) - 1) == []
    assert ew.find_encoded_words(data, 5, 2) == []
    assert ew.find_encoded_words(data, 100, 200) == []
    foreign = ew.EncodedWord(0, 100, "utf-8", ew.WordEncoding.Q, 50, 40)
    assert ew.decode(b"short", foreign) is ew.DecodeError.BAD_ENCODING


# -- other decoders' readings (other_charsets.tsv) ----------------------------------------


def word_of(text: str) -> Tuple[bytes, ew.EncodedWord]:
    data = text.encode("ascii")
    word = ew.match_encoded_word(data, 0, len(data))
    assert word is not None
    return data, word


def test_other_readings_labels() -> None:
    assert ew.other_readings("UTF-32") == ("utf-32be", "utf-32le")
    assert ew.other_readings("utf-16") == ("utf-16be",)  # fromguard reads it little-endian
    assert ew.other_readings("utf-16le") == ()
    assert ew.other_readings("IBM037") == ("cp037",)
    assert ew.other_readings("Ebcdic-Cp-Us") == ("cp037",)
    assert ew.other_readings("utf-8") == ()
    assert ew.other_readings("x" * 100) == ()
    for label, readings in ew._OTHER_READINGS.items():
        assert label == label.lower() and readings, label
        assert all(ew.is_token_char(b) for b in label.encode("ascii")), label
        # Only "utf-16" is both fromguard's and read otherwise elsewhere.
        assert ew.charset_encoding_name(label) is None or label == "utf-16", label
        for reading in readings:
            assert reading in ("utf-16be", "utf-16le", "utf-32be", "utf-32le") or (
                reading in ew._OTHER_TABLES
            ), label


@pytest.mark.parametrize("codec", sorted(ew._OTHER_TABLES))
def test_ebcdic_tables_are_pythons_codecs(codec: str) -> None:
    raw = bytes(range(256))
    data, word = word_of("=?%s?b?%s?=" % (codec, base64.b64encode(raw).decode()))
    assert ew.decode_other(data, word, codec) == raw.decode(codec, "replace")


def test_utf16_and_utf32_readings() -> None:
    def b(raw: bytes) -> Tuple[bytes, ew.EncodedWord]:
        return word_of("=?x?b?%s?=" % base64.b64encode(raw).decode())

    text = "ceo@b\u00e4nk \U0001f600"
    for reading, codec in (
        ("utf-16be", "utf-16-be"),
        ("utf-16le", "utf-16-le"),
        ("utf-32be", "utf-32-be"),
        ("utf-32le", "utf-32-le"),
    ):
        assert ew.decode_other(*b(text.encode(codec)), reading) == text
    # A byte-order mark decides the order and is dropped, as Python's codec and iconv do.
    assert ew.decode_other(*b(text.encode("utf-16-le")), "utf-16be") != text
    assert ew.decode_other(*b(b"\xff\xfe" + text.encode("utf-16-le")), "utf-16be") == text
    assert ew.decode_other(*b(b"\x00\x00\xfe\xff" + text.encode("utf-32-be")), "utf-32le") == text
    # Unpaired surrogates, units above U+10FFFF and bytes left over are U+FFFD.
    assert ew.decode_other(*b(b"\xd8\x00\x00A\x00"), "utf-16be") == "\ufffdA\ufffd"
    assert ew.decode_other(*b(b"\x00\x11\x00\x00\x00\x00\x00A\x00"), "utf-32be") == (
        "\ufffdA\ufffd"
    )
    assert ew.decode_other(*b(b"\x00\x00\xd8\x00"), "utf-32be") == "\ufffd"
    assert ew.decode_other(*word_of("=?x?b?Y?="), "utf-32be") is ew.DecodeError.BAD_ENCODING


def test_decode_ignoring_charset() -> None:
    assert ew.decode_ignoring_charset(*word_of("=?x?q?a=40b=FF?=")) == "a@b\ufffd"
    assert ew.decode_ignoring_charset(*word_of("=?x?q?a=4?=")) is ew.DecodeError.BAD_ENCODING


def test_modified_utf7() -> None:
    assert ew.decode_modified_utf7("ceo&AEA-bank.example") == "ceo@bank.example"
    assert ew.decode_modified_utf7("&ZeVnLIqe-") == "\u65e5\u672c\u8a9e"
    assert ew.decode_modified_utf7("a&-b&AOk-") == "a&b\u00e9"
    assert ew.decode_modified_utf7("x&P,8-") == "x\u3fff"  # "," stands for "/"
    assert ew.decode_modified_utf7("Tom&Jerry") is None  # no "-" ends the run
    assert ew.decode_modified_utf7("a&-b") is None  # only an escaped "&"
    assert ew.decode_modified_utf7("plain") is None
    assert ew.decode_modified_utf7("&&AEA-") == "&@"


def test_b_text_misaligned() -> None:
    assert not ew.b_text_misaligned(word_of("=?utf-8?b?SmFu?=")[1])
    assert ew.b_text_misaligned(word_of("=?utf-8?b?ey?=")[1])
    assert ew.b_text_misaligned(word_of("=?utf-8?b?Y?=")[1])
    assert ew.b_text_misaligned(word_of("=?utf-8?b?SmFuZQ==Y?=")[1])
    assert not ew.b_text_misaligned(word_of("=?utf-8?q?ey?=")[1])
    data, word = word_of("=?utf-8?b?SmFuZQ==Y?=")
    trimmed = ew.without_dangling_b_char(word)
    assert trimmed is not None and ew.decode(data, trimmed) == "Jane"
    assert ew.without_dangling_b_char(word_of("=?utf-8?b?SmFuZQ?=")[1]) is None


# -- generated inputs (hypothesis) ---------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies
given = hypothesis.given
settings = hypothesis.settings

BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def encode_b(raw: bytes) -> str:
    """A small base64 encoder of the test's own, with padding."""
    out = []
    for i in range(0, len(raw), 3):
        group = raw[i : i + 3]
        n = int.from_bytes(group + b"\0" * (3 - len(group)), "big")
        chars = [BASE64[(n >> shift) & 63] for shift in (18, 12, 6, 0)]
        out.append("".join(chars[: len(group) + 1]) + "=" * (3 - len(group)))
    return "".join(out)


def encode_q(raw: bytes) -> str:
    """A small Q encoder of the test's own: letters and digits literal, space as "_"."""
    out = []
    for b in raw:
        c = chr(b)
        if b == 0x20:
            out.append("_")
        elif b < 0x80 and c.isalnum():
            out.append(c)
        else:
            out.append("=%02X" % b)
    return "".join(out)


# (label, codec used to encode, characters the text is drawn from)
ROUND_TRIP_CHARSETS = [
    ("utf-8", "utf-8", st.characters(blacklist_categories=("Cs",))),
    ("UTF-8", "utf-8", st.characters(blacklist_categories=("Cs",))),
    ("us-ascii", "ascii", st.characters(max_codepoint=0x7F)),
    # WHATWG reads iso-8859-1 as windows-1252: any text windows-1252 can encode.
    ("iso-8859-1", "cp1252", st.sampled_from(bytes(range(256)).decode("cp1252", "ignore"))),
    ("koi8-r", "koi8_r", st.sampled_from(bytes(range(256)).decode("koi8_r"))),
]


@settings(max_examples=300, deadline=None)
@given(
    charset=st.sampled_from(ROUND_TRIP_CHARSETS).flatmap(
        lambda c: st.tuples(st.just(c[0]), st.just(c[1]), st.text(c[2], max_size=40))
    ),
    use_b=st.booleans(),
    prefix=st.text(st.sampled_from(" abc=?\t"), max_size=5),
)
def test_round_trip(charset: Any, use_b: bool, prefix: str) -> None:
    label, codec, text = charset
    raw = text.encode(codec)
    if not raw:
        return  # encoded-text is 1*: an empty text has no encoded-word
    word = "=?%s?%s?%s?=" % (
        label,
        "B" if use_b else "Q",
        encode_b(raw) if use_b else encode_q(raw),
    )
    data = (prefix + " " + word).encode("ascii")
    words = ew.find_encoded_words(data, 0, len(data))
    assert [(w.start, w.end) for w in words] == [(len(prefix) + 1, len(data))]
    assert ew.decode(data, words[0]) == text


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_utf7_round_trip(text: str) -> None:
    # Python's UTF-7 encoder produces the text; only the decoder is fromguard's own.
    raw = text.encode("utf-7")
    assert ew.decode_utf7(raw) == text
    if raw:
        data = b"=?utf-7?B?" + encode_b(raw).encode() + b"?="
        [word] = ew.find_encoded_words(data, 0, len(data))
        assert ew.decode(data, word) == text


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [b"=?", b"?=", b"?", b"=", b"utf-8", b"utf-7", b"*en", b"?q?", b"?B?", b" "]
            ),
            st.binary(max_size=6),
        ),
        max_size=20,
    ).map(b"".join)
)
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    words = ew.find_encoded_words(data, 0, len(data))
    last_end = 0
    for w in words:
        assert last_end <= w.start < w.text_start < w.text_end < w.end <= len(data)
        last_end = w.end
        result = ew.decode(data, w)
        assert isinstance(result, (str, ew.DecodeError))
    for pos in range(len(data)):
        found = ew.match_encoded_word(data, pos, len(data))
        assert found is None or found.start == pos

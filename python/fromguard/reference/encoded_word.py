"""RFC 2047 encoded-words, for the pure-Python reference: finding them, and decoding B and
Q text in the charsets of ``fromguard/data/charsets.tsv`` (a copy of the core's
``rust/core/data/charsets.tsv``).

This module is the twin of ``rust/core/src/encoded_word.rs``: the same functions under
the same names, giving the same results on every input (``tests/cases/encoded_words.jsonl``
is run against both). All positions are byte offsets into the input.

Matching is purely syntactic: where an encoded-word may appear (RFC 2047 §5) and the
75-character limit (§2, see ``too_long``) are judged by the caller. Decoding never raises:
malformed bytes in the decoded charset become U+FFFD, and only a charset that is not in
the table (``DecodeError.UNKNOWN_CHARSET``) or B/Q text that does not decode
(``DecodeError.BAD_ENCODING``) is an error, returned (not raised) like Rust's ``Err``.

The base64, Q and UTF-7 decoders are written out by hand, as in Rust, so that both
implementations accept and reject exactly the same text.
"""

from __future__ import annotations

import codecs
import enum
import functools
import re
from importlib import resources
from typing import Callable, Dict, List, Literal, NamedTuple, Optional, Tuple, Union

__all__ = [
    "MAX_ENCODED_WORD_LEN",
    "DecodeError",
    "EncodedWord",
    "WordEncoding",
    "b_text_misaligned",
    "charset_encoding_name",
    "charset_labels",
    "decode",
    "decode_ignoring_charset",
    "decode_modified_utf7",
    "decode_other",
    "find_encoded_words",
    "match_encoded_word",
    "other_readings",
    "too_long",
    "without_dangling_b_char",
]

# RFC 2047 §2: "An 'encoded-word' may not be more than 75 characters long, including
# 'charset', 'encoding', 'encoded-text', and delimiters."
MAX_ENCODED_WORD_LEN = 75

# The longest charset label the table may hold (a longer label is unknown).
MAX_LABEL_LEN = 40

REPLACEMENT = "\ufffd"


class WordEncoding(enum.Enum):
    """The ``encoding`` of an encoded-word: "B" (base64) or "Q", either case in the input."""

    B = "B"
    Q = "Q"


class DecodeError(enum.Enum):
    """Why an encoded-word does not decode. The value is the name used in the case files;
    ``code`` is the finding that reports it."""

    UNKNOWN_CHARSET = "unknown-charset"  # the label is not in charsets.tsv
    BAD_ENCODING = "bad-encoding"  # the text is not valid B or Q encoding

    @property
    def code(self) -> str:
        """The finding code: ``encoded-word-unknown-charset`` or ``encoded-word-bad-encoding``."""
        return "encoded-word-" + self.value


class EncodedWord(NamedTuple):
    """One encoded-word: ``data[start:end]`` is
    ``"=?" charset ["*" language] "?" encoding "?" encoded-text "?="``."""

    start: int  # offset of the opening "=?"
    end: int  # offset just past the closing "?="
    charset: str  # the label as written (any case), without an RFC 2231 "*language"
    encoding: WordEncoding
    text_start: int  # offset of the first byte of the encoded-text
    text_end: int  # offset just past the encoded-text (the "?" of "?=")


# -- matching ------------------------------------------------------------------------------

# RFC 2047 §2 especials, which a charset or encoding token may not contain.
ESPECIALS = b'()<>@,;:"/[]?.='


def is_token_char(b: int) -> bool:
    """token = 1*<Any CHAR except SPACE, CTLs, and especials>"""
    return 0x21 <= b <= 0x7E and b not in ESPECIALS


def is_encoded_text_char(b: int) -> bool:
    """encoded-text is printable ASCII other than "?" (and SPACE)."""
    return 0x21 <= b <= 0x7E and b != 0x3F


def _byte_class(member: Callable[[int], bool]) -> bytes:
    """A regular-expression character class of the ASCII bytes ``member`` accepts."""
    return b"[" + b"".join(re.escape(bytes([b])) for b in range(128) if member(b)) + b"]"


# Greedy runs that end where "?" must follow: neither class holds "?", so no shorter run
# could match instead, and the match is the byte-by-byte reading of the grammar.
_ENCODED_WORD = re.compile(
    rb"=\?("
    + _byte_class(is_token_char)
    + rb"+)\?([BbQq])\?("
    + _byte_class(is_encoded_text_char)
    + rb"+)\?="
)


def match_encoded_word(data: bytes, pos: int, end: int) -> Optional[EncodedWord]:
    """The encoded-word that starts exactly at ``pos`` and ends at or before ``end``, if any.

    RFC 2047 §2, with the language suffix of RFC 2231 §5::

        encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
        charset = token    ; see section 3
        encoding = token   ; see section 4
        token = 1*<Any CHAR except SPACE, CTLs, and especials>
        especials = "(" / ")" / "<" / ">" / "@" / "," / ";" / ":" / "
                    <"> / "/" / "[" / "]" / "?" / "." / "="
        encoded-text = 1*<Any printable ASCII character other than "?"
                          or SPACE>

        RFC 2231 §5: encoded-word := "=?" charset ["*" language] "?" encoded-text "?="

    fromguard reads the charset token as ``1*(token-char except "*")``, optionally followed
    by ``"*"`` and a non-empty language of the same characters, which is dropped; the
    encoding must be B or Q in either case. The match ends at the first "?" after the
    encoded-text starts, which must be followed by "=". The 75-character limit is not
    enforced here (see ``too_long``).
    """
    # One regular-expression match bounded by ``end``, without copying ``data``: a copy
    # per "=?" made a text of many openers quadratic.
    limit = max(0, min(end, len(data)))
    found = _ENCODED_WORD.match(data, pos, limit) if pos >= 0 else None
    if found is None:
        return None
    charset, star, language = found.group(1).partition(b"*")
    if not charset or (star and (not language or b"*" in language)):
        return None
    encoding = WordEncoding.B if found.group(2) in b"Bb" else WordEncoding.Q
    text_start, text_end = found.span(3)
    return EncodedWord(pos, found.end(), charset.decode("ascii"), encoding, text_start, text_end)


def find_encoded_words(data: bytes, start: int, end: int) -> List[EncodedWord]:
    """Every encoded-word in ``data[start:end]``, left to right, not overlapping: at each
    "=?" a match is tried; after a match the search goes on at its end, otherwise at the
    next byte."""
    end = min(end, len(data))
    words: List[EncodedWord] = []
    pos = max(start, 0)
    while True:
        at = data.find(b"=?", pos, end)
        if at < 0:
            return words
        word = match_encoded_word(data, at, end)
        if word is None:
            pos = at + 1
        else:
            words.append(word)
            pos = word.end


def too_long(word: EncodedWord) -> bool:
    """Whether the whole encoded-word is longer than the 75 characters RFC 2047 §2 allows."""
    return word.end - word.start > MAX_ENCODED_WORD_LEN


def b_text_misaligned(word: EncodedWord) -> bool:
    """Whether ``word`` is B text whose length is not a multiple of 4 (RFC 2045 §6.8 pads
    base64 to groups of 4): missing padding, which ``decode_b`` accepts as GMime and
    Thunderbird do while Python's email notes a defect, and a dangling character (a
    remainder of 1), which does not decode at all. One rule reports both."""
    return word.encoding is WordEncoding.B and (word.text_end - word.text_start) % 4 != 0


def without_dangling_b_char(word: EncodedWord) -> Optional[EncodedWord]:
    """``word`` without the last character of its B text when that character dangles (a
    remainder of 1, which ``decode`` rejects): what GMime and Thunderbird decode, the
    whole groups before it. None for any other word."""
    dangling = word.encoding is WordEncoding.B and (word.text_end - word.text_start) % 4 == 1
    return word._replace(text_end=word.text_end - 1) if dangling else None


# -- decoding ------------------------------------------------------------------------------


def decode(data: bytes, word: EncodedWord) -> Union[str, DecodeError]:
    """The decoded text of ``word``, found in ``data``, or the DecodeError (returned).

    The charset is looked up first (an unknown charset is UNKNOWN_CHARSET whatever the
    text), then the B or Q text is decoded to bytes (BAD_ENCODING when it does not decode),
    then the bytes are decoded in the charset, malformed sequences becoming U+FFFD. The
    text is returned faithfully: "<", "@", controls, line breaks and bidi controls are for
    the caller to judge.
    """
    charset = _lookup_charset(word.charset)
    if charset is None:
        return DecodeError.UNKNOWN_CHARSET
    raw = _decode_b_or_q(data, word)
    if isinstance(raw, DecodeError):
        return raw
    return _decode_charset(raw, charset)


BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
BASE64_VALUE: Dict[int, int] = {c: v for v, c in enumerate(BASE64_ALPHABET)}


def decode_b(text: bytes) -> Optional[bytes]:
    """RFC 2047 §4.1, "B": base64 (RFC 2045 §6.8), or None when it does not decode.

    Padding "=" only at the end; the length without it must not be 1 more than a multiple
    of 4; padding, when present, must complete the last group of 4 exactly; missing
    padding is accepted; any other character is an error; leftover bits are ignored.
    """
    body = text.rstrip(b"=")
    padding = len(text) - len(body)
    remainder = len(body) % 4
    if remainder == 1:
        return None
    if padding and (remainder == 0 or remainder + padding != 4):
        return None
    out = bytearray()
    acc = bits = 0
    for c in body:
        value = BASE64_VALUE.get(c)
        if value is None:
            return None
        acc = (acc << 6) | value
        bits += 6
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
            acc &= (1 << bits) - 1
    return bytes(out)


HEX_VALUE: Dict[int, int] = {c: int(chr(c), 16) for c in b"0123456789ABCDEFabcdef"}


def decode_q(text: bytes) -> Optional[bytes]:
    """RFC 2047 §4.2, "Q", or None when it does not decode: "_" is a space, "=XX" the byte
    of two hex digits (either case), any other "=" is an error, every other character
    stands for itself."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == 0x5F:  # "_"
            out.append(0x20)
            i += 1
        elif c == 0x3D:  # "="
            high = HEX_VALUE.get(text[i + 1]) if i + 1 < len(text) else None
            low = HEX_VALUE.get(text[i + 2]) if i + 2 < len(text) else None
            if high is None or low is None:
                return None
            out.append((high << 4) | low)
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def _decode_b_or_q(data: bytes, word: EncodedWord) -> Union[bytes, DecodeError]:
    """The bytes of the word's B or Q text (BAD_ENCODING when it does not decode)."""
    if not 0 <= word.text_start <= word.text_end <= len(data):
        return DecodeError.BAD_ENCODING
    text = data[word.text_start : word.text_end]
    raw = decode_b(text) if word.encoding is WordEncoding.B else decode_q(text)
    return DecodeError.BAD_ENCODING if raw is None else raw


def decode_utf7(raw: bytes) -> str:
    """RFC 2152 UTF-7, decoded by hand (not with Python's codec, whose errors differ).
    Malformed input becomes U+FFFD:

    - an ASCII byte other than "+" stands for itself; a byte of 0x80 or more is one U+FFFD;
    - "+-" is "+";
    - "+" followed by base64 characters starts a run of UTF-16 code units in modified
      base64; the run ends before the first other character, and a "-" ending it is
      dropped; the end of the input ends it too;
    - "+" followed by neither "-" nor a base64 character is one U+FFFD (the next character
      is then read normally);
    - at the end of a run, a high surrogate still waiting is one U+FFFD, and leftover bits
      (6 or more, or any of them non-zero) are one more U+FFFD;
    - a low surrogate without a high one, or a high surrogate followed by a unit that is
      not a low surrogate, is one U+FFFD (the following unit is then read normally).
    """
    out: List[str] = []
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        i += 1
        if b != 0x2B:  # not "+"
            out.append(chr(b) if b < 0x80 else REPLACEMENT)
            continue
        if i < n and raw[i] == 0x2D:  # "+-"
            out.append("+")
            i += 1
            continue
        run_start = i
        acc = bits = 0
        high: Optional[int] = None
        while i < n and raw[i] in BASE64_VALUE:
            acc = (acc << 6) | BASE64_VALUE[raw[i]]
            bits += 6
            i += 1
            if bits >= 16:
                bits -= 16
                unit = (acc >> bits) & 0xFFFF
                acc &= (1 << bits) - 1
                high = _push_utf16_unit(out, high, unit)
        if i == run_start:
            out.append(REPLACEMENT)
            continue
        if high is not None:
            out.append(REPLACEMENT)
        if bits >= 6 or acc != 0:
            out.append(REPLACEMENT)
        if i < n and raw[i] == 0x2D:  # a "-" ending the run is dropped
            i += 1
    return "".join(out)


def _push_utf16_unit(out: List[str], high: Optional[int], unit: int) -> Optional[int]:
    """Append what one UTF-16 code unit gives; return the high surrogate left waiting."""
    if 0xD800 <= unit <= 0xDBFF:
        if high is not None:
            out.append(REPLACEMENT)
        return unit
    if 0xDC00 <= unit <= 0xDFFF:
        if high is None:
            out.append(REPLACEMENT)
        else:
            out.append(chr(0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00)))
        return None
    if high is not None:
        out.append(REPLACEMENT)
    out.append(chr(unit))
    return None


# -- the charset table ---------------------------------------------------------------------


class Charset(NamedTuple):
    """A row of charsets.tsv: the WHATWG encoding name and the Python codec."""

    encoding: str
    python_codec: str


# The WHATWG single-byte encodings. Python decodes them through a 256-entry table built
# from the codec, patched where the codec and the WHATWG index differ (a byte Python's
# codec leaves undefined but WHATWG maps). The Rust tests and the case file check every
# byte of every one of them against encoding_rs.
SINGLE_BYTE = {
    "IBM866",
    "ISO-8859-2",
    "ISO-8859-3",
    "ISO-8859-4",
    "ISO-8859-5",
    "ISO-8859-6",
    "ISO-8859-7",
    "ISO-8859-8",
    "ISO-8859-8-I",
    "ISO-8859-10",
    "ISO-8859-13",
    "ISO-8859-14",
    "ISO-8859-15",
    "ISO-8859-16",
    "KOI8-R",
    "KOI8-U",
    "macintosh",
    "windows-874",
    "windows-1250",
    "windows-1251",
    "windows-1252",
    "windows-1253",
    "windows-1254",
    "windows-1255",
    "windows-1256",
    "windows-1257",
    "windows-1258",
}

# Where WHATWG's index differs from Python's codec: byte -> the WHATWG character.
SINGLE_BYTE_PATCHES: Dict[str, Dict[int, str]] = {
    # WHATWG's KOI8-U is KOI8-RU: Belarusian short u where KOI8-U has box drawings.
    "KOI8-U": {0xAE: "\u045e", 0xBE: "\u040e"},
    # WHATWG maps 0xCA to HEBREW POINT HOLAM HASER FOR VAV; Python's cp1255 leaves it out.
    "windows-1255": {0xCA: "\u05ba"},
}

# In the windows-* encodings, WHATWG maps every byte 0x80-0x9F that Microsoft leaves
# undefined to the C1 control of the same number (windows-1252's 0x81, 0x8D, 0x8F, 0x90,
# 0x9D and the like), where Python's codecs reject it.
C1_FILLED = {name for name in SINGLE_BYTE if name.startswith("windows-")}


def _load_charsets() -> Tuple[Dict[str, Charset], List[str]]:
    """charsets.tsv: comment lines (#), blank lines and the header line are skipped."""
    text = (resources.files("fromguard") / "data" / "charsets.tsv").read_text("utf-8")
    by_label: Dict[str, Charset] = {}
    labels: List[str] = []
    for line in text.splitlines():
        if not line or line.startswith("#") or line.startswith("label\t"):
            continue
        columns = line.split("\t")
        if len(columns) < 3 or not columns[0] or len(columns[0]) > MAX_LABEL_LEN:
            continue
        by_label[columns[0].lower()] = Charset(columns[1], columns[2])
        labels.append(columns[0])
    return by_label, labels


_CHARSETS, _LABELS = _load_charsets()
_SINGLE_BYTE_TABLES: Dict[str, List[str]] = {}


def charset_encoding_name(label: str) -> Optional[str]:
    """The decoder of a charset label: the WHATWG encoding name (as encoding_rs spells it)
    or "utf-7"; None when the label is not in the table. Case-insensitive."""
    charset = _lookup_charset(label)
    return None if charset is None else charset.encoding


def charset_labels() -> List[str]:
    """Every label of the charset table, lower case, in the order of the file."""
    return list(_LABELS)


def _lookup_charset(label: str) -> Optional[Charset]:
    # ASCII-only lower-casing, like Rust's make_ascii_lowercase.
    return _CHARSETS.get(label.translate(_ASCII_LOWER)) if len(label) <= MAX_LABEL_LEN else None


_ASCII_LOWER = {c: c + 32 for c in range(0x41, 0x5B)}


def _single_byte_table(charset: Charset) -> List[str]:
    table = _SINGLE_BYTE_TABLES.get(charset.encoding)
    if table is None:
        table = [bytes([b]).decode(charset.python_codec, "replace") for b in range(256)]
        if charset.encoding in C1_FILLED:
            for byte in range(0x80, 0xA0):
                if table[byte] == REPLACEMENT:
                    table[byte] = chr(byte)
        for byte, char in SINGLE_BYTE_PATCHES.get(charset.encoding, {}).items():
            table[byte] = char
        _SINGLE_BYTE_TABLES[charset.encoding] = table
    return table


def _decode_charset(raw: bytes, charset: Charset) -> str:
    """The bytes decoded in the charset, malformed sequences becoming U+FFFD."""
    if charset.encoding == "utf-7":
        return decode_utf7(raw)
    if charset.encoding in SINGLE_BYTE:
        table = _single_byte_table(charset)
        return "".join([table[b] for b in raw])
    multi_byte = MULTI_BYTE_DECODERS.get(charset.encoding)
    if multi_byte is not None:
        return multi_byte(raw, charset.python_codec)
    return codecs.decode(raw, charset.python_codec, "replace")


# -- the WHATWG multi-byte decoders --------------------------------------------------------
#
# Python's CJK codecs read malformed input their own way (how many bytes one U+FFFD
# swallows, whether an ASCII byte after a bad lead byte is kept), so the reference runs the
# WHATWG Encoding Standard's decoder algorithms (§10-§14) itself, step by step, as
# encoding_rs does. Only the index look-ups ("the code point for this pointer") go to the
# Python codec of the table, decoding one complete, well-formed multi-byte sequence
# strictly; where the codec's mapping and the WHATWG index differ, a patch below wins.
# "Prepend bytes to the queue" is stepping the read position back over bytes just read.


def _is_ascii(b: int) -> bool:
    return b < 0x80


@functools.lru_cache(maxsize=4096)
def _lookup(codec: str, sequence: bytes) -> Optional[str]:
    """The text of one multi-byte sequence in a Python codec, or None when the codec has
    no mapping for it (or reads it as more than one character)."""
    try:
        text = sequence.decode(codec)
    except UnicodeDecodeError:
        return None
    return text if len(text) == 1 else None


# Where WHATWG's gb18030 index (GB18030-2022) differs from Python's codec (GB18030-2005):
# sequence -> WHATWG character.
GB18030_PATCHES: Dict[bytes, str] = {
    b"\x81\x35\xf4\x37": "\ue7c7",  # pointer 7457, a special case of WHATWG's ranges
    b"\xa6\xd9": "\ufe10",
    b"\xa6\xda": "\ufe12",
    b"\xa6\xdb": "\ufe11",
    b"\xa6\xdc": "\ufe13",
    b"\xa6\xdd": "\ufe14",
    b"\xa6\xde": "\ufe15",
    b"\xa6\xdf": "\ufe16",
    b"\xa6\xec": "\ufe17",
    b"\xa6\xed": "\ufe18",
    b"\xa6\xf3": "\ufe19",
    b"\xa8\xbc": "\u1e3f",
    b"\xfe\x59": "\u9fb4",
    b"\xfe\x61": "\u9fb5",
    b"\xfe\x66": "\u9fb6",
    b"\xfe\x67": "\u9fb7",
    b"\xfe\x6d": "\u9fb8",
    b"\xfe\x7e": "\u9fb9",
    b"\xfe\x90": "\u9fba",
    b"\xfe\xa0": "\u9fbb",
    b"\xa3\xa0": "\u3000",
}


def _decode_gb18030(raw: bytes, codec: str) -> str:
    """WHATWG §10.2.1, the gb18030 decoder (also GBK's)."""
    out: List[str] = []
    first = second = third = 0
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        i += 1
        if third:
            if not 0x30 <= b <= 0x39:
                i -= 3  # prepend second, third, byte
                out.append(REPLACEMENT)
            else:
                sequence = bytes([first, second, third, b])
                char = GB18030_PATCHES.get(sequence) or _lookup(codec, sequence)
                out.append(REPLACEMENT if char is None else char)
            first = second = third = 0
        elif second:
            if 0x81 <= b <= 0xFE:
                third = b
            else:
                i -= 2  # prepend second, byte
                first = second = 0
                out.append(REPLACEMENT)
        elif first:
            if 0x30 <= b <= 0x39:
                second = b
                continue
            lead, first = first, 0
            char = None
            if 0x40 <= b <= 0x7E or 0x80 <= b <= 0xFE:
                pair = bytes([lead, b])
                char = GB18030_PATCHES.get(pair) or _lookup(codec, pair)
            if char is None:
                if _is_ascii(b):
                    i -= 1
                char = REPLACEMENT
            out.append(char)
        elif _is_ascii(b):
            out.append(chr(b))
        elif b == 0x80:
            out.append("\u20ac")
        elif 0x81 <= b <= 0xFE:
            first = b
        else:
            out.append(REPLACEMENT)
    if first or second or third:
        out.append(REPLACEMENT)
    return "".join(out)


def _decode_double_byte(
    raw: bytes, trail_ok: Callable[[int], bool], lookup: Callable[[bytes], Optional[str]]
) -> str:
    """The decoder WHATWG's Big5 (§11.1.1) and EUC-KR (§14.1.1) share: a lead byte
    0x81-0xFE and a trail byte; a pair that does not map gives U+FFFD, and an ASCII
    trail byte is then read again on its own."""
    out: List[str] = []
    lead = 0
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        i += 1
        if lead:
            char = lookup(bytes([lead, b])) if trail_ok(b) else None
            lead = 0
            if char is None:
                if _is_ascii(b):
                    i -= 1
                char = REPLACEMENT
            out.append(char)
        elif _is_ascii(b):
            out.append(chr(b))
        elif 0x81 <= b <= 0xFE:
            lead = b
        else:
            out.append(REPLACEMENT)
    if lead:
        out.append(REPLACEMENT)
    return "".join(out)


def _decode_big5(raw: bytes, codec: str) -> str:
    """WHATWG §11.1.1, the Big5 decoder: trail bytes 0x40-0x7E and 0xA1-0xFE."""
    return _decode_double_byte(
        raw,
        lambda b: 0x40 <= b <= 0x7E or 0xA1 <= b <= 0xFE,
        lambda pair: BIG5_PATCHES.get(pair) or _lookup(codec, pair),
    )


# Where WHATWG's Big5 index (Big5 with HKSCS-2008) differs from Python's big5hkscs codec
# (HKSCS-2004): the HKSCS-2008 additions Python lacks, and 11 punctuation marks Python maps
# elsewhere (A145 is U+2027, not U+2022, ...). "LEAD TRAIL:code point" in hex, found by
# comparing every two-byte sequence with encoding_rs (the case file checks them again).
_BIG5_DIFFERENCES = (
    "877A:3875 877B:21D53 877C:2369E 877D:26021 877E:3EEC 87A1:258DE 87A2:3AF5 87A3:7AFC "
    "87A4:9F97 87A5:24161 87A6:2890D 87A7:231EA 87A8:20A8A 87A9:2325E 87AA:430A 87AB:8484 "
    "87AC:9F96 87AD:942F 87AE:4930 87AF:8613 87B0:5896 87B1:974A 87B2:9218 87B3:79D0 "
    "87B4:7A32 87B5:6660 87B6:6A29 87B7:889D 87B8:744C 87B9:7BC5 87BA:6782 87BB:7A2C "
    "87BC:524F 87BD:9046 87BE:34E6 87BF:73C4 87C0:25DB9 87C1:74C6 87C2:9FC7 87C3:57B3 "
    "87C4:492F 87C5:544C 87C6:4131 87C7:2368E 87C8:5818 87C9:7A72 87CA:27B65 87CB:8B8F "
    "87CC:46AE 87CD:26E88 87CE:4181 87CF:25D99 87D0:7BAE 87D1:224BC 87D2:9FC8 87D3:224C1 "
    "87D4:224C9 87D5:224CC 87D6:9FC9 87D7:8504 87D8:235BB 87D9:40B4 87DA:9FCA 87DB:44E1 "
    "87DC:2ADFF 87DD:62C1 87DE:706E 87DF:9FCB 8E69:7BB8 8E6F:7C06 8E7E:7CCE 8EAB:7DD2 "
    "8EB4:7E1D 8ECD:8005 8ED0:8028 8F57:83C1 8F69:84A8 8F6E:840F 8FCB:89A6 8FCC:89A9 "
    "8FFE:8D77 906D:90FD 907A:92B9 90DC:975C 90F1:97FF 91BF:9F16 9244:8503 92AF:5159 "
    "92B0:515B 92B1:515D 92B2:515E 92C8:936E 92D1:7479 9447:6D67 94CA:799B 95D9:9097 "
    "9644:975D 96ED:701E 96FC:5B28 9B76:7201 9B78:77D7 9B7B:7E87 9BC6:99D6 9BDE:91D4 "
    "9BEC:60DE 9BF6:6FB6 9C42:8F36 9C53:4FBB 9C62:71DF 9C68:9104 9C6B:9DF0 9C77:83CF "
    "9CBC:5C10 9CBD:79E3 9CD0:5A67 9D57:8F0B 9D5A:7B51 9DC4:62D0 9EA9:6062 9EEF:75F9 "
    "9EFD:6C4A 9F60:9B2E 9F66:9F17 9FCB:50ED 9FD8:5F0C A063:880F A077:62CE A0D5:7468 "
    "A0DF:7162 A0E4:7250 A145:2027 A14E:FE51 A1C2:AF A1E3:FF5E A1F2:2295 A1F3:2299 "
    "A241:2215 A242:FE68 A244:FFE5 A246:FFE0 A247:FFE1 A3C0:2400 A3C1:2401 A3C2:2402 "
    "A3C3:2403 A3C4:2404 A3C5:2405 A3C6:2406 A3C7:2407 A3C8:2408 A3C9:2409 A3CA:240A "
    "A3CB:240B A3CC:240C A3CD:240D A3CE:240E A3CF:240F A3D0:2410 A3D1:2411 A3D2:2412 "
    "A3D3:2413 A3D4:2414 A3D5:2415 A3D6:2416 A3D7:2417 A3D8:2418 A3D9:2419 A3DA:241A "
    "A3DB:241B A3DC:241C A3DD:241D A3DE:241E A3DF:241F A3E0:2421 A3E1:20AC C6CF:5EF4 "
    "C6D3:65E0 C6D5:7676 C6D7:96B6 C6DE:3003 C6DF:4EDD FA5F:5029 FA66:507D FABD:5305 "
    "FAC5:5344 FAD5:537F FB48:5605 FBB8:5A77 FBF3:5E75 FBF9:5ED0 FC4F:5F58 FC6C:60A4 "
    "FCB9:6490 FCE2:6674 FCF1:675E FDB7:6C9C FDB8:6E1D FDBB:6E2F FDF1:716E FE52:732A "
    "FE6F:745C FEAA:74E9 FEDD:7809"
)
BIG5_PATCHES: Dict[bytes, str] = {
    bytes.fromhex(pair): chr(int(code_point, 16))
    for pair, _, code_point in (
        entry.partition(":") for entry in "".join(_BIG5_DIFFERENCES).split()
    )
}
# The four Big5 pointers WHATWG decodes to two code points.
BIG5_PATCHES.update(
    {
        b"\x88\x62": "\u00ca\u0304",
        b"\x88\x64": "\u00ca\u030c",
        b"\x88\xa3": "\u00ea\u0304",
        b"\x88\xa5": "\u00ea\u030c",
    }
)


def _jis0208(pointer: int) -> Optional[str]:
    """WHATWG's index jis0208, which is Shift_JIS's (windows-31j's) table: the pointer is
    turned into its Shift_JIS bytes and looked up in cp932."""
    lead, trail = divmod(pointer, 188)
    sequence = bytes(
        [lead + (0x81 if lead < 0x1F else 0xC1), trail + (0x40 if trail < 0x3F else 0x41)]
    )
    return _lookup("cp932", sequence)


# Where WHATWG's index jis0212 differs from Python's euc_jp codec.
EUC_JP_0212_PATCHES: Dict[bytes, str] = {b"\x8f\xa2\xb7": "\uff5e"}


def _decode_euc_jp(raw: bytes, codec: str) -> str:
    """WHATWG §12.1.1, the EUC-JP decoder (JIS X 0212 through ``codec``)."""
    out: List[str] = []
    lead = 0
    jis0212 = False
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        i += 1
        if lead == 0x8E and 0xA1 <= b <= 0xDF:
            lead = 0
            out.append(chr(0xFF61 - 0xA1 + b))
        elif lead == 0x8F and 0xA1 <= b <= 0xFE:
            jis0212 = True
            lead = b
        elif lead:
            char = None
            if 0xA1 <= lead <= 0xFE and 0xA1 <= b <= 0xFE:
                if jis0212:
                    sequence = bytes([0x8F, lead, b])
                    char = EUC_JP_0212_PATCHES.get(sequence) or _lookup(codec, sequence)
                else:
                    char = _jis0208((lead - 0xA1) * 94 + b - 0xA1)
            lead = 0
            jis0212 = False
            if char is None:
                if _is_ascii(b):
                    i -= 1
                char = REPLACEMENT
            out.append(char)
        elif _is_ascii(b):
            out.append(chr(b))
        elif b == 0x8E or b == 0x8F or 0xA1 <= b <= 0xFE:
            lead = b
        else:
            out.append(REPLACEMENT)
    if lead:
        out.append(REPLACEMENT)
    return "".join(out)


def _decode_iso_2022_jp(raw: bytes, codec: str) -> str:
    """WHATWG §12.2.1, the ISO-2022-JP decoder (JIS X 0208 as in Shift_JIS, through
    ``_jis0208``; ``codec`` is not used)."""
    ascii_, roman, katakana, lead_byte, trail_byte, escape_start, escape = range(7)
    out: List[str] = []
    state = output_state = ascii_
    lead = 0
    output = False
    i, n = 0, len(raw)
    while True:
        if i >= n:  # end of queue
            if state in (trail_byte, escape_start):
                state = output_state
                out.append(REPLACEMENT)
                continue
            if state == escape:
                i -= 1  # prepend lead: it is still the byte before the end
                state = output_state
                out.append(REPLACEMENT)
                continue
            return "".join(out)
        b = raw[i]
        i += 1
        if state in (ascii_, roman, katakana, lead_byte):
            if b == 0x1B:
                state = escape_start
                continue
            output = False
            if state == ascii_ and b <= 0x7F and b not in (0x0E, 0x0F):
                out.append(chr(b))
            elif state == roman and b <= 0x7F and b not in (0x0E, 0x0F):
                out.append("\u00a5" if b == 0x5C else "\u203e" if b == 0x7E else chr(b))
            elif state == katakana and 0x21 <= b <= 0x5F:
                out.append(chr(0xFF61 - 0x21 + b))
            elif state == lead_byte and 0x21 <= b <= 0x7E:
                lead = b
                state = trail_byte
            else:
                out.append(REPLACEMENT)
        elif state == trail_byte:
            if b == 0x1B:
                state = escape_start
                out.append(REPLACEMENT)
                continue
            state = lead_byte
            char = None
            if 0x21 <= b <= 0x7E:
                char = _jis0208((lead - 0x21) * 94 + b - 0x21)
            out.append(REPLACEMENT if char is None else char)
        elif state == escape_start:
            if b == 0x24 or b == 0x28:
                lead = b
                state = escape
                continue
            i -= 1  # prepend byte
            output = False
            state = output_state
            out.append(REPLACEMENT)
        else:  # escape
            selected = {
                (0x28, 0x42): ascii_,
                (0x28, 0x4A): roman,
                (0x28, 0x49): katakana,
                (0x24, 0x40): lead_byte,
                (0x24, 0x42): lead_byte,
            }.get((lead, b))
            lead = 0
            if selected is not None:
                state = output_state = selected
                if output:  # an escape sequence right after another: the first was useless
                    out.append(REPLACEMENT)
                output = True
                continue
            i -= 2  # prepend lead and byte
            output = False
            state = output_state
            out.append(REPLACEMENT)


def _decode_shift_jis(raw: bytes, codec: str) -> str:
    """WHATWG §13.1.1, the Shift_JIS decoder."""
    out: List[str] = []
    lead = 0
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        i += 1
        if lead:
            char = None
            if 0x40 <= b <= 0x7E or 0x80 <= b <= 0xFC:
                pointer = (
                    (lead - (0x81 if lead < 0xA0 else 0xC1)) * 188
                    + b
                    - (0x40 if b < 0x7F else 0x41)
                )
                if 8836 <= pointer <= 10715:
                    char = chr(0xE000 - 8836 + pointer)
                else:
                    char = _lookup(codec, bytes([lead, b]))
            lead = 0
            if char is None:
                if _is_ascii(b):
                    i -= 1
                char = REPLACEMENT
            out.append(char)
        elif b <= 0x80:
            out.append(chr(b))
        elif 0xA1 <= b <= 0xDF:
            out.append(chr(0xFF61 - 0xA1 + b))
        elif 0x81 <= b <= 0x9F or 0xE0 <= b <= 0xFC:
            lead = b
        else:
            out.append(REPLACEMENT)
    if lead:
        out.append(REPLACEMENT)
    return "".join(out)


def _decode_euc_kr(raw: bytes, codec: str) -> str:
    """WHATWG §14.1.1, the EUC-KR decoder: trail bytes 0x41-0xFE."""
    return _decode_double_byte(raw, lambda b: 0x41 <= b <= 0xFE, lambda pair: _lookup(codec, pair))


MULTI_BYTE_DECODERS = {
    "GBK": _decode_gb18030,
    "gb18030": _decode_gb18030,
    "Big5": _decode_big5,
    "EUC-JP": _decode_euc_jp,
    "ISO-2022-JP": _decode_iso_2022_jp,
    "Shift_JIS": _decode_shift_jis,
    "EUC-KR": _decode_euc_kr,
}


# -- other decoders' readings --------------------------------------------------------------
#
# other_charsets.tsv (generated from Python's codecs by .ci/gen_other_charsets.py) names the
# charsets that Python's email package and iconv decode where fromguard does not (UTF-32,
# UCS-2, EBCDIC code pages) or reads otherwise ("utf-16": WHATWG little-endian, iconv
# big-endian). A reading is "utf-16be", "utf-16le", "utf-32be", "utf-32le" or the name of
# one of the file's 256-entry tables.


def _load_other_charsets() -> Tuple[Dict[str, Tuple[str, ...]], Dict[str, List[str]]]:
    """other_charsets.tsv: comment and blank lines are skipped; "label" and "table" rows."""
    text = (resources.files("fromguard") / "data" / "other_charsets.tsv").read_text("utf-8")
    readings: Dict[str, Tuple[str, ...]] = {}
    tables: Dict[str, List[str]] = {}
    for line in text.splitlines():
        columns = line.split("\t")
        if len(columns) != 3:
            continue
        kind, name, value = columns
        if kind == "label":
            readings[name] = tuple(value.split())
        elif kind == "table":
            points = value.split()
            if len(points) == 256:
                tables[name] = [chr(int(point, 16)) for point in points]
    return readings, tables


_OTHER_READINGS, _OTHER_TABLES = _load_other_charsets()


def other_readings(label: str) -> Tuple[str, ...]:
    """How other widely deployed decoders read a charset label (case-insensitive) that
    fromguard decodes otherwise or not at all: none for most labels."""
    if len(label) > MAX_LABEL_LEN:
        return ()
    return _OTHER_READINGS.get(label.translate(_ASCII_LOWER), ())


def decode_ignoring_charset(data: bytes, word: EncodedWord) -> Union[str, DecodeError]:
    """The text of ``word`` with its charset ignored, its bytes read as UTF-8 (malformed
    sequences becoming U+FFFD): how the programs that decode a charset they do not know
    anyway read it (the Ruby mail gem behind GitLab and Zendesk; Python's email reads it
    as ASCII, which agrees on every ASCII byte). BAD_ENCODING when the B or Q text does
    not decode."""
    raw = _decode_b_or_q(data, word)
    return raw if isinstance(raw, DecodeError) else raw.decode("utf-8", "replace")


def decode_other(data: bytes, word: EncodedWord, reading: str) -> Union[str, DecodeError]:
    """The text of ``word`` in one of the ``other_readings``, malformed sequences becoming
    U+FFFD; BAD_ENCODING when the B or Q text does not decode."""
    raw = _decode_b_or_q(data, word)
    if isinstance(raw, DecodeError):
        return raw
    if reading in ("utf-16be", "utf-16le"):
        return _decode_utf16(raw, reading == "utf-16be")
    if reading in ("utf-32be", "utf-32le"):
        return _decode_utf32(raw, reading == "utf-32be")
    table = _OTHER_TABLES.get(reading)
    return REPLACEMENT * len(raw) if table is None else "".join([table[b] for b in raw])


def _decode_utf16(raw: bytes, big_endian: bool) -> str:
    """UTF-16 in the given byte order, unless a byte-order mark (dropped) says otherwise,
    as Python's codec and iconv read one. An unpaired surrogate is U+FFFD (as in UTF-7);
    so is a byte left over at the end."""
    if raw[:2] in (b"\xfe\xff", b"\xff\xfe"):
        big_endian = raw[:2] == b"\xfe\xff"
        raw = raw[2:]
    out: List[str] = []
    high: Optional[int] = None
    order: Literal["big", "little"] = "big" if big_endian else "little"
    for i in range(0, len(raw) - 1, 2):
        high = _push_utf16_unit(out, high, int.from_bytes(raw[i : i + 2], order))
    if high is not None:
        out.append(REPLACEMENT)
    if len(raw) % 2:
        out.append(REPLACEMENT)
    return "".join(out)


def _decode_utf32(raw: bytes, big_endian: bool) -> str:
    """UTF-32 in the given byte order unless a byte-order mark (dropped) says otherwise. A
    unit that is a surrogate or above U+10FFFF is U+FFFD; so are 1-3 bytes left over."""
    if raw[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"):
        big_endian = raw[:4] == b"\x00\x00\xfe\xff"
        raw = raw[4:]
    out: List[str] = []
    order: Literal["big", "little"] = "big" if big_endian else "little"
    for i in range(0, len(raw) - 3, 4):
        unit = int.from_bytes(raw[i : i + 4], order)
        valid = unit <= 0x10FFFF and not 0xD800 <= unit <= 0xDFFF
        out.append(chr(unit) if valid else REPLACEMENT)
    if len(raw) % 4:
        out.append(REPLACEMENT)
    return "".join(out)


# RFC 3501 §5.1.3: modified BASE64, with "," for "/".
MODIFIED_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def decode_modified_utf7(text: str) -> Optional[str]:
    """``text`` with each IMAP modified UTF-7 sequence (RFC 3501 §5.1.3: "&", modified
    BASE64 of UTF-16, "-"; "&-" is "&") decoded as ``decode_utf7`` decodes UTF-7; None
    when it holds no such sequence. An "&" that starts none stays as it is."""
    if "&" not in text:
        return None
    out: List[str] = []
    found = False
    i, n = 0, len(text)
    while i < n:
        if text[i] != "&":
            out.append(text[i])
            i += 1
            continue
        j = i + 1
        while j < n and text[j] in MODIFIED_BASE64:
            j += 1
        if j < n and text[j] == "-":
            if j == i + 1:
                out.append("&")
            else:
                run = text[i + 1 : j].replace(",", "/").encode("ascii")
                out.append(decode_utf7(b"+" + run + b"-"))
                found = True
            i = j + 1
        else:
            out.append("&")
            i += 1
    return "".join(out) if found else None

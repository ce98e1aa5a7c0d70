"""RFC 2047 encoded-words, for the pure-Python reference: finding them, and decoding B and
Q text in the charsets of ``fromguard/data/charsets.tsv``.

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
from importlib import resources
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

__all__ = [
    "MAX_ENCODED_WORD_LEN",
    "DecodeError",
    "EncodedWord",
    "WordEncoding",
    "charset_encoding_name",
    "charset_labels",
    "decode",
    "find_encoded_words",
    "match_encoded_word",
    "too_long",
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
    data = data[: max(0, min(end, len(data)))]
    if pos < 0 or data[pos : pos + 2] != b"=?":
        return None
    token_start = i = pos + 2
    while i < len(data) and is_token_char(data[i]):
        i += 1
    token = data[token_start:i]
    charset, star, language = token.partition(b"*")
    if star and (not language or b"*" in language):
        return None
    if not charset or data[i : i + 1] != b"?":
        return None
    letter = data[i + 1 : i + 2]
    if letter in (b"B", b"b"):
        encoding = WordEncoding.B
    elif letter in (b"Q", b"q"):
        encoding = WordEncoding.Q
    else:
        return None
    if data[i + 2 : i + 3] != b"?":
        return None
    text_start = j = i + 3
    while j < len(data) and is_encoded_text_char(data[j]):
        j += 1
    if j == text_start or data[j : j + 2] != b"?=":
        return None
    return EncodedWord(pos, j + 2, charset.decode("ascii"), encoding, text_start, j)


def find_encoded_words(data: bytes, start: int, end: int) -> List[EncodedWord]:
    """Every encoded-word in ``data[start:end]``, left to right, not overlapping: at each
    "=?" a match is tried; after a match the search goes on at its end, otherwise at the
    next byte."""
    end = min(end, len(data))
    words = []
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
    if not 0 <= word.text_start <= word.text_end <= len(data):
        return DecodeError.BAD_ENCODING
    text = data[word.text_start : word.text_end]
    raw = decode_b(text) if word.encoding is WordEncoding.B else decode_q(text)
    if raw is None:
        return DecodeError.BAD_ENCODING
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
    return codecs.decode(raw, charset.python_codec, "replace")

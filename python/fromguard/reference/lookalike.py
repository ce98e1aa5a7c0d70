"""Unicode security checks for the parts of a From value a reader sees: look-alike domains
(UTS #39 confusables and mixed scripts, punycode) and bidi or invisible format characters.

This module is the twin of ``rust/core/src/lookalike.rs``: the same functions under the
same names, giving the same results on every input (``tests/cases/lookalike.jsonl`` and
``tests/cases/lookalike_parity.jsonl`` are run against both). The Rust core takes its
Unicode data from the crates ``unicode-security`` (UTS #39), ``unicode-normalization``
and ``idna`` (punycode); this module reads the same data from the tables that
``rust/core/examples/export_unicode_tables.rs`` writes from those crates:

- ``fromguard/data/confusables.tsv``: the default-ignorable code points and the
  confusable prototype of every other code point whose skeleton is not itself;
- ``fromguard/data/scripts.tsv``: the augmented script set (UTS #39 §5.1) of every
  code point;
- ``fromguard/data/normalization.tsv``: canonical decompositions and combining classes,
  so that NFD here is the crate's (Unicode 18), not that of the interpreter's
  ``unicodedata`` (Unicode 14 on Python 3.11), which is never used.

The punycode decoder (RFC 3492) is written out by hand as the ``idna`` crate's
``punycode::decode_to_string`` is, 32-bit overflow checks included, so that both accept
and reject exactly the same A-labels. No function here raises on any ``str``, and each is
linear in the length of its input (an A-label is decoded only up to the DNS limit of 63
bytes, ``MAX_A_LABEL_BYTES``).

All offsets are byte offsets into the UTF-8 encoding of the text. A Python ``str`` may hold
lone surrogates, which a Rust ``&str`` cannot: they are never format characters, count
three bytes each (as ``surrogatepass`` encodes them), have no script (so a label holding
one is mixed-script) and map to themselves in the skeleton.
"""

from __future__ import annotations

import bisect
import enum
import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Dict, FrozenSet, List, NamedTuple, Optional, Tuple

__all__ = [
    "BIDI",
    "INVISIBLE",
    "MAX_A_LABEL_BYTES",
    "UNICODE_VERSION",
    "VARIATION_SELECTORS",
    "DomainAnalysis",
    "FormatKind",
    "FormatSpan",
    "analyze_domain",
    "decode_punycode",
    "format_characters",
    "format_kind",
    "is_mixed_script",
    "lookalike_special",
    "lookalike_specials",
    "skeleton",
]


def _read_data(name: str) -> str:
    return (resources.files("fromguard") / "data" / name).read_text("utf-8")


def _unicode_version() -> Tuple[int, int, int]:
    """The Unicode version of unicode-security's tables, from the header of confusables.tsv."""
    header = _read_data("confusables.tsv")
    match = re.search(r"unicode-security \S+ \(Unicode (\d+)\.(\d+)\.(\d+)\)", header)
    if match is None:
        raise RuntimeError("fromguard/data/confusables.tsv has no Unicode version header")
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))


#: The Unicode version of the security data (that of ``unicode-security``'s tables).
UNICODE_VERSION: Tuple[int, int, int] = _unicode_version()


# -- domains -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainAnalysis:
    """What ``analyze_domain`` finds in the domain of an address."""

    #: Some label is an A-label: it starts with ``xn--``, in any case.
    punycode: bool = False
    #: The domain with every A-label that decodes replaced by its Unicode form (labels that
    #: do not decode are kept as written); ``None`` when no label is an A-label.
    unicode: Optional[str] = None
    #: Some A-label does not decode to a U-label: the punycode is malformed or overflows,
    #: or it decodes to nothing or to ASCII only.
    bad_punycode: bool = False
    #: After decoding, some label is not single-script under UTS #39 §5.1 (see
    #: ``is_mixed_script``).
    mixed_script: bool = False
    #: When the decoded domain holds non-ASCII characters and every one of them is
    #: default-ignorable or has a skeleton made of ASCII only, the ASCII domain it
    #: imitates: each non-ASCII character replaced by its skeleton (ignorables dropped),
    #: ASCII characters kept, all in ASCII lower case. ``b\u0430nk.example`` (with a
    #: Cyrillic small a) gives ``bank.example``; ``bücher.example`` gives ``None`` (the skeleton of
    #: ``ü`` is ``u`` and a combining diaeresis).
    ascii_lookalike: Optional[str] = None


def analyze_domain(domain: str) -> DomainAnalysis:
    """Analyses the domain of an address: a dot-atom (never a domain literal), which may
    hold raw UTF-8 (RFC 6532) and punycode labels.

    Labels are split at ASCII ``.`` only (a trailing dot gives an empty last label). A
    label whose first four characters are ``xn--`` in any case is an A-label: the rest is
    decoded by ``decode_punycode``. No UTS #46 mapping or validation is applied, on purpose:
    mapping (case folding, width, compatibility forms) would hide exactly the characters a
    look-alike is made of.
    """
    punycode = False
    bad_punycode = False
    mixed_script = False
    decoded: List[str] = []
    for label in domain.split("."):
        unicode = label
        if label[:4].lower() == "xn--" and label[:4].isascii():
            punycode = True
            text = decode_punycode(label[4:])
            if text is None:
                bad_punycode = True
            else:
                unicode = text
        mixed_script = mixed_script or is_mixed_script(unicode)
        decoded.append(unicode)
    joined = ".".join(decoded)
    return DomainAnalysis(
        punycode=punycode,
        unicode=joined if punycode else None,
        bad_punycode=bad_punycode,
        mixed_script=mixed_script,
        ascii_lookalike=_ascii_lookalike(joined),
    )


def _ascii_lookalike(decoded: str) -> Optional[str]:
    """``DomainAnalysis.ascii_lookalike`` of an already decoded domain."""
    if decoded.isascii():
        return None
    imitated: List[str] = []
    for char in decoded:
        if char.isascii():
            imitated.append(char)
        else:
            prototype = skeleton(char)  # empty for a default-ignorable character
            if not prototype.isascii():
                return None
            imitated.append(prototype)
    return "".join(imitated).lower()  # ASCII only: str.lower() is ASCII lower case here


# -- punycode (RFC 3492), as the idna crate decodes it ----------------------------------------

_BASE = 36
_T_MIN = 1
_T_MAX = 26
_SKEW = 38
_DAMP = 700
_INITIAL_BIAS = 72
_INITIAL_N = 0x80
_U32_MAX = 0xFFFF_FFFF


def _adapt(delta: int, num_points: int, first_time: bool) -> int:
    delta //= _DAMP if first_time else 2
    delta += delta // num_points
    k = 0
    while delta > ((_BASE - _T_MIN) * _T_MAX) // 2:
        delta //= _BASE - _T_MIN
        k += _BASE
    return k + ((_BASE - _T_MIN + 1) * delta) // (delta + _SKEW)


def _digit(byte: int) -> Optional[int]:
    if 0x30 <= byte <= 0x39:  # 0-9
        return byte - 0x30 + 26
    if 0x41 <= byte <= 0x5A:  # A-Z
        return byte - 0x41
    if 0x61 <= byte <= 0x7A:  # a-z
        return byte - 0x61
    return None


def _punycode_decode(data: bytes) -> Optional[str]:
    """RFC 3492 §6.2 over bytes, exactly as ``idna::punycode::decode_to_string``: the basic
    code points are those before the last ``-`` (none when there is none; when the ``-`` is
    the first byte, the whole input is read as digits, so it fails), must be ASCII and are
    kept as written; every arithmetic step fails on overflowing 32 bits."""
    position = data.rfind(b"-")
    if position < 0:
        base, digits = b"", data
    else:
        base, digits = data[:position], data[position + 1 :] if position > 0 else data
    if any(byte >= 0x80 for byte in base):
        return None
    output: List[str] = [chr(byte) for byte in base]
    length = len(base)
    code_point = _INITIAL_N
    bias = _INITIAL_BIAS
    i = 0
    at = 0
    while at < len(digits):
        previous_i = i
        weight = 1
        k = _BASE
        while True:
            if at >= len(digits):
                return None  # the input ends inside a number
            digit = _digit(digits[at])
            at += 1
            if digit is None:
                return None
            i += digit * weight
            if digit * weight > _U32_MAX or i > _U32_MAX:
                return None
            t = _T_MIN if k <= bias else _T_MAX if k >= bias + _T_MAX else k - bias
            if digit < t:
                break
            weight *= _BASE - t
            if weight > _U32_MAX:
                return None
            k += _BASE
        bias = _adapt(i - previous_i, length + 1, previous_i == 0)
        code_point += i // (length + 1)
        if code_point > _U32_MAX:
            return None
        i %= length + 1
        if code_point > 0x10FFFF or 0xD800 <= code_point <= 0xDFFF:
            return None  # not a Unicode scalar value
        output.insert(i, chr(code_point))
        length += 1
        i += 1
    return "".join(output)


#: The longest A-label that is decoded, in bytes, ``xn--`` included: the DNS limit on a
#: label (RFC 1035 §2.3.4), which UTS #46 checks too. A longer A-label is bad punycode
#: without being decoded, which keeps the decoding (quadratic in the length of the label,
#: as RFC 3492's algorithm is) bounded.
MAX_A_LABEL_BYTES = 63


def decode_punycode(tail: str) -> Optional[str]:
    """Decodes the punycode of an A-label (the part after ``xn--``) to a U-label: ``None``
    when the A-label is longer than ``MAX_A_LABEL_BYTES``, when the decoder rejects it (a
    character that is not a punycode digit, non-ASCII basic code points, a truncated
    number, an overflow of its 32-bit arithmetic, a code point that is not a Unicode scalar
    value), or when the result is empty or ASCII only (UTS #46 §4 step 4 rejects both: an
    A-label must stand for a label that needs it)."""
    data = tail.encode("utf-8", "surrogatepass")
    if len(data) > MAX_A_LABEL_BYTES - 4:
        return None
    text = _punycode_decode(data)
    if text is None or text.isascii():
        return None
    return text


# -- scripts (UTS #39 §5.1) ---------------------------------------------------------------

_ScriptSet = Optional[FrozenSet[str]]  # None: all scripts (Common, Inherited)


class _ScriptTable(NamedTuple):
    starts: List[int]
    ends: List[int]
    sets: List[_ScriptSet]


@functools.lru_cache(maxsize=None)
def _script_table() -> _ScriptTable:
    """scripts.tsv: FIRST, LAST (hex, inclusive) and the set, ``Zyyy``/``Zinh`` for all."""
    table = _ScriptTable([], [], [])
    interned: Dict[str, _ScriptSet] = {}
    for line in _read_data("scripts.tsv").splitlines():
        if not line or line.startswith("#"):
            continue
        first, last, names = line.split("\t")
        if names not in interned:
            interned[names] = None if names in ("Zyyy", "Zinh") else frozenset(names.split())
        table.starts.append(int(first, 16))
        table.ends.append(int(last, 16))
        table.sets.append(interned[names])
    return table


_EMPTY: FrozenSet[str] = frozenset()


def _script_set(char: str) -> _ScriptSet:
    """The augmented script set of ``char``: ``None`` for all scripts, empty for Unknown."""
    table = _script_table()
    code_point = ord(char)
    at = bisect.bisect_right(table.starts, code_point) - 1
    if at >= 0 and code_point <= table.ends[at]:
        return table.sets[at]
    return _EMPTY


def is_mixed_script(text: str) -> bool:
    """``True`` when ``text`` is not single-script under UTS #39 §5.1: the intersection of
    the augmented script sets of its characters is empty. Common and Inherited characters
    count for no script; ``日本語`` and ``例え`` (Han with Hiragana) are single-script,
    Latin with Cyrillic is not. An unassigned code point (script Unknown) has the empty set,
    so a string holding one is always mixed-script."""
    if text.isascii():
        return False
    resolved: _ScriptSet = None
    for char in text:
        scripts = _script_set(char)
        if scripts is None:
            continue
        resolved = scripts if resolved is None else resolved & scripts
        if not resolved:
            return True
    return False


# -- skeletons (UTS #39 §4) ---------------------------------------------------------------


class _SkeletonTables(NamedTuple):
    prototypes: Dict[str, str]  # default-ignorable characters map to ""
    decompositions: Dict[str, str]
    combining_classes: Dict[str, int]


def _chars(hex_code_points: str) -> str:
    return "".join(chr(int(code_point, 16)) for code_point in hex_code_points.split())


@functools.lru_cache(maxsize=None)
def _skeleton_tables() -> _SkeletonTables:
    prototypes: Dict[str, str] = {}
    for line in _read_data("confusables.tsv").splitlines():
        if not line or line.startswith("#"):
            continue
        if "\t" in line:
            code_point, mapping = line.split("\t")
            prototypes[chr(int(code_point, 16))] = _chars(mapping)
        else:
            first, last = line.split("..")
            for ignorable in range(int(first, 16), int(last, 16) + 1):
                prototypes[chr(ignorable)] = ""
    decompositions: Dict[str, str] = {}
    combining_classes: Dict[str, int] = {}
    for line in _read_data("normalization.tsv").splitlines():
        if not line or line.startswith("#"):
            continue
        kind, *fields = line.split("\t")
        if kind == "decomposition":
            decompositions[chr(int(fields[0], 16))] = _chars(fields[1])
        else:
            for marked in range(int(fields[0], 16), int(fields[1], 16) + 1):
                combining_classes[chr(marked)] = int(fields[2])
    return _SkeletonTables(prototypes, decompositions, combining_classes)


_S_BASE, _L_BASE, _V_BASE, _T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
_V_COUNT, _T_COUNT = 21, 28
_N_COUNT = _V_COUNT * _T_COUNT
_S_COUNT = 19 * _N_COUNT


def _nfd(text: str) -> str:
    """Canonical decomposition (Unicode §3.11), with the tables of normalization.tsv: full
    decomposition of every character (Hangul syllables by the algorithm of §3.12), then
    each run of non-starters sorted, stably, by combining class."""
    if text.isascii():
        return text
    tables = _skeleton_tables()
    decomposed: List[str] = []
    for char in text:
        s_index = ord(char) - _S_BASE
        if 0 <= s_index < _S_COUNT:
            decomposed.append(chr(_L_BASE + s_index // _N_COUNT))
            decomposed.append(chr(_V_BASE + (s_index % _N_COUNT) // _T_COUNT))
            if s_index % _T_COUNT:
                decomposed.append(chr(_T_BASE + s_index % _T_COUNT))
        else:
            decomposed.extend(tables.decompositions.get(char, char))
    classes = tables.combining_classes
    out: List[str] = []
    run: List[str] = []  # the pending non-starters
    for char in decomposed:
        if classes.get(char, 0):
            run.append(char)
            continue
        if run:
            out.extend(sorted(run, key=lambda mark: classes[mark]))
            run = []
        out.append(char)
    out.extend(sorted(run, key=lambda mark: classes[mark]))
    return "".join(out)


def skeleton(text: str) -> str:
    """The UTS #39 §4 skeleton of ``text``, as ``unicode-security`` computes it: NFD, remove
    the default-ignorable code points, map each character to its confusable prototype,
    NFD. Two strings are confusable when their skeletons are equal. Note that ASCII maps
    too: ``m`` becomes ``rn``, ``I`` and ``1`` become ``l``, ``0`` becomes ``O``."""
    prototypes = _skeleton_tables().prototypes
    return _nfd("".join(prototypes.get(char, char) for char in _nfd(text)))


# -- format characters -----------------------------------------------------------------------


class FormatKind(str, enum.Enum):
    """The kind of a format character that ``format_characters`` reports: a ``str`` enum,
    equal to its value (``FormatKind.BIDI == "bidi"``)."""

    #: A bidirectional control: U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069.
    BIDI = "bidi"
    #: Any other default-ignorable code point (see ``INVISIBLE``).
    INVISIBLE = "invisible"


class FormatSpan(NamedTuple):
    """A run of adjacent format characters of one kind: bytes ``[start, end)`` of the text."""

    start: int
    end: int
    kind: FormatKind


#: The bidirectional controls, as inclusive code point ranges: ALM, LRM, RLM, the
#: embeddings and overrides LRE RLE PDF LRO RLO, and the isolates LRI RLI FSI PDI.
BIDI: Tuple[Tuple[int, int], ...] = (
    (0x061C, 0x061C),
    (0x200E, 0x200F),
    (0x202A, 0x202E),
    (0x2066, 0x2069),
)

#: The code points with Unicode's Variation_Selector property: Mongolian free variation
#: selectors, VS1-VS16 and VS17-VS256. They are default-ignorable but not reported: emoji
#: presentation (U+FE0F) and ideographic variation sequences are everyday text, and a
#: variation selector only changes the glyph of the character before it.
VARIATION_SELECTORS: Tuple[Tuple[int, int], ...] = (
    (0x180B, 0x180D),
    (0x180F, 0x180F),
    (0xFE00, 0xFE0F),
    (0xE0100, 0xE01EF),
)

#: The invisible format characters, as inclusive code point ranges: every
#: Default_Ignorable_Code_Point (unassigned ones included: they are reserved for invisible
#: characters) that is neither a bidi control nor a variation selector. Among them: soft
#: hyphen, combining grapheme joiner, the Hangul fillers, Khmer inherent vowels, Mongolian
#: vowel separator, ZWSP, ZWNJ, ZWJ, word joiner and the invisible operators, the
#: deprecated format characters U+206A-U+206F, BOM (ZWNBSP), the shorthand format
#: controls, the musical format characters and the tag characters. The tests check that
#: ``BIDI``, ``VARIATION_SELECTORS`` and this table together are exactly the ignorable
#: ranges of confusables.tsv (unicode-security's Default_Ignorable_Code_Point).
INVISIBLE: Tuple[Tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180E, 0x180E),
    (0x200B, 0x200D),
    (0x2060, 0x2065),
    (0x206A, 0x206F),
    (0x3164, 0x3164),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE00FF),
    (0xE01F0, 0xE0FFF),
)


def _in_ranges(code_point: int, ranges: Tuple[Tuple[int, int], ...]) -> bool:
    at = bisect.bisect_right(ranges, (code_point, 0x10FFFF)) - 1
    return at >= 0 and code_point <= ranges[at][1]


def format_kind(char: str) -> Optional[FormatKind]:
    """The ``FormatKind`` of the character ``char``, or ``None`` for every other character
    (ASCII included)."""
    code_point = ord(char)
    if code_point < 0xAD:
        return None
    if _in_ranges(code_point, BIDI):
        return FormatKind.BIDI
    if _in_ranges(code_point, INVISIBLE):
        return FormatKind.INVISIBLE
    return None


def _utf8_length(code_point: int) -> int:
    if code_point < 0x80:
        return 1
    if code_point < 0x800:
        return 2
    if code_point < 0x10000:
        return 3  # lone surrogates too, as surrogatepass encodes them
    return 4


def format_characters(text: str) -> List[FormatSpan]:
    """Every run of bidi controls or invisible format characters in ``text``, in order. A
    run is a maximal sequence of adjacent characters of the same kind, so a tag sequence
    is one span and a bidi control right after a ZWSP is a second one. Offsets are into
    the UTF-8 encoding of ``text``."""
    spans: List[FormatSpan] = []
    offset = 0
    for char in text:
        start = offset
        offset += _utf8_length(ord(char))
        kind = format_kind(char)
        if kind is None:
            continue
        if spans and spans[-1].end == start and spans[-1].kind is kind:
            spans[-1] = spans[-1]._replace(end=offset)
        else:
            spans.append(FormatSpan(start, offset, kind))
    return spans


@functools.lru_cache(maxsize=None)
def lookalike_specials() -> Dict[str, str]:
    """Every character of ``data/lookalike_specials.tsv`` with the ASCII special ("@", ".",
    "<" or ">") it passes for: its UTS #39 confusables and NFKC equivalents, the IDNA label
    separators and angle brackets drawn alike (the file says why each is there)."""
    table: Dict[str, str] = {}
    for line in _read_data("lookalike_specials.tsv").splitlines():
        if line.startswith("#") or line.startswith("code_point\t"):
            continue
        code_point, special = line.split("\t")[:2]
        table[chr(int(code_point, 16))] = special
    return table


def lookalike_special(char: str) -> Optional[str]:
    """The ASCII special that ``char`` passes for, or None (for every ASCII character)."""
    return lookalike_specials().get(char)

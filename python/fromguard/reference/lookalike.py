"""Unicode security checks for the parts of a From value a reader sees: look-alike domains
(UTS #39 confusables and mixed scripts, punycode) and bidi or invisible format characters,
judged in their context (the joiners and marks that scripts and emoji need are honest).

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
  ``unicodedata`` (Unicode 14 on Python 3.11), which is never used (the combining
  classes also give the virama of RFC 5892's CONTEXTJ rules);
- ``fromguard/data/format_context.tsv``: Joining_Type, the right-to-left letters
  (Bidi_Class R and AL), Extended_Pictographic and Emoji_Modifier, from ``icu_properties``.

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
from typing import Dict, FrozenSet, List, NamedTuple, Optional, Set, Tuple

__all__ = [
    "BIDI",
    "INVISIBLE",
    "MAX_A_LABEL_BYTES",
    "UNICODE_VERSION",
    "VARIATION_SELECTORS",
    "DomainAnalysis",
    "FormatContext",
    "FormatKind",
    "FormatSpan",
    "analyze_domain",
    "ascii_lower",
    "decode_punycode",
    "format_characters",
    "format_characters_in",
    "format_kind",
    "is_mixed_script",
    "is_right_to_left",
    "lookalike_special",
    "lookalike_specials",
    "normalize_domain",
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


def ascii_lower(text: str) -> str:
    """Lower case for ASCII letters only: the same in every Unicode version."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def normalize_domain(domain: str) -> str:
    """A domain for comparison: ASCII lower case, no trailing dot, punycode decoded (and the
    decoded labels in ASCII lower case too). Unicode case is kept: lower-casing beyond ASCII
    depends on the Unicode version, and the core must decide alike."""
    domain = ascii_lower(domain).rstrip(".")
    decoded = analyze_domain(domain).unicode
    return ascii_lower(decoded) if decoded is not None else domain


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


class FormatContext(str, enum.Enum):
    """Where a text's format characters are judged: what ``format_characters_in`` lets
    pass. A ``str`` enum, equal to its value."""

    #: A domain name (IDNA2008): ZWNJ and ZWJ only where the CONTEXTJ rules of RFC 5892
    #: Appendix A allow them; every bidi control is reported (IDNA2008 disallows them).
    DOMAIN = "domain"
    #: Display text without a right-to-left letter: joiners where CONTEXTJ allows them and
    #: ZWJ inside an emoji ZWJ sequence; every bidi control is reported.
    TEXT = "text"
    #: Display text holding a right-to-left letter (see ``is_right_to_left``): as ``TEXT``,
    #: and the marks LRM, RLM and ALM pass too, which such text needs to order its numbers
    #: and punctuation (Unicode UAX #9 §2.6).
    RIGHT_TO_LEFT_TEXT = "right-to-left-text"

    @classmethod
    def of_text(cls, text: str) -> "FormatContext":
        """The context of display text: ``RIGHT_TO_LEFT_TEXT`` when it holds a
        right-to-left letter, else ``TEXT``."""
        return cls.RIGHT_TO_LEFT_TEXT if any(map(is_right_to_left, text)) else cls.TEXT


_ZWNJ = "\u200c"
_ZWJ = "\u200d"
#: The bidi marks: zero-width strong characters, which order only the neutral characters
#: next to them; the embeddings, overrides and isolates can reorder letters.
_BIDI_MARKS = frozenset("\u061c\u200e\u200f")
#: Canonical_Combining_Class Virama, which RFC 5892 Appendix A.1 and A.2 look for.
_VIRAMA = 9


class _ContextTables(NamedTuple):
    joining_types: Dict[int, str]  # "L", "D", "R", "T" or "C"; absent: "U"
    right_to_left: FrozenSet[int]
    pictographic: FrozenSet[int]
    emoji_modifiers: FrozenSet[int]


@functools.lru_cache(maxsize=None)
def _context_tables() -> _ContextTables:
    """format_context.tsv: ``jt FIRST LAST TYPE`` and ``rtl``/``ep``/``em FIRST LAST``."""
    joining_types: Dict[int, str] = {}
    sets: Dict[str, Set[int]] = {"rtl": set(), "ep": set(), "em": set()}
    for line in _read_data("format_context.tsv").splitlines():
        if not line or line.startswith("#"):
            continue
        kind, first, last, *value = line.split("\t")
        code_points = range(int(first, 16), int(last, 16) + 1)
        if kind == "jt":
            joining_types.update(dict.fromkeys(code_points, value[0]))
        else:
            sets[kind].update(code_points)
    return _ContextTables(
        joining_types, frozenset(sets["rtl"]), frozenset(sets["ep"]), frozenset(sets["em"])
    )


def is_right_to_left(char: str) -> bool:
    """A letter of a right-to-left script: Bidi_Class R or AL, but for the marks RLM and ALM
    (which are R and AL too, and cannot vouch for themselves)."""
    return ord(char) in _context_tables().right_to_left


def _joining_type(char: str) -> str:
    return _context_tables().joining_types.get(ord(char), "U")


def _extends_pictograph(char: str) -> bool:
    """What may stand between a pictograph and the ZWJ after it: an emoji presentation
    selector (any variation selector) or a skin tone modifier."""
    code_point = ord(char)
    return _in_ranges(code_point, VARIATION_SELECTORS) or (
        code_point in _context_tables().emoji_modifiers
    )


def _is_honest(text: str, index: int, context: FormatContext) -> bool:
    """Whether the joiner or bidi mark ``text[index]`` is honest in ``context``:

    - ZWNJ and ZWJ right after a virama (RFC 5892 A.1 and A.2: Indic conjuncts, the
      Sinhala "ශ්‍රී");
    - ZWNJ between a left-joining and a right-joining letter, transparent marks aside
      (RFC 5892 A.1: ``(L|D) T* ZWNJ T* (R|D)``, the Persian "می‌خواهم");
    - outside domains, ZWJ between two pictographs, the first one's selectors and skin
      tones aside (UAX #29 GB11, the emoji ZWJ sequences of UTS #51 such as 👩‍💻);
    - LRM, RLM and ALM in right-to-left text.

    Every other format character is deceptive wherever it stands."""
    char = text[index]
    if char in _BIDI_MARKS:
        return context is FormatContext.RIGHT_TO_LEFT_TEXT
    if char != _ZWNJ and char != _ZWJ:
        return False
    classes = _skeleton_tables().combining_classes
    if index > 0 and classes.get(text[index - 1], 0) == _VIRAMA:
        return True
    if char == _ZWNJ:
        left = index - 1
        while left >= 0 and _joining_type(text[left]) == "T":
            left -= 1
        right = index + 1
        while right < len(text) and _joining_type(text[right]) == "T":
            right += 1
        return (
            left >= 0
            and _joining_type(text[left]) in "LD"
            and right < len(text)
            and _joining_type(text[right]) in "RD"
        )
    if context is FormatContext.DOMAIN:
        return False
    pictographic = _context_tables().pictographic
    left = index - 1
    while left >= 0 and _extends_pictograph(text[left]):
        left -= 1
    return (
        left >= 0
        and ord(text[left]) in pictographic
        and index + 1 < len(text)
        and ord(text[index + 1]) in pictographic
    )


def format_characters(text: str) -> List[FormatSpan]:
    """Every run of bidi controls or invisible format characters in ``text`` that is not
    honest there, in order, ``text`` judged as display text (``FormatContext.of_text``).
    See ``format_characters_in``."""
    if text.isascii():
        return []
    return format_characters_in(text, FormatContext.of_text(text))


def format_characters_in(text: str, context: FormatContext) -> List[FormatSpan]:
    """Every run of bidi controls or invisible format characters in ``text``, in order, but
    for the joiners and marks that are honest in ``context`` (see ``_is_honest``). A run
    is a maximal sequence of adjacent reported characters of the same kind, so a tag
    sequence is one span and a bidi control right after a ZWSP is a second one. Offsets
    are into the UTF-8 encoding of ``text``.

    Each character's context is read up to the nearest character that decides it, so the
    time is linear: a backward or forward look passes only transparent marks, selectors
    and skin tones, and stops at the next joiner (which is none of them)."""
    spans: List[FormatSpan] = []
    offset = 0
    for index, char in enumerate(text):
        start = offset
        offset += _utf8_length(ord(char))
        kind = format_kind(char)
        if kind is None or _is_honest(text, index, context):
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

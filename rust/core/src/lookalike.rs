//! Unicode security checks for the parts of a From value a reader sees: look-alike
//! domains (UTS #39 confusables and mixed scripts, punycode) and bidi or invisible format
//! characters, judged in their context (the joiners and marks that scripts and emoji
//! need are honest).
//!
//! The twin of `python/fromguard/reference/lookalike.py`: the same functions under the
//! same names, giving the same results on every input (`tests/cases/lookalike.jsonl` and
//! `tests/cases/lookalike_parity.jsonl` are run against both). The Unicode data comes
//! from maintained crates, which are the source of truth here: `unicode-security` (UTS
//! #39 skeletons, augmented script sets, Default_Ignorable_Code_Point), `idna` (RFC
//! 3492 punycode), `unicode-normalization` (Canonical_Combining_Class, for the virama of
//! RFC 5892's CONTEXTJ rules) and `icu_properties` (Joining_Type, Bidi_Class,
//! Extended_Pictographic, Emoji_Modifier). The Python reference reads the same data from
//! the tables that `examples/export_unicode_tables.rs` writes from these crates, and a
//! test checks that the committed tables are what the crates give today.
//!
//! None of these functions panics, and each is linear in the length of its input (an
//! A-label is decoded only up to the DNS limit of 63 bytes, see [`MAX_A_LABEL_BYTES`]).

use std::fmt;
use std::sync::OnceLock;

use icu_properties::props::{BidiClass, EmojiModifier, ExtendedPictographic, JoiningType};
use icu_properties::{CodePointMapData, CodePointSetData};
use unicode_normalization::char::canonical_combining_class;
use unicode_security::MixedScript;

/// The Unicode version of the security data (`unicode-security`'s tables).
pub const UNICODE_VERSION: (u64, u64, u64) = unicode_security::UNICODE_VERSION;

/// What [`analyze_domain`] finds in the domain of an address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DomainAnalysis {
    /// Some label is an A-label: it starts with `xn--`, in any case.
    pub punycode: bool,
    /// The domain with every A-label that decodes replaced by its Unicode form (labels
    /// that do not decode are kept as written); `None` when no label is an A-label.
    pub unicode: Option<String>,
    /// Some A-label does not decode to a U-label: the punycode is malformed or
    /// overflows, or it decodes to nothing or to ASCII only.
    pub bad_punycode: bool,
    /// After decoding, some label is not single-script under UTS #39 §5.1: the
    /// intersection of the augmented script sets of its characters is empty (Common and
    /// Inherited characters do not count; an unassigned code point, of script Unknown,
    /// has the empty set and so always counts as a second script).
    pub mixed_script: bool,
    /// When the decoded domain holds non-ASCII characters and every one of them is
    /// default-ignorable or has a UTS #39 skeleton made of ASCII only, the ASCII domain
    /// it imitates: each non-ASCII character replaced by its skeleton (ignorables
    /// dropped), ASCII characters kept, all in ASCII lower case. `b\u{430}nk.example`
    /// (with a Cyrillic small a) gives `bank.example`; `bücher.example` gives `None`, because the
    /// skeleton of `ü` is `u` and a combining diaeresis.
    pub ascii_lookalike: Option<String>,
}

/// Analyses the domain of an address: a dot-atom (never a domain literal), which may
/// hold raw UTF-8 (RFC 6532) and punycode labels.
///
/// Labels are split at ASCII `.` only (a trailing dot gives an empty last label). A label
/// whose first four characters are `xn--` in any case is an A-label: the rest is
/// decoded with [`idna::punycode::decode_to_string`] (RFC 3492, upper-case digits
/// accepted, the basic code points kept as written). No UTS #46 mapping or validation
/// is applied, on purpose: mapping (case folding, width, compatibility forms) would
/// hide exactly the characters a look-alike is made of, and the pure-Python reference
/// must decide identically without UTS #46 tables. See [`decode_punycode`].
pub fn analyze_domain(domain: &str) -> DomainAnalysis {
    // An ASCII domain without A-labels has nothing to find (and most have neither).
    if domain.is_ascii() && !has_a_label(domain) {
        return DomainAnalysis::default();
    }
    let mut punycode = false;
    let mut bad_punycode = false;
    let mut mixed_script = false;
    let mut decoded = String::with_capacity(domain.len());
    for (index, label) in domain.split('.').enumerate() {
        if index > 0 {
            decoded.push('.');
        }
        let unicode = match a_label_tail(label) {
            Some(tail) => {
                punycode = true;
                match decode_punycode(tail) {
                    Some(text) => text,
                    None => {
                        bad_punycode = true;
                        label.to_owned()
                    }
                }
            }
            None => label.to_owned(),
        };
        mixed_script |= is_mixed_script(&unicode);
        decoded.push_str(&unicode);
    }
    let ascii_lookalike = ascii_lookalike(&decoded);
    DomainAnalysis {
        punycode,
        unicode: punycode.then_some(decoded),
        bad_punycode,
        mixed_script,
        ascii_lookalike,
    }
}

/// A domain for comparison: ASCII lower case, no trailing dot, punycode decoded (and
/// the decoded labels in ASCII lower case too). Unicode case is kept: lower-casing
/// beyond ASCII depends on the Unicode version, and the reference must decide alike.
pub fn normalize_domain(domain: &str) -> String {
    let lowered = domain.to_ascii_lowercase();
    let domain = lowered.trim_end_matches('.');
    match analyze_domain(domain).unicode {
        Some(decoded) => decoded.to_ascii_lowercase(),
        None => domain.to_owned(),
    }
}

/// Whether some label of `domain` (split at ASCII `.`) is an A-label.
pub(crate) fn has_a_label(domain: &str) -> bool {
    // On bytes: the same labels as `str::split('.')`, without its character searcher.
    domain.as_bytes().split(|&b| b == b'.').any(|label| {
        label
            .get(..4)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"xn--"))
    })
}

/// The part of `label` after an `xn--` prefix (matched case-insensitively), if it has one.
fn a_label_tail(label: &str) -> Option<&str> {
    let bytes = label.as_bytes();
    if bytes.len() >= 4 && bytes[..4].eq_ignore_ascii_case(b"xn--") {
        // The first four bytes are ASCII, so byte 4 is a character boundary.
        label.get(4..)
    } else {
        None
    }
}

/// The longest A-label that is decoded, in bytes, `xn--` included: the DNS limit on a
/// label (RFC 1035 §2.3.4), which UTS #46 checks too. A longer A-label is bad punycode
/// without being decoded, which keeps the decoding (quadratic in the length of the label,
/// as RFC 3492's algorithm is) bounded.
pub const MAX_A_LABEL_BYTES: usize = 63;

/// Decodes the punycode of an A-label (the part after `xn--`) to a U-label: `None` when
/// the A-label is longer than [`MAX_A_LABEL_BYTES`], when
/// [`idna::punycode::decode_to_string`] rejects it (a character that is not a punycode
/// digit, non-ASCII basic code points, a truncated number, an overflow of its 32-bit
/// arithmetic, a code point that is not a Unicode scalar value), or when the result is
/// empty or ASCII only (UTS #46 §4 step 4 rejects both: an A-label must stand for a
/// label that needs it).
pub fn decode_punycode(tail: &str) -> Option<String> {
    if tail.len() > MAX_A_LABEL_BYTES - 4 {
        return None;
    }
    idna::punycode::decode_to_string(tail).filter(|text| !text.is_ascii())
}

/// `true` when `text` is not single-script under UTS #39 §5.1 (its resolved augmented
/// script set is empty). Common and Inherited characters count for no script; `日本語`
/// and `例え` (Han with Hiragana) are single-script, Latin with Cyrillic is not.
pub fn is_mixed_script(text: &str) -> bool {
    !text.is_ascii() && !text.is_single_script()
}

/// The UTS #39 §4 skeleton of `text`, as `unicode-security` computes it: NFD, remove the
/// default-ignorable code points, map each character to its confusable prototype, NFD.
/// Two strings are confusable when their skeletons are equal. Note that ASCII maps too:
/// `m` becomes `rn`, `I` and `1` become `l`, `0` becomes `O`.
pub fn skeleton(text: &str) -> String {
    unicode_security::skeleton(text).collect()
}

/// The skeleton of one character ([`skeleton`] of the one-character string).
fn char_skeleton(c: char) -> String {
    let mut buffer = [0u8; 4];
    skeleton(c.encode_utf8(&mut buffer))
}

/// [`DomainAnalysis::ascii_lookalike`] of an already decoded domain.
fn ascii_lookalike(decoded: &str) -> Option<String> {
    if decoded.is_ascii() {
        return None;
    }
    let mut imitated = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        if c.is_ascii() {
            imitated.push(c.to_ascii_lowercase());
        } else {
            // Empty for a default-ignorable character.
            let prototype = char_skeleton(c);
            if !prototype.is_ascii() {
                return None;
            }
            imitated.push_str(&prototype.to_ascii_lowercase());
        }
    }
    Some(imitated)
}

/// The kind of a format character that [`format_characters`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FormatKind {
    /// A bidirectional control: U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069.
    Bidi,
    /// Any other default-ignorable code point (see [`INVISIBLE`]).
    Invisible,
}

impl FormatKind {
    /// `"bidi"` or `"invisible"`, as in the case files and the Python reference.
    pub fn as_str(self) -> &'static str {
        match self {
            FormatKind::Bidi => "bidi",
            FormatKind::Invisible => "invisible",
        }
    }
}

impl fmt::Display for FormatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run of adjacent format characters of one kind: bytes `[start, end)` of the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FormatSpan {
    /// Byte offset of the first character of the run.
    pub start: usize,
    /// Byte offset just after the last character of the run.
    pub end: usize,
    /// What the characters of the run are.
    pub kind: FormatKind,
}

/// The bidirectional controls, as inclusive ranges: ALM, LRM, RLM, the embeddings and
/// overrides LRE RLE PDF LRO RLO, and the isolates LRI RLI FSI PDI.
pub const BIDI: &[(char, char)] = &[
    ('\u{061C}', '\u{061C}'),
    ('\u{200E}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2066}', '\u{2069}'),
];

/// The code points with Unicode's Variation_Selector property: Mongolian free variation
/// selectors, VS1–VS16 and VS17–VS256. They are default-ignorable but not reported:
/// emoji presentation (U+FE0F) and ideographic variation sequences are everyday text,
/// and a variation selector only changes the glyph of the character before it.
pub const VARIATION_SELECTORS: &[(char, char)] = &[
    ('\u{180B}', '\u{180D}'),
    ('\u{180F}', '\u{180F}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{E0100}', '\u{E01EF}'),
];

/// The invisible format characters, as inclusive ranges: every Default_Ignorable_Code_Point
/// (unassigned ones included: they are reserved for invisible characters) that is neither
/// a bidi control nor a variation selector. Among them: soft hyphen, combining grapheme
/// joiner, the Hangul fillers, Khmer inherent vowels, Mongolian vowel separator, ZWSP,
/// ZWNJ, ZWJ, word joiner and the invisible operators, the deprecated format characters
/// U+206A–U+206F, BOM (ZWNBSP), the shorthand format controls, the musical format
/// characters and the tag characters. A test checks that `BIDI`, `VARIATION_SELECTORS`
/// and this table together are exactly the default-ignorable code points of
/// `unicode-security`.
pub const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200D}'),
    ('\u{2060}', '\u{2065}'),
    ('\u{206A}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFF8}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E00FF}'),
    ('\u{E01F0}', '\u{E0FFF}'),
];

fn in_ranges(c: char, ranges: &[(char, char)]) -> bool {
    ranges
        .binary_search_by(|&(low, high)| {
            if high < c {
                std::cmp::Ordering::Less
            } else if low > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// The [`FormatKind`] of `c`, or `None` for every other character (ASCII included).
pub fn format_kind(c: char) -> Option<FormatKind> {
    if c < '\u{00AD}' {
        None
    } else if in_ranges(c, BIDI) {
        Some(FormatKind::Bidi)
    } else if in_ranges(c, INVISIBLE) {
        Some(FormatKind::Invisible)
    } else {
        None
    }
}

/// Where a text's format characters are judged: what [`format_characters_in`] lets pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FormatContext {
    /// A domain name (IDNA2008): ZWNJ and ZWJ only where the CONTEXTJ rules of RFC 5892
    /// Appendix A allow them; every bidi control is reported (IDNA2008 disallows them).
    Domain,
    /// Display text without a right-to-left letter: joiners where CONTEXTJ allows them
    /// and ZWJ inside an emoji ZWJ sequence; every bidi control is reported.
    Text,
    /// Display text holding a right-to-left letter (see [`is_right_to_left`]): as
    /// [`FormatContext::Text`], and the marks LRM, RLM and ALM pass too, which such text
    /// needs to order its numbers and punctuation (Unicode UAX #9 §2.6).
    RightToLeftText,
}

impl FormatContext {
    /// `"domain"`, `"text"` or `"right-to-left-text"`, as in the Python reference.
    pub fn as_str(self) -> &'static str {
        match self {
            FormatContext::Domain => "domain",
            FormatContext::Text => "text",
            FormatContext::RightToLeftText => "right-to-left-text",
        }
    }

    /// The context of display text: [`FormatContext::RightToLeftText`] when it holds a
    /// right-to-left letter, else [`FormatContext::Text`].
    pub fn of_text(text: &str) -> FormatContext {
        if text.chars().any(is_right_to_left) {
            FormatContext::RightToLeftText
        } else {
            FormatContext::Text
        }
    }
}

const ZWNJ: char = '\u{200C}';
const ZWJ: char = '\u{200D}';
/// The bidi marks: zero-width strong characters, which order only the neutral characters
/// next to them; the embeddings, overrides and isolates can reorder letters.
const BIDI_MARKS: [char; 3] = ['\u{061C}', '\u{200E}', '\u{200F}'];
/// Canonical_Combining_Class Virama, which RFC 5892 Appendix A.1 and A.2 look for.
const VIRAMA: u8 = 9;

/// A letter of a right-to-left script: Bidi_Class R or AL, but for the marks RLM and ALM
/// (which are R and AL too, and cannot vouch for themselves).
pub fn is_right_to_left(c: char) -> bool {
    let class = CodePointMapData::<BidiClass>::new().get(c);
    (class == BidiClass::RightToLeft || class == BidiClass::ArabicLetter)
        && !BIDI_MARKS.contains(&c)
}

fn joining_type(c: char) -> JoiningType {
    CodePointMapData::<JoiningType>::new().get(c)
}

/// An emoji that takes part in ZWJ sequences (UAX #29 rule GB11).
fn is_pictographic(c: char) -> bool {
    CodePointSetData::new::<ExtendedPictographic>().contains(c)
}

/// What may stand between a pictograph and the ZWJ after it: an emoji presentation
/// selector (any variation selector) or a skin tone modifier.
fn extends_pictograph(c: char) -> bool {
    in_ranges(c, VARIATION_SELECTORS) || CodePointSetData::new::<EmojiModifier>().contains(c)
}

/// Whether the joiner or bidi mark `c`, found in `text` between `before` and `after`,
/// is honest in `context`:
///
/// - ZWNJ and ZWJ right after a virama (RFC 5892 A.1 and A.2: Indic conjuncts, the
///   Sinhala "ශ්‍රී");
/// - ZWNJ between a left-joining and a right-joining letter, transparent marks aside
///   (RFC 5892 A.1: `(L|D) T* ZWNJ T* (R|D)`, the Persian "می‌خواهم");
/// - outside domains, ZWJ between two pictographs, the first one's selectors and skin
///   tones aside (UAX #29 GB11, the emoji ZWJ sequences of UTS #51 such as 👩‍💻);
/// - LRM, RLM and ALM in right-to-left text.
///
/// Every other format character is deceptive wherever it stands.
fn is_honest(c: char, before: &str, after: &str, context: FormatContext) -> bool {
    if BIDI_MARKS.contains(&c) {
        return context == FormatContext::RightToLeftText;
    }
    if c != ZWNJ && c != ZWJ {
        return false;
    }
    let previous = before.chars().next_back();
    if previous.is_some_and(|p| canonical_combining_class(p) == VIRAMA) {
        return true;
    }
    let transparent = |c: &char| joining_type(*c) == JoiningType::Transparent;
    if c == ZWNJ {
        let left = before.chars().rev().find(|c| !transparent(c));
        let right = after.chars().find(|c| !transparent(c));
        return left.is_some_and(|c| {
            matches!(
                joining_type(c),
                JoiningType::LeftJoining | JoiningType::DualJoining
            )
        }) && right.is_some_and(|c| {
            matches!(
                joining_type(c),
                JoiningType::RightJoining | JoiningType::DualJoining
            )
        });
    }
    context != FormatContext::Domain
        && before
            .chars()
            .rev()
            .find(|&c| !extends_pictograph(c))
            .is_some_and(is_pictographic)
        && after.chars().next().is_some_and(is_pictographic)
}

/// Every run of bidi controls or invisible format characters in `text` that is not
/// honest there, in order, `text` judged as display text ([`FormatContext::of_text`]).
/// See [`format_characters_in`].
pub fn format_characters(text: &str) -> Vec<FormatSpan> {
    // Every such character is above U+00AD: ASCII text (most of it) holds none, and most
    // other text is answered a block at a time, before the context (every character's
    // bidi class) is worked out.
    if text.is_ascii() || is_plain_text(text) {
        return Vec::new();
    }
    format_characters_in(text, FormatContext::of_text(text))
}

/// Every run of bidi controls or invisible format characters in `text`, in order, but
/// for the joiners and marks that are honest in `context` (`is_honest` lists them). A
/// run is a maximal sequence of adjacent reported characters of the same kind, so a tag
/// sequence is one span and a bidi control right after a ZWSP is a second one. Offsets
/// are into the UTF-8 encoding of `text`.
///
/// Each character's context is read up to the nearest character that decides it, so
/// the time is linear: a backward or forward look passes only transparent marks,
/// selectors and skin tones, and stops at the next joiner (which is none of them).
pub fn format_characters_in(text: &str, context: FormatContext) -> Vec<FormatSpan> {
    let mut spans: Vec<FormatSpan> = Vec::new();
    if text.is_ascii() {
        return spans;
    }
    for (start, c) in text.char_indices() {
        let Some(kind) = format_kind(c) else {
            continue;
        };
        let end = start + c.len_utf8();
        let before = text.get(..start).unwrap_or_default();
        let after = text.get(end..).unwrap_or_default();
        if is_honest(c, before, after, context) {
            continue;
        }
        match spans.last_mut() {
            Some(last) if last.end == start && last.kind == kind => last.end = end,
            _ => spans.push(FormatSpan { start, end, kind }),
        }
    }
    spans
}

/// `data/lookalike_specials.tsv`: the characters that pass for "@", ".", "<" or ">".
const LOOKALIKE_SPECIALS_TSV: &str = include_str!("../data/lookalike_specials.tsv");

/// Every character of `data/lookalike_specials.tsv` with the ASCII special it passes for,
/// sorted by character: its UTS #39 confusables and NFKC equivalents, the IDNA label
/// separators and angle brackets drawn alike (the file says why each is there;
/// `tests/lookalike.rs` checks it against `unicode-security` and `unicode-normalization`).
/// Comment lines, the header and a malformed line (the tests catch one) are skipped.
pub fn lookalike_specials() -> &'static [(char, char)] {
    &lookalike_table().specials
}

/// The look-alikes, and which 64-code-point blocks of the Basic Multilingual Plane hold
/// one (`bmp_blocks`), or one or a format character (`unplain_blocks`): most text
/// (Latin, Greek, Cyrillic, CJK ideographs) is in blocks that hold none, and is answered
/// with one bit test instead of a search (the fast path asks this of every character of
/// a UTF-8 name).
struct LookalikeTable {
    specials: Vec<(char, char)>,
    bmp_blocks: [u64; 16],
    unplain_blocks: [u64; 16],
}

fn lookalike_table() -> &'static LookalikeTable {
    static TABLE: OnceLock<LookalikeTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut specials: Vec<(char, char)> = LOOKALIKE_SPECIALS_TSV
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let mut columns = line.split('\t');
                let code_point = u32::from_str_radix(columns.next()?, 16).ok()?;
                let special = columns.next()?;
                let special = special.chars().next().filter(|_| special.len() == 1)?;
                Some((char::from_u32(code_point)?, special))
            })
            .collect();
        specials.sort_unstable();
        let mark = |blocks: &mut [u64; 16], c: char| {
            if let Some((word, bit)) = bmp_block(c)
                && let Some(held) = blocks.get_mut(word)
            {
                *held |= bit;
            }
        };
        let mut bmp_blocks = [0u64; 16];
        for &(look, _) in &specials {
            mark(&mut bmp_blocks, look);
        }
        let mut unplain_blocks = bmp_blocks;
        for &(low, high) in BIDI.iter().chain(INVISIBLE) {
            // Past the BMP bmp_block answers None; stop there rather than walk the planes.
            for c in (low..=high).take_while(|&c| bmp_block(c).is_some()) {
                mark(&mut unplain_blocks, c);
            }
        }
        LookalikeTable {
            specials,
            bmp_blocks,
            unplain_blocks,
        }
    })
}

/// The word and bit of `c`'s 64-code-point block in [`LookalikeTable::bmp_blocks`], for a
/// character of the Basic Multilingual Plane.
fn bmp_block(c: char) -> Option<(usize, u64)> {
    let block = usize::try_from(u32::from(c) >> 6)
        .ok()
        .filter(|&b| b < 1024)?;
    Some((block / 64, 1 << (block % 64)))
}

/// Neither a format character ([`format_kind`]) nor a look-alike special
/// ([`lookalike_special`]): what the fast path asks of every character of a UTF-8 name.
pub fn is_plain(c: char) -> bool {
    plain_in(&lookalike_table().unplain_blocks, c)
}

/// Whether every character of `text` [`is_plain`], the table fetched once.
pub fn is_plain_text(text: &str) -> bool {
    let blocks = &lookalike_table().unplain_blocks;
    text.chars().all(|c| plain_in(blocks, c))
}

#[inline]
fn plain_in(unplain_blocks: &[u64; 16], c: char) -> bool {
    if c.is_ascii() {
        return true;
    }
    if let Some((word, bit)) = bmp_block(c)
        && unplain_blocks.get(word).is_none_or(|&held| held & bit == 0)
    {
        return true;
    }
    format_kind(c).is_none() && lookalike_special(c).is_none()
}

/// The ASCII special ("@", ".", "<" or ">") that `c` passes for, if it is one of
/// [`lookalike_specials`]; `None` for every ASCII character.
pub fn lookalike_special(c: char) -> Option<char> {
    if c.is_ascii() {
        return None;
    }
    let table = lookalike_table();
    if let Some((word, bit)) = bmp_block(c)
        && table
            .bmp_blocks
            .get(word)
            .is_none_or(|&held| held & bit == 0)
    {
        return None;
    }
    let specials = &table.specials;
    let k = specials.binary_search_by_key(&c, |&(look, _)| look).ok()?;
    specials.get(k).map(|&(_, special)| special)
}

//! Writes the Unicode data of `fromguard::lookalike` for the pure-Python reference, from
//! the crates the Rust core uses, and the parity vectors that both implementations check:
//!
//! - `python/fromguard/data/confusables.tsv`: the default-ignorable ranges and the
//!   confusable prototypes (UTS #39 §4 skeletons), from `unicode-security`;
//! - `python/fromguard/data/scripts.tsv`: each code point's augmented script set (UTS
//!   #39 §5.1), from `unicode-security` over `unicode-script`;
//! - `python/fromguard/data/normalization.tsv`: canonical decompositions and combining
//!   classes (NFD), from `unicode-normalization`, so that the Python skeleton does not
//!   depend on the Unicode version of the interpreter's `unicodedata`;
//! - `python/fromguard/data/format_context.tsv`: Joining_Type, the right-to-left letters,
//!   Extended_Pictographic and Emoji_Modifier, from `icu_properties`: what decides
//!   whether a joiner or bidi mark is honest where it stands;
//! - `tests/cases/lookalike_parity.jsonl`: pseudo-random strings (a fixed seed) with what
//!   the Rust core answers for them;
//! - `tests/cases/psl_parity.jsonl`: names made from the rules of the Public Suffix List
//!   snapshot (`data/public_suffix_list.dat`) with their organisational domain as the core
//!   finds it (`fromguard::psl`): regenerate after refreshing the snapshot.
//!
//! Usage, from anywhere in the repository (the default root is the one of this crate):
//!
//! ```text
//! cargo run -p fromguard --example export_unicode_tables [ROOT]
//! ```
//!
//! `rust/core/tests/lookalike.rs` builds the same files in memory (this file is a module
//! of that test) and checks that the committed ones are equal, so they cannot drift from
//! the crates.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fromguard::lookalike::{
    self, BIDI, DomainAnalysis, FormatContext, FormatSpan, INVISIBLE, VARIATION_SELECTORS,
};
use icu_properties::props::{EmojiModifier, ExtendedPictographic, JoiningType};
use icu_properties::{CodePointMapData, CodePointSetData};
use unicode_normalization::char::{canonical_combining_class, decompose_canonical};
use unicode_security::mixed_script::AugmentedScriptSet;

/// Where each generated file goes, relative to the repository root.
pub const CONFUSABLES_PATH: &str = "python/fromguard/data/confusables.tsv";
pub const SCRIPTS_PATH: &str = "python/fromguard/data/scripts.tsv";
pub const NORMALIZATION_PATH: &str = "python/fromguard/data/normalization.tsv";
pub const FORMAT_CONTEXT_PATH: &str = "python/fromguard/data/format_context.tsv";
pub const PARITY_PATH: &str = "tests/cases/lookalike_parity.jsonl";
pub const PSL_PARITY_PATH: &str = "tests/cases/psl_parity.jsonl";

/// How many parity vectors to write.
const PARITY_CASES: usize = 600;

/// Every generated file: its path under the root, and its text.
pub fn generated_files() -> Vec<(&'static str, String)> {
    vec![
        (CONFUSABLES_PATH, confusables_tsv()),
        (SCRIPTS_PATH, scripts_tsv()),
        (NORMALIZATION_PATH, normalization_tsv()),
        (FORMAT_CONTEXT_PATH, format_context_tsv()),
        (PARITY_PATH, parity_jsonl()),
        (PSL_PARITY_PATH, psl_parity_jsonl()),
    ]
}

/// The repository root: the directory two levels above this crate's manifest.
pub fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[allow(dead_code)] // A module of the test, which has its own `main`.
fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(default_root);
    let root = root.canonicalize().unwrap_or(root);
    for (path, text) in generated_files() {
        let target = root.join(path);
        if let Err(error) = std::fs::write(&target, &text) {
            eprintln!(
                "export_unicode_tables: cannot write {}: {error}",
                target.display()
            );
            std::process::exit(1);
        }
        eprintln!(
            "wrote {} ({} lines, {} bytes)",
            target.display(),
            text.lines().count(),
            text.len()
        );
    }
}

/// The version of `name` in the workspace's `Cargo.lock` (the one this example was built
/// with), or `"?"` if the lock file cannot be read.
pub fn locked_version(name: &str) -> String {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for lock in [
        manifest.join("../../Cargo.lock"),
        manifest.join("Cargo.lock"),
    ] {
        let Ok(text) = std::fs::read_to_string(&lock) else {
            continue;
        };
        let needle = format!("name = \"{name}\"\nversion = \"");
        if let Some(at) = text.find(&needle) {
            let rest = &text[at + needle.len()..];
            if let Some(end) = rest.find('"') {
                return rest[..end].to_owned();
            }
        }
    }
    "?".to_owned()
}

fn version_string((major, minor, patch): (u64, u64, u64)) -> String {
    format!("{major}.{minor}.{patch}")
}

fn header(lines: &[&str]) -> String {
    let mut text = String::new();
    for line in lines {
        if line.is_empty() {
            text.push_str("#\n");
        } else {
            let _ = writeln!(text, "# {line}");
        }
    }
    text
}

fn provenance() -> String {
    let (major, minor, patch) = unicode_normalization::UNICODE_VERSION;
    format!(
        "GENERATED by `cargo run -p fromguard --example export_unicode_tables`: do not edit.\n\
         # From unicode-security {} (Unicode {}), unicode-script {} (Unicode {}) and\n\
         # unicode-normalization {} (Unicode {major}.{minor}.{patch}), as locked in Cargo.lock.\n\
         # rust/core/tests/lookalike.rs checks that this file is what those crates give.",
        locked_version("unicode-security"),
        version_string(unicode_security::UNICODE_VERSION),
        locked_version("unicode-script"),
        version_string(unicode_script::UNICODE_VERSION),
        locked_version("unicode-normalization"),
    )
}

fn all_chars() -> impl Iterator<Item = char> {
    (0..=0x10FFFFu32).filter_map(char::from_u32)
}

fn hex(c: char) -> String {
    format!("{:04X}", u32::from(c))
}

fn hex_string(text: &str) -> String {
    text.chars().map(hex).collect::<Vec<_>>().join(" ")
}

/// The full canonical decomposition of `c` (`c` itself when it has none).
fn nfd_of(c: char) -> String {
    let mut text = String::new();
    decompose_canonical(c, |d| text.push(d));
    text
}

/// Inclusive ranges of the consecutive characters for which `key` gives the same
/// `Some` value.
fn ranges<K: PartialEq>(key: impl Fn(char) -> Option<K>) -> Vec<(char, char, K)> {
    let mut out: Vec<(char, char, K)> = Vec::new();
    for c in all_chars() {
        let Some(k) = key(c) else {
            continue;
        };
        match out.last_mut() {
            Some((_, last, value)) if *value == k && u32::from(*last) + 1 == u32::from(c) => {
                *last = c;
            }
            _ => out.push((c, c, k)),
        }
    }
    out
}

/// A default-ignorable code point is one whose skeleton is empty (the skeleton removes
/// exactly those, and maps every other character to something non-empty).
pub fn is_default_ignorable(c: char) -> bool {
    lookalike::skeleton(c.encode_utf8(&mut [0u8; 4])).is_empty()
}

pub fn confusables_tsv() -> String {
    let mut text = header(&[
        "UTS #39 §4 skeletons for python/fromguard/reference/lookalike.py.",
        &provenance(),
        "",
        "Rows, tab-separated, code points in hex:",
        "  FIRST..LAST             a range of Default_Ignorable_Code_Point: the skeleton",
        "                          removes them (and fromguard reports them, see lookalike.rs)",
        "  CP           MAPPING    the skeleton of CP alone, NFD(prototype(CP)), for every CP",
        "                          that is its own NFD, is not ignorable and whose skeleton",
        "                          is not itself; every other such CP maps to itself",
        "The skeleton of a string is NFD(the mappings of the characters of NFD(string)),",
        "with NFD as normalization.tsv defines it: the same as unicode-security's skeleton.",
    ]);
    for (first, last, ()) in ranges(|c| is_default_ignorable(c).then_some(())) {
        let _ = writeln!(text, "{}..{}", hex(first), hex(last));
    }
    for c in all_chars() {
        let own = c.to_string();
        if nfd_of(c) != own || is_default_ignorable(c) {
            continue;
        }
        let mapped = lookalike::skeleton(&own);
        if mapped != own {
            let _ = writeln!(text, "{}\t{}", hex(c), hex_string(&mapped));
        }
    }
    text
}

/// The augmented script set of `c` as the names of its members: `Zyyy` (Common) or `Zinh`
/// (Inherited) alone for the set of all scripts, else the ISO 15924 codes of its
/// Script_Extensions followed by those of the augmented writing systems `Hanb`, `Jpan`,
/// `Kore`. `None` for the empty set (script Unknown).
pub fn script_set_names(c: char) -> Option<String> {
    let set = AugmentedScriptSet::for_char(c);
    if set.is_empty() {
        return None;
    }
    if set.base.is_common() {
        return Some("Zyyy".to_owned());
    }
    if set.base.is_inherited() {
        return Some("Zinh".to_owned());
    }
    let mut names: Vec<&str> = set.base.iter().map(|script| script.short_name()).collect();
    for (flag, name) in [(set.hanb, "Hanb"), (set.jpan, "Jpan"), (set.kore, "Kore")] {
        if flag {
            names.push(name);
        }
    }
    Some(names.join(" "))
}

pub fn scripts_tsv() -> String {
    let mut text = header(&[
        "UTS #39 §5.1 augmented script sets for python/fromguard/reference/lookalike.py.",
        &provenance(),
        "",
        "Rows, tab-separated: FIRST LAST (inclusive, hex) and the augmented script set of",
        "every code point in the range, as space-separated ISO 15924 codes: the",
        "Script_Extensions, then Hanb, Jpan and Kore where UTS #39 adds them. `Zyyy` (Common)",
        "and `Zinh` (Inherited) stand for the set of all scripts. Code points in no range",
        "have script Unknown, whose set is empty. A string is single-script when the",
        "intersection of the sets of its characters is not empty.",
    ]);
    for (first, last, names) in ranges(script_set_names) {
        let _ = writeln!(text, "{}\t{}\t{names}", hex(first), hex(last));
    }
    text
}

fn is_hangul_syllable(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

pub fn normalization_tsv() -> String {
    let mut text = header(&[
        "Canonical decomposition (NFD) for python/fromguard/reference/lookalike.py, so that",
        "the Python skeleton does not depend on the Unicode version of `unicodedata`.",
        &provenance(),
        "",
        "Rows, tab-separated, code points in hex:",
        "  decomposition  CP     MAPPING  the full canonical decomposition of CP (Hangul",
        "                                 syllables AC00-D7A3 are left out: they decompose",
        "                                 by the algorithm of Unicode §3.12)",
        "  ccc            FIRST  LAST  N  the Canonical_Combining_Class of a range, where",
        "                                 it is not 0",
    ]);
    for c in all_chars() {
        let nfd = nfd_of(c);
        if nfd != c.to_string() && !is_hangul_syllable(c) {
            let _ = writeln!(text, "decomposition\t{}\t{}", hex(c), hex_string(&nfd));
        }
    }
    for (first, last, class) in ranges(|c| match canonical_combining_class(c) {
        0 => None,
        class => Some(class),
    }) {
        let _ = writeln!(text, "ccc\t{}\t{}\t{class}", hex(first), hex(last));
    }
    text
}

/// The one-letter name of a Joining_Type other than U (Non_Joining, the default).
fn joining_type_name(c: char) -> Option<&'static str> {
    match CodePointMapData::<JoiningType>::new().get(c) {
        JoiningType::LeftJoining => Some("L"),
        JoiningType::DualJoining => Some("D"),
        JoiningType::RightJoining => Some("R"),
        JoiningType::Transparent => Some("T"),
        JoiningType::JoinCausing => Some("C"),
        _ => None,
    }
}

pub fn format_context_tsv() -> String {
    let mut text = header(&[
        "The context of joiners and bidi marks for python/fromguard/reference/lookalike.py.",
        &format!(
            "GENERATED by `cargo run -p fromguard --example export_unicode_tables`: do not edit.\n\
             # From icu_properties {} (its compiled data), as locked in Cargo.lock.\n\
             # rust/core/tests/lookalike.rs checks that this file is what the crate gives.",
            locked_version("icu_properties"),
        ),
        "",
        "Rows, tab-separated, code points in hex, ranges inclusive:",
        "  jt   FIRST  LAST  TYPE  Joining_Type L, D, R, T or C (every other code point: U)",
        "  rtl  FIRST  LAST        a right-to-left letter: Bidi_Class R or AL (not RLM, ALM)",
        "  ep   FIRST  LAST        Extended_Pictographic",
        "  em   FIRST  LAST        Emoji_Modifier (the skin tones)",
        "The virama of RFC 5892's CONTEXTJ rules is Canonical_Combining_Class 9, from",
        "normalization.tsv.",
    ]);
    for (first, last, name) in ranges(joining_type_name) {
        let _ = writeln!(text, "jt\t{}\t{}\t{name}", hex(first), hex(last));
    }
    let pictographic = CodePointSetData::new::<ExtendedPictographic>();
    let modifier = CodePointSetData::new::<EmojiModifier>();
    let sets: [(&str, &dyn Fn(char) -> bool); 3] = [
        ("rtl", &lookalike::is_right_to_left),
        ("ep", &|c| pictographic.contains(c)),
        ("em", &|c| modifier.contains(c)),
    ];
    for (kind, member) in sets {
        for (first, last, ()) in ranges(|c| member(c).then_some(())) {
            let _ = writeln!(text, "{kind}\t{}\t{}", hex(first), hex(last));
        }
    }
    text
}

// ---------------------------------------------------------------------------------------
// Parity vectors

/// xorshift64*: a small, fixed pseudo-random sequence, the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        // n is small: the bias of the modulo does not matter here.
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Characters the parity strings are made of, by kind: look-alikes and letters of many
/// scripts, combining marks (also of scripts newer than Python's `unicodedata`),
/// Hangul, format characters, and characters of scripts added after Unicode 14.
const POOLS: &[&str] = &[
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.",
    "аеорсухіјӏԁԛԝѕһАВЕКМНОРСТХІЈԌ",      // Cyrillic look-alikes
    "αβγδεικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",        // Greek
    "ɑɡɩɪʀʏᴀᴄᴅᴇᴊᴋᴍᴏᴘᴛᴜᴠᴡᴢıȷſℓ℮ⅰⅼⅽⅾⅿ",     // Latin look-alikes and letterlike symbols
    "ａｂｃｄｅｘｙｚＡＢＣ０１２３－．", // fullwidth
    "üéèêëäöåñçøßÜÉÖÅÑǅǆǲǳẞḀḁṩẛﬁﬂ",       // precomposed, compatibility
    "\u{300}\u{301}\u{302}\u{303}\u{308}\u{30A}\u{316}\u{323}\u{327}\u{328}\u{334}\u{335}\u{338}\u{345}\u{35C}\u{1AB0}\u{1DC0}\u{20D0}\u{20E3}",
    "\u{11F00}\u{11F01}\u{11F41}\u{11F42}\u{113B8}\u{113C2}\u{113C5}\u{113C7}\u{113C9}\u{113CE}\u{16D63}\u{16D67}\u{16D68}\u{16D69}\u{16D6A}\u{10D69}\u{10D6D}\u{16129}\u{1612F}\u{1E4EC}\u{1E5EE}\u{11F3E}\u{11F3F}",
    "日本語例え漢字中文カタカナひらがなㄅㄆ한국어가힣각",
    "عربيالعربية٠١٢٣۰۱۲ابتثעבריתשלוםאבג",
    "\u{AD}\u{34F}\u{61C}\u{115F}\u{17B4}\u{180B}\u{180E}\u{200B}\u{200C}\u{200D}\u{200E}\u{200F}\u{202A}\u{202E}\u{2060}\u{2064}\u{2066}\u{2069}\u{206A}\u{3164}\u{FE0F}\u{FEFF}\u{FFA0}\u{E0001}\u{E0041}\u{E007F}\u{E0100}\u{1BCA0}\u{1D173}",
    "!#$%&'*+/=?^_`{|}~ \"(),:;<>@[\\]\u{A0}\u{3002}\u{FF0E}\u{2024}",
    // The contexts of joiners and marks: viramas and Indic letters, Persian letters and
    // a transparent mark, pictographs, a skin tone, a selector, Hebrew.
    "\u{915}\u{94D}\u{937}\u{DC1}\u{DCA}\u{DBB}\u{6CC}\u{62E}\u{648}\u{64E}\u{200C}\u{200D}\u{200D}\u{1F469}\u{1F4BB}\u{1F3FD}\u{2764}\u{FE0F}\u{5D0}\u{200F}",
];

/// A pseudo-random string: characters from the pools, now and then any scalar value,
/// now and then an `xn--` label (the punycode of a drawn label, or garbage).
fn random_text(rng: &mut Rng) -> String {
    let mut text = String::new();
    let parts = 1 + rng.below(4);
    for part in 0..parts {
        if part > 0 {
            text.push('.');
        }
        match rng.below(10) {
            0 | 1 => {
                let label = random_chars(rng);
                match idna::punycode::encode_str(&label) {
                    Some(encoded) if rng.below(5) > 0 => {
                        text.push_str(if rng.below(4) == 0 { "XN--" } else { "xn--" });
                        text.push_str(&encoded);
                    }
                    _ => {
                        text.push_str("xn--");
                        for _ in 0..rng.below(12) {
                            text.push(*rng.pick(b"abcdefghijklmnopqrstuvwxyz0123456789-Z9")
                                as char);
                        }
                    }
                }
            }
            _ => text.push_str(&random_chars(rng)),
        }
    }
    text
}

fn random_chars(rng: &mut Rng) -> String {
    let mut text = String::new();
    for _ in 0..rng.below(9) {
        if rng.below(12) == 0 {
            let scalar = rng.next() as u32 % 0x11_0000;
            text.push(char::from_u32(scalar).unwrap_or('\u{FFFD}'));
        } else {
            let pool: Vec<char> = rng.pick(POOLS).chars().collect();
            text.push(*rng.pick(&pool));
        }
    }
    text
}

/// `text` as a JSON string, ASCII only (`\uXXXX` escapes, surrogate pairs beyond the BMP).
pub fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
    out
}

fn json_option(value: &Option<String>) -> String {
    value
        .as_deref()
        .map_or_else(|| "null".to_owned(), json_string)
}

/// The JSON object of a [`DomainAnalysis`], keys in the order of the fields.
pub fn analysis_json(analysis: &DomainAnalysis) -> String {
    format!(
        "{{\"punycode\": {}, \"unicode\": {}, \"bad_punycode\": {}, \"mixed_script\": {}, \"ascii_lookalike\": {}}}",
        analysis.punycode,
        json_option(&analysis.unicode),
        analysis.bad_punycode,
        analysis.mixed_script,
        json_option(&analysis.ascii_lookalike),
    )
}

/// `[[start, end, kind], ...]`.
pub fn format_json(spans: &[FormatSpan]) -> String {
    let items: Vec<String> = spans
        .iter()
        .map(|s| format!("[{}, {}, \"{}\"]", s.start, s.end, s.kind))
        .collect();
    format!("[{}]", items.join(", "))
}

/// One parity vector: the input and the core's answers, as one JSON line.
pub fn parity_line(text: &str) -> String {
    format!(
        "{{\"input\": {}, \"domain\": {}, \"skeleton\": {}, \"mixed_script\": {}, \"format\": {}, \"format_in_domain\": {}}}\n",
        json_string(text),
        analysis_json(&lookalike::analyze_domain(text)),
        json_string(&lookalike::skeleton(text)),
        lookalike::is_mixed_script(text),
        format_json(&lookalike::format_characters(text)),
        format_json(&lookalike::format_characters_in(
            text,
            FormatContext::Domain
        )),
    )
}

pub fn parity_jsonl() -> String {
    let mut rng = Rng(0x5EED_F00D_2024_4904);
    let mut text = String::new();
    for _ in 0..PARITY_CASES {
        text.push_str(&parity_line(&random_text(&mut rng)));
    }
    text
}

/// Every 32nd plain rule of the Public Suffix List, every rule with a wildcard or an
/// exception, and every rule of `data/tenant_suffixes.dat`, each made a name (`*` as `w`, without `!`): alone, and with one and two
/// labels before it. The rules are the lines after the first section marker that are
/// not comments, their first word (as the `publicsuffix` crate reads them).
fn psl_names() -> Vec<String> {
    let list = include_str!("../data/public_suffix_list.dat");
    let mut names = Vec::new();
    let mut in_section = false;
    let mut plain = 0usize;
    for line in list.lines() {
        if line.contains("BEGIN ICANN DOMAINS") || line.contains("BEGIN PRIVATE DOMAINS") {
            in_section = true;
            continue;
        }
        let Some(rule) = line.split_whitespace().next() else {
            continue;
        };
        if !in_section || line.starts_with("//") {
            continue;
        }
        if !rule.contains('*') && !rule.starts_with('!') {
            plain += 1;
            if !plain.is_multiple_of(32) {
                continue;
            }
        }
        let name = rule.trim_start_matches('!').replace('*', "w");
        names.extend([format!("b.a.{name}"), format!("a.{name}"), name]);
    }
    // And every tenant rule, appended to the list by both engines.
    for rule in include_str!("../data/tenant_suffixes.dat")
        .lines()
        .filter(|line| !line.starts_with("//"))
        .filter_map(|line| line.split_whitespace().next())
    {
        names.extend([format!("b.a.{rule}"), format!("a.{rule}"), rule.to_owned()]);
    }
    names
}

pub fn psl_parity_jsonl() -> String {
    psl_names()
        .iter()
        .map(|name| {
            format!(
                "{{\"domain\": {}, \"organisational_domain\": {}}}\n",
                json_string(name),
                json_string(&fromguard::psl::organisational_domain(name)),
            )
        })
        .collect()
}

/// The format-character tables of `lookalike`, as one list of inclusive ranges.
pub fn reported_and_variation_ranges() -> Vec<(char, char)> {
    let mut all: Vec<(char, char)> = BIDI
        .iter()
        .chain(INVISIBLE)
        .chain(VARIATION_SELECTORS)
        .copied()
        .collect();
    all.sort();
    all
}

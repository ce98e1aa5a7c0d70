//! The Unicode security checks of `fromguard::lookalike`:
//!
//! - the shared case file `tests/cases/lookalike.jsonl` (also run by
//!   `tests/test_lookalike.py` against the Python reference);
//! - the generated files (`python/fromguard/data/{confusables,scripts,normalization}.tsv`
//!   and `tests/cases/lookalike_parity.jsonl`) are exactly what
//!   `examples/export_unicode_tables.rs` makes from today's crates, so the Python
//!   reference cannot drift from the core;
//! - the format-character tables are exactly the default-ignorable code points of
//!   `unicode-security`;
//! - the look-alike specials (`data/lookalike_specials.tsv`) are exactly the UTS #39
//!   confusables and NFKC equivalents of "@", ".", "<" and ">", and the listed others;
//! - no input makes a function panic, and the results keep their invariants.

#[allow(dead_code)]
#[path = "../examples/export_unicode_tables.rs"]
mod export;

mod common;

use fromguard::lookalike::{
    BIDI, DomainAnalysis, FormatContext, FormatKind, INVISIBLE, VARIATION_SELECTORS,
    analyze_domain, format_characters, format_characters_in, format_kind, is_mixed_script,
    is_plain, lookalike_special, lookalike_specials, skeleton,
};
use proptest::prelude::*;
use serde_json::Value;

const CASES: &str = include_str!("../../../tests/cases/lookalike.jsonl");

fn cases() -> Vec<Value> {
    common::jsonl(CASES)
}

fn optional_string(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn expected_analysis(case: &Value) -> DomainAnalysis {
    let flag = |key: &str| case[key].as_bool().expect("a boolean");
    DomainAnalysis {
        punycode: flag("punycode"),
        unicode: optional_string(&case["unicode"]),
        bad_punycode: flag("bad_punycode"),
        mixed_script: flag("mixed_script"),
        ascii_lookalike: optional_string(&case["ascii_lookalike"]),
    }
}

/// The format spans of `text`: as display text, or in the named context.
fn format_value(text: &str, context: Option<&str>) -> Value {
    let spans = match context {
        None => format_characters(text),
        Some(name) => {
            let context = [
                FormatContext::Domain,
                FormatContext::Text,
                FormatContext::RightToLeftText,
            ]
            .into_iter()
            .find(|context| context.as_str() == name)
            .expect("a context name");
            format_characters_in(text, context)
        }
    };
    serde_json::from_str(&export::format_json(&spans)).expect("JSON")
}

#[test]
fn case_file() {
    let cases = cases();
    assert!(cases.len() >= 40);
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        assert!(names.insert(name), "duplicate case name {name:?}");
        if let Some(domain) = case.get("domain") {
            let domain = domain.as_str().expect("domain");
            let got = analyze_domain(domain);
            let expected = expected_analysis(case);
            if got != expected {
                failures.push(format!("{name}: {got:?}, expected {expected:?}"));
            }
        } else {
            let text = case["text"].as_str().expect("text");
            let got = format_value(text, case.get("context").and_then(Value::as_str));
            if got != case["format"] {
                failures.push(format!("{name}: format {got}, expected {}", case["format"]));
            }
            if let Some(expected) = case.get("skeleton") {
                let got = skeleton(text);
                if Some(got.as_str()) != expected.as_str() {
                    failures.push(format!("{name}: skeleton {got:?}, expected {expected}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The committed tables and parity vectors are what the generator makes today. When the
/// crates change (a `cargo update`), this fails: regenerate with
/// `cargo run -p fromguard --example export_unicode_tables`.
#[test]
fn generated_files_are_up_to_date() {
    let root = export::default_root();
    let mut stale = Vec::new();
    for (path, expected) in export::generated_files() {
        let committed = std::fs::read_to_string(root.join(path)).unwrap_or_default();
        if committed != expected {
            let line = committed
                .lines()
                .zip(expected.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| "its length".to_owned(), |n| format!("line {}", n + 1));
            stale.push(format!("{path} differs at {line}"));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nregenerate: cargo run -p fromguard --example export_unicode_tables",
        stale.join("\n")
    );
}

/// `BIDI`, `INVISIBLE` and `VARIATION_SELECTORS` are sorted, disjoint, and together the
/// default-ignorable code points of `unicode-security` (those whose skeleton is empty).
#[test]
fn format_tables_are_the_default_ignorables() {
    for table in [BIDI, INVISIBLE, VARIATION_SELECTORS] {
        for pair in table.windows(2) {
            assert!(pair[0].1 < pair[1].0, "unsorted or overlapping: {pair:?}");
        }
    }
    let ranges = export::reported_and_variation_ranges();
    for pair in ranges.windows(2) {
        assert!(pair[0].1 < pair[1].0, "tables overlap: {pair:?}");
    }
    let in_tables = |c: char| ranges.iter().any(|&(low, high)| low <= c && c <= high);
    let mismatched: Vec<String> = (0..=0x10FFFFu32)
        .filter_map(char::from_u32)
        .filter(|&c| in_tables(c) != export::is_default_ignorable(c))
        .map(|c| format!("U+{:04X}", u32::from(c)))
        .take(20)
        .collect();
    assert!(mismatched.is_empty(), "{mismatched:?}");
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let expected = if BIDI.iter().any(|&(low, high)| low <= c && c <= high) {
            Some(FormatKind::Bidi)
        } else if INVISIBLE.iter().any(|&(low, high)| low <= c && c <= high) {
            Some(FormatKind::Invisible)
        } else {
            None
        };
        assert_eq!(format_kind(c), expected, "U+{:04X}", u32::from(c));
    }
}

/// `data/lookalike_specials.tsv`: each row's sources hold for it and no other character
/// has them. `uts39`: the skeleton (unicode-security) of the character is the special;
/// `nfkc`: its NFKC form (unicode-normalization) is; `uts46`: the IDNA label separators
/// (RFC 3490 §3.1, UTS #46 maps them to "."); `shape`: angle brackets drawn like "<" and
/// ">" (U+2329/U+232A, whose canonical forms are U+3008/U+3009, and U+27E8/U+27E9). The
/// table the core reads is every row.
#[test]
fn lookalike_specials_are_the_confusables_and_nfkc_forms_of_the_specials() {
    use std::collections::BTreeSet;
    use unicode_normalization::UnicodeNormalization;

    const SPECIALS: [char; 4] = ['@', '.', '<', '>'];
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/lookalike_specials.tsv"),
    )
    .expect("data/lookalike_specials.tsv");
    let mut listed: [BTreeSet<(char, char)>; 4] = Default::default();
    let mut rows = BTreeSet::new();
    for line in text.lines().filter(|line| !line.starts_with('#')).skip(1) {
        let columns: Vec<&str> = line.split('\t').collect();
        assert_eq!(columns.len(), 4, "{line:?}");
        let c = char::from_u32(u32::from_str_radix(columns[0], 16).expect("hex")).expect("char");
        let special = columns[1].parse::<char>().expect("one character");
        assert!(SPECIALS.contains(&special) && !c.is_ascii(), "{line:?}");
        assert!(rows.insert((c, special)), "twice: {line:?}");
        for source in columns[2].split(',') {
            let k = ["uts39", "nfkc", "uts46", "shape"]
                .iter()
                .position(|&name| name == source)
                .unwrap_or_else(|| panic!("unknown source {source:?}: {line:?}"));
            listed[k].insert((c, special));
        }
    }
    let mut uts39 = BTreeSet::new();
    let mut nfkc = BTreeSet::new();
    for c in (0x80..=0x10FFFFu32).filter_map(char::from_u32) {
        let one = c.to_string();
        for (found, form) in [
            (&mut uts39, skeleton(&one)),
            (&mut nfkc, one.nfkc().collect::<String>()),
        ] {
            if let Ok(special) = form.parse::<char>()
                && SPECIALS.contains(&special)
            {
                found.insert((c, special));
            }
        }
    }
    let chars = |pairs: &[(u32, char)]| -> BTreeSet<(char, char)> {
        pairs
            .iter()
            .map(|&(c, special)| (char::from_u32(c).expect("char"), special))
            .collect()
    };
    assert_eq!(listed[0], uts39, "uts39 rows");
    assert_eq!(listed[1], nfkc, "nfkc rows");
    assert_eq!(
        listed[2],
        chars(&[(0x3002, '.'), (0xFF0E, '.'), (0xFF61, '.')]),
        "uts46 rows"
    );
    assert_eq!(
        listed[3],
        chars(&[
            (0x2329, '<'),
            (0x232A, '>'),
            (0x27E8, '<'),
            (0x27E9, '>'),
            (0x3008, '<'),
            (0x3009, '>'),
        ]),
        "shape rows"
    );
    let table: BTreeSet<(char, char)> = lookalike_specials().iter().copied().collect();
    assert_eq!(table, rows);
    let by_char: std::collections::BTreeMap<char, char> = rows.iter().copied().collect();
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let expected = by_char.get(&c).copied();
        assert_eq!(lookalike_special(c), expected, "U+{:04X}", u32::from(c));
    }
}

/// The fast path's one-bit answer agrees with the two questions it stands for, for every
/// character.
#[test]
fn is_plain_is_neither_format_character_nor_lookalike() {
    for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
        let expected = format_kind(c).is_none() && lookalike_special(c).is_none();
        assert_eq!(is_plain(c), expected, "U+{:04X}", u32::from(c));
    }
}

/// The core's examples from the brief, spelled out.
#[test]
fn examples() {
    let bank = analyze_domain("b\u{430}nk.example");
    assert!(bank.mixed_script);
    assert_eq!(bank.ascii_lookalike.as_deref(), Some("bank.example"));
    assert_eq!(analyze_domain("bücher.example").ascii_lookalike, None);
    assert!(!is_mixed_script("日本語"));
    assert!(!is_mixed_script("例え"));
    assert!(is_mixed_script("b\u{430}nk"));
    let apple = analyze_domain("xn--80ak6aa92e.com");
    assert_eq!(
        apple.unicode.as_deref(),
        Some("\u{430}\u{440}\u{440}\u{4CF}\u{435}.com")
    );
    assert_eq!(apple.ascii_lookalike.as_deref(), Some("apple.com"));
    assert_eq!(skeleton("example"), "exarnple");
    assert_eq!(FormatKind::Bidi.to_string(), "bidi");
}

fn check_invariants(text: &str) {
    let analysis = analyze_domain(text);
    assert_eq!(analysis.unicode.is_some(), analysis.punycode);
    assert!(!analysis.bad_punycode || analysis.punycode);
    if let Some(imitated) = &analysis.ascii_lookalike {
        assert!(imitated.is_ascii());
        assert_eq!(*imitated, imitated.to_ascii_lowercase());
        assert!(!analysis.unicode.as_deref().unwrap_or(text).is_ascii());
    }
    if let Some(unicode) = &analysis.unicode {
        // Decoding is idempotent: a decoded domain has no A-label left that decodes.
        let again = analyze_domain(unicode);
        assert_eq!(
            again.unicode.as_deref().unwrap_or(unicode),
            unicode.as_str()
        );
        assert_eq!(again.mixed_script, analysis.mixed_script);
        assert_eq!(again.ascii_lookalike, analysis.ascii_lookalike);
    }
    let spans = format_characters(text);
    let mut previous_end = 0;
    for span in &spans {
        assert!(previous_end <= span.start && span.start < span.end && span.end <= text.len());
        assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
        assert!(
            text[span.start..span.end]
                .chars()
                .all(|c| format_kind(c) == Some(span.kind))
        );
        previous_end = span.end;
    }
    // Every format character is reported but for joiners and marks honest in context,
    // and a domain lets pass no more of them than display text does.
    let offsets = |spans: &[fromguard::lookalike::FormatSpan]| -> Vec<usize> {
        let mut offsets: Vec<usize> = spans.iter().flat_map(|span| span.start..span.end).collect();
        offsets.sort_unstable();
        offsets
    };
    let reported = offsets(&spans);
    let in_domain = offsets(&format_characters_in(text, FormatContext::Domain));
    for (start, c) in text.char_indices() {
        if format_kind(c).is_some() && reported.binary_search(&start).is_err() {
            assert!(
                ['\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{061C}'].contains(&c),
                "U+{:04X} not reported",
                u32::from(c)
            );
        }
    }
    assert!(
        reported
            .iter()
            .all(|offset| in_domain.binary_search(offset).is_ok())
    );
    // A skeleton holds no default-ignorable, and is a fixed point of the skeleton.
    let once = skeleton(text);
    assert!(!once.chars().any(export::is_default_ignorable));
    assert_eq!(skeleton(&once), once);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_panic_on_any_text(text in any::<String>()) {
        check_invariants(&text);
    }

    #[test]
    fn no_panic_on_domain_like_text(
        text in r"((xn|XN)--[a-z0-9-]{0,20}|[a-z\u{430}-\u{44F}\u{3B1}-\u{3C9}\u{200B}-\u{200F}\u{202A}-\u{202E}\u{300}-\u{36F}0-9-]{0,10})(\.((xn|XN)--[a-z0-9-]{0,20}|[a-z\u{430}-\u{44F}0-9-]{0,10})){0,3}"
    ) {
        check_invariants(&text);
    }
}

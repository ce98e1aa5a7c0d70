//! `RuleSet`: a fixed set of rules over every target, matched against the input as a
//! message; and one rule whose target and pattern come from the input, compiled with the
//! fixed rules of its target into one set and matched against the rest of the input.
//!
//! Input layout: byte 0 = the pattern's length `n`, byte 1 picks its target, the next
//! `n` bytes are the pattern (as UTF-8, lossily), the rest is the message.
#![no_main]

use std::sync::LazyLock;

use fromguard::RuleSet;
use libfuzzer_sys::fuzz_target;

const TARGETS: [&str; 7] = [
    "display-name",
    "local-part",
    "domain",
    "addr-spec",
    "header:from",
    "header:subject",
    "header:x-mailer",
];

/// Rules like those of `examples/policies`: anchors, classes, case-insensitive,
/// alternations, Unicode classes and an empty pattern (matches any present field).
const FIXED: [(&str, &str, &str); 9] = [
    ("paypal", "display-name", r"(?i)pay\s*pal"),
    ("support", "local-part", r"^(support|admin|ceo)$"),
    ("lookalike", "domain", r"(?i)xn--|[^\x00-\x7f]"),
    ("bank", "addr-spec", r"@bank\.example$"),
    ("from-angle", "header:from", r"<[^>]*>\s*<"),
    ("subject", "header:subject", r"(?i)account.*suspended"),
    ("mailer", "header:x-mailer", r"\p{Greek}+"),
    ("any-reply-to", "header:reply-to", r""),
    ("nested", "header:from", r"((a|b)+c?)*d{2,5}"),
];

static FIXED_SET: LazyLock<RuleSet> =
    LazyLock::new(|| RuleSet::new(&FIXED).expect("the fixed rules compile"));

fuzz_target!(|data: &[u8]| {
    let [length, target, rest @ ..] = data else {
        return;
    };
    let (pattern, message) = rest.split_at(usize::from(*length).min(rest.len()));
    let fixed_hits = FIXED_SET.matches(message);
    assert!(fixed_hits.windows(2).all(|w| w[0] < w[1]), "{fixed_hits:?}");
    assert!(fixed_hits.iter().all(|&i| i < FIXED.len()));

    // The fuzzed rule joins the fixed rules of its target, whose patterns then compile
    // into one set with it (the others are compiled once, above: that keeps runs fast).
    // It comes first: a pattern that does not compile (many mutated ones) fails before
    // the fixed patterns are compiled for nothing.
    let target = TARGETS[usize::from(*target) % TARGETS.len()];
    let pattern = String::from_utf8_lossy(pattern);
    let indices: Vec<usize> = (0..FIXED.len()).filter(|&i| FIXED[i].1 == target).collect();
    let mut rules = vec![("fuzzed", target, &*pattern)];
    rules.extend(indices.iter().map(|&i| FIXED[i]));
    // A pattern that does not compile is an error naming the rule, never a panic.
    match RuleSet::new(&rules) {
        Ok(set) => {
            // The fixed rules match alike beside any other rule.
            let hits: Vec<usize> = set
                .matches(message)
                .into_iter()
                .filter_map(|i| indices.get(i.checked_sub(1)?).copied())
                .collect();
            let expected: Vec<usize> = fixed_hits
                .iter()
                .copied()
                .filter(|i| indices.contains(i))
                .collect();
            assert_eq!(hits, expected);
        }
        Err(error) => assert_eq!(error.rule, "fuzzed", "{error}"),
    }
});

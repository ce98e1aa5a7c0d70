//! What the integration tests share: reading a JSON Lines case file, and the check that
//! a padding hides no decision.

// Each test binary uses its part of this module.
#![allow(dead_code)]

use fromguard::{Code, CodeSet, Severity, Verdict};
use serde_json::Value;

/// One JSON value per non-blank line of `text`; a line that is not JSON fails the test
/// with its line number.
pub fn jsonl(text: &str) -> Vec<Value> {
    text.split('\n')
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("line {}: {error}", number + 1))
        })
        .collect()
}

/// The deceptive and invalid codes of a set: what a gateway decides on.
pub fn decisive(codes: &CodeSet) -> Vec<Code> {
    codes
        .iter()
        .filter(|code| code.severity() >= Severity::Deceptive)
        .collect()
}

/// Asserts that a padded input keeps the verdict and the decisive codes of the plain one;
/// returns whether the padding took its findings past the limit (padding inside an
/// unterminated quote or comment, say, adds none).
pub fn keeps_decision(name: &str, plain: (Verdict, &CodeSet), padded: (Verdict, &CodeSet)) -> bool {
    assert!(padded.0 >= plain.0, "{name}: verdict weakened");
    for code in decisive(plain.1) {
        assert!(padded.1.contains(code), "{name}: {code} lost");
    }
    padded.1.contains(Code::TooManyFindings)
}

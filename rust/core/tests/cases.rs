//! The shared grammar case files (`tests/cases/*.jsonl`), also run by
//! `tests/test_cases.py` against the Python reference and the binding.
//!
//! A case holds the input (`input`, `input_hex` or `input_repeat`: `[[text, count], ...]`),
//! the profile (`utf8`, `groups`) and what must come out: `verdict`, `syntax`, `findings`
//! (the exact sorted list of `[code, start, end]`) or `findings_count` with
//! `findings_include`, `mailboxes` (a subset of each mailbox's fields), `mailbox_count`,
//! `address` and `shadows` (the exact sorted list of `[address, source, start, end]`).
//! A `note` says where the behaviour a case stands for comes from (a parser's source or
//! tests); the runners do not read it.
//! Files whose cases have no `verdict` (`encoded_words.jsonl`) have runners of their own
//! and are skipped here.

mod common;

use std::path::{Path, PathBuf};

use fromguard::{Mailbox, Parsed, Profile, parse};
use serde_json::{Value, json};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases")
}

/// Every grammar case of every case file, with where it comes from.
fn load_cases() -> Vec<(String, Value)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/cases exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    paths.sort();
    let mut cases = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("a readable case file");
        let file = path
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let case: Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{file}:{}: {error}", number + 1));
            if case.get("verdict").is_some() {
                cases.push((format!("{file}:{} {}", number + 1, case["name"]), case));
            }
        }
    }
    cases
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("hex digits");
            u8::from_str_radix(text, 16).expect("hex digits")
        })
        .collect()
}

fn case_input(case: &Value) -> Vec<u8> {
    if let Some(repeat) = case.get("input_repeat") {
        let mut out = Vec::new();
        for item in repeat.as_array().expect("input_repeat is a list") {
            let text = item[0].as_str().expect("input_repeat text");
            let count = item[1].as_u64().expect("input_repeat count");
            for _ in 0..count {
                out.extend_from_slice(text.as_bytes());
            }
        }
        return out;
    }
    if let Some(hex) = case.get("input_hex") {
        return hex_bytes(hex.as_str().expect("input_hex is a string"));
    }
    case["input"]
        .as_str()
        .expect("input is a string")
        .as_bytes()
        .to_vec()
}

fn case_profile(case: &Value) -> Profile {
    Profile {
        utf8: case.get("utf8").and_then(Value::as_bool).unwrap_or(true),
        groups: case.get("groups").and_then(Value::as_bool).unwrap_or(false),
    }
}

fn span(span: (usize, usize)) -> Value {
    json!([span.0, span.1])
}

/// A mailbox as the case files write it.
fn mailbox_json(mailbox: &Mailbox<'_>) -> Value {
    json!({
        "display_name": mailbox.display_name.as_deref(),
        "local_part": &*mailbox.local_part,
        "domain": &*mailbox.domain,
        "addr_spec": &*mailbox.addr_spec,
        "route": mailbox.route.iter().map(|r| &**r).collect::<Vec<&str>>(),
        "comments": mailbox.comments.iter().map(|c| &**c).collect::<Vec<&str>>(),
        "group": mailbox.group.as_deref(),
        "span": span(mailbox.span),
        "display_name_span": mailbox.display_name_span.map(span),
        "local_part_span": span(mailbox.local_part_span),
        "domain_span": span(mailbox.domain_span),
    })
}

fn findings_json(parsed: &Parsed<'_>) -> Vec<Value> {
    parsed
        .findings
        .iter()
        .map(|finding| json!([finding.code.as_str(), finding.start, finding.end]))
        .collect()
}

fn shadows_json(parsed: &Parsed<'_>) -> Vec<Value> {
    parsed
        .shadows
        .iter()
        .map(|shadow| {
            json!([
                &*shadow.address,
                shadow.source.as_str(),
                shadow.start,
                shadow.end
            ])
        })
        .collect()
}

/// What differs between the case and the result, one line each.
fn check(case: &Value, parsed: &Parsed<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    let findings = findings_json(parsed);
    let mut expect = |field: &str, got: Value| {
        if let Some(expected) = case.get(field)
            && *expected != got
        {
            errors.push(format!("{field}: expected {expected}, got {got}"));
        }
    };
    expect("verdict", json!(parsed.verdict.as_str()));
    expect("syntax", json!(parsed.syntax.as_str()));
    expect("findings", json!(findings));
    expect("findings_count", json!(findings.len()));
    expect("mailbox_count", json!(parsed.mailboxes.len()));
    let address = match parsed.mailboxes.as_slice() {
        [only] => json!(&*only.addr_spec),
        _ => Value::Null,
    };
    expect("address", address);
    expect("shadows", json!(shadows_json(parsed)));
    if let Some(include) = case.get("findings_include").and_then(Value::as_array) {
        for finding in include {
            if !findings.contains(finding) {
                errors.push(format!(
                    "findings_include: {finding} missing from {}",
                    json!(findings)
                ));
            }
        }
    }
    if let Some(mailboxes) = case.get("mailboxes").and_then(Value::as_array) {
        if mailboxes.len() != parsed.mailboxes.len() {
            errors.push(format!(
                "mailboxes: expected {}, got {}",
                mailboxes.len(),
                parsed.mailboxes.len()
            ));
        }
        for (k, (expected, mailbox)) in mailboxes.iter().zip(&parsed.mailboxes).enumerate() {
            let got = mailbox_json(mailbox);
            for (field, value) in expected.as_object().expect("a mailbox is an object") {
                match got.get(field) {
                    Some(actual) if actual == value => {}
                    actual => errors.push(format!(
                        "mailboxes[{k}].{field}: expected {value}, got {}",
                        actual.cloned().unwrap_or(Value::Null)
                    )),
                }
            }
        }
    }
    errors
}

#[test]
fn case_files() {
    let cases = load_cases();
    assert!(
        !cases.is_empty(),
        "no grammar cases in {}",
        cases_dir().display()
    );
    let mut failures = Vec::new();
    for (name, case) in &cases {
        let input = case_input(case);
        let parsed = parse(&input, case_profile(case));
        let errors = check(case, &parsed);
        if !errors.is_empty() {
            failures.push(format!("{name}\n    {}", errors.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// How many harmless findings a padding adds: well past the findings limit.
const PADDING: usize = fromguard::limits::MAX_FINDINGS + 1;

/// Padding a value with harmless findings (comments, `info`) before the trigger, after
/// it, or both, never weakens its verdict nor drops a deceptive or invalid code from the
/// code set a policy reads: the cap on findings bounds a result's size, not a decision
/// (issue: a value padded with 1,001 comments lost `address-in-rejected-text`).
#[test]
fn padding_never_hides_a_decision() {
    let comments = "(x) ".repeat(PADDING);
    let mut past_cap = 0;
    for (name, case) in load_cases() {
        let input = case_input(&case);
        if input.len() > 64 * 1024 {
            continue; // the limits' own cases: padding adds nothing to them
        }
        let profile = case_profile(&case);
        let plain = parse(&input, profile);
        if common::decisive(&plain.codes).is_empty() {
            continue;
        }
        let before = [comments.as_bytes(), &input].concat();
        let after = [&input, b" ".as_slice(), comments.as_bytes()].concat();
        let both = [comments.as_bytes(), &input, b" ", comments.as_bytes()].concat();
        for padded in [before, after, both] {
            let result = parse(&padded, profile);
            let plain = (plain.verdict, &plain.codes);
            let reached = common::keeps_decision(&name, plain, (result.verdict, &result.codes));
            past_cap += usize::from(reached);
        }
    }
    assert!(
        past_cap >= 300,
        "only {past_cap} padded values past the limit"
    );
}

//! The message case file (`tests/cases/messages/messages.jsonl`), also run by
//! `tests/test_message.py` against the Python reference and the binding.
//!
//! A case holds the raw `message` (text, as UTF-8), the message `verdict`, the exact
//! sorted message-level `findings` (`[code, start, end]`, spans into the message) and the
//! checked `fields` in order (`[name as written, the field's single address or null]`).

mod common;

use std::path::Path;

use fromguard::limits::{MAX_CHECKED_FIELDS, MAX_FINDINGS};
use fromguard::{Code, Profile, Verdict, check_message};
use serde_json::{Value, json};

#[test]
fn every_message_case() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases/messages/messages.jsonl");
    let text = std::fs::read_to_string(&path).expect("the message case file");
    let mut count = 0;
    for case in common::jsonl(&text) {
        let name = &case["name"];
        let raw = case["message"].as_str().expect("a message").as_bytes();
        let checked = check_message(raw, Profile::default());
        let findings: Vec<Value> = checked
            .findings
            .iter()
            .map(|f| json!([f.code.as_str(), f.start, f.end]))
            .collect();
        assert_eq!(Value::Array(findings), case["findings"], "{name}");
        let fields: Vec<Value> = checked
            .fields
            .iter()
            .map(|f| json!([f.name, f.result.address()]))
            .collect();
        assert_eq!(Value::Array(fields), case["fields"], "{name}");
        assert_eq!(json!(checked.verdict.as_str()), case["verdict"], "{name}");
        count += 1;
    }
    assert!(count >= 20, "only {count} message cases");
}

#[test]
fn field_results_keep_value_spans() {
    let raw = b"To: x@y.example\r\nFrom: Dr. Jane <jane@x.example>\r\n\r\n";
    let checked = check_message(raw, Profile::default());
    let field = checked.fields.first().expect("the From field");
    assert_eq!(
        &raw[field.start..field.end],
        b"From: Dr. Jane <jane@x.example>"
    );
    let finding = field.result.findings.first().expect("obs-phrase");
    let at = field.value_start + finding.start;
    assert_eq!(&raw[at..field.value_start + finding.end], b".");
}

#[test]
fn message_findings_are_limited_like_a_values() {
    // 101 lines of ten NULs each: 1010 `nul` findings, one per byte.
    let mut raw = b"From: a@x.example\n".to_vec();
    raw.extend(b"X-Junk: \0\0\0\0\0\0\0\0\0\0\n".repeat(101));
    let checked = check_message(&raw, Profile::default());
    assert_eq!(checked.findings.len(), MAX_FINDINGS + 1);
    let marker = checked.findings.last().expect("findings");
    assert_eq!(marker.code, Code::TooManyFindings);
    // The 1001st NUL is the first not kept: the first of line 100 after the From line.
    assert_eq!(marker.start, 18 + 100 * 19 + 8);
    assert_eq!(checked.verdict, Verdict::Invalid);
}

#[test]
fn checked_fields_are_limited() {
    let raw = b"From: a@x.example\n".repeat(MAX_CHECKED_FIELDS + 5);
    let checked = check_message(&raw, Profile::default());
    assert_eq!(checked.fields.len(), MAX_CHECKED_FIELDS);
    let codes: Vec<Code> = checked.findings.iter().map(|f| f.code).collect();
    // Every From after the first is reported, up to the first one left out.
    assert_eq!(codes.len(), MAX_CHECKED_FIELDS);
    assert_eq!(codes.last(), Some(&Code::TooManyFields));
    let marker = checked.findings.last().expect("findings");
    assert_eq!(
        (marker.start, marker.end),
        (MAX_CHECKED_FIELDS * 18, MAX_CHECKED_FIELDS * 18 + 17)
    );
    assert_eq!(checked.verdict, Verdict::Invalid);
}

/// Padding a message with 1,001 harmless-looking header lines (`X-Pad : x`, each an
/// `obs-field-name-space`, legacy) before or after its fields never weakens its verdict
/// nor drops a deceptive or invalid message-level code: the cap on findings bounds the
/// list, not the decision.
#[test]
fn padding_never_hides_a_message_decision() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases/messages/messages.jsonl");
    let text = std::fs::read_to_string(&path).expect("the message case file");
    let padding = "X-Pad : x\r\n".repeat(MAX_FINDINGS + 1);
    let mut past_cap = 0;
    for case in common::jsonl(&text) {
        let name = &case["name"];
        let raw = case["message"].as_str().expect("a message");
        let plain = check_message(raw.as_bytes(), Profile::default());
        if common::decisive(&plain.codes).is_empty() {
            continue;
        }
        // After a leading mbox `From ` line, and at the end of the header block.
        let head = if raw.starts_with("From ") {
            raw.find('\n').map_or(raw.len(), |n| n + 1)
        } else {
            0
        };
        let block_end = ["\n\r\n", "\n\n"]
            .iter()
            .filter_map(|empty_line| raw.find(empty_line))
            .min()
            .map_or(raw.len(), |n| n + 1);
        let before = format!("{}{padding}{}", &raw[..head], &raw[head..]);
        let after = format!("{}{padding}{}", &raw[..block_end], &raw[block_end..]);
        // A block that starts with white space would fold onto the padding: that
        // changes what the block says, so it is padded after its fields only.
        let folds_onto_padding = raw[head..].starts_with([' ', '\t']);
        let padded = if folds_onto_padding {
            vec![after]
        } else {
            vec![before, after]
        };
        for padded in padded {
            let result = check_message(padded.as_bytes(), Profile::default());
            let plain = (plain.verdict, &plain.codes);
            let name = name.to_string();
            let reached = common::keeps_decision(&name, plain, (result.verdict, &result.codes));
            past_cap += usize::from(reached);
        }
    }
    assert!(
        past_cap >= 20,
        "only {past_cap} padded messages past the limit"
    );
}

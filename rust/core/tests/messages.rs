//! The message case file (`tests/cases/messages/messages.jsonl`), also run by
//! `tests/test_message.py` against the Python reference and the binding.
//!
//! A case holds the raw `message` (text, as UTF-8), the message `verdict`, the exact
//! sorted message-level `findings` (`[code, start, end]`, spans into the message) and the
//! checked `fields` in order (`[name as written, the field's single address or null]`).

mod common;

use std::path::Path;

use fromguard::limits::MAX_FINDINGS;
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
    let raw = b"From: a@x.example\n".repeat(MAX_FINDINGS + 5);
    let checked = check_message(&raw, Profile::default());
    assert_eq!(checked.findings.len(), MAX_FINDINGS + 1);
    let marker = checked.findings.last().expect("findings");
    assert_eq!(marker.code, Code::TooManyFindings);
    // The first From is the author; the 1001st extra one is the first not kept.
    assert_eq!(marker.start, (MAX_FINDINGS + 1) * 18);
    assert_eq!(checked.verdict, Verdict::Invalid);
    assert_eq!(checked.fields.len(), MAX_FINDINGS + 5);
}

//! The shared case file `tests/cases/encoded_words.jsonl` (also run by
//! `tests/test_encoded_word.py` against the Python reference), and a property test that
//! no input makes the encoded-word functions panic.

mod common;

use fromguard::encoded_word::{
    charset_labels, decode, find_encoded_words, match_encoded_word, too_long,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const CASES: &str = include_str!("../../../tests/cases/encoded_words.jsonl");

fn cases() -> Vec<Value> {
    common::jsonl(CASES)
}

#[test]
fn case_file() {
    let cases = cases();
    assert!(cases.len() >= 60);
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let data = case["input"].as_str().expect("input").as_bytes();
        let words: Vec<_> = find_encoded_words(data, 0, data.len()).collect();
        let spans: Vec<Value> = words.iter().map(|w| json!([w.start, w.end])).collect();
        let decoded: Vec<Value> = words
            .iter()
            .map(|w| match decode(data, w) {
                Ok(text) => Value::String(text.into_owned()),
                Err(error) => json!({ "error": error.as_str() }),
            })
            .collect();
        let expected_decoded: Vec<Value> = match case.get("error") {
            Some(error) => vec![json!({ "error": error }); words.len()],
            None => case
                .get("decoded")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        };
        let long = case
            .get("too_long")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut problems = Vec::new();
        if Value::Array(spans.clone()) != case["words"] {
            problems.push(format!("words {spans:?}, expected {}", case["words"]));
        }
        if decoded != expected_decoded {
            problems.push(format!(
                "decoded {decoded:?}, expected {expected_decoded:?}"
            ));
        }
        if words.iter().any(|w| too_long(w) != long) {
            problems.push(format!("too_long is not {long}"));
        }
        if let Some(charsets) = case.get("charsets") {
            let found: Vec<Value> = words
                .iter()
                .map(|w| Value::String(String::from_utf8_lossy(w.charset).into_owned()))
                .collect();
            if Value::Array(found.clone()) != *charsets {
                problems.push(format!("charsets {found:?}, expected {charsets}"));
            }
        }
        if let Some(encodings) = case.get("encodings") {
            let found: Vec<Value> = words.iter().map(|w| json!(w.encoding.as_str())).collect();
            if Value::Array(found.clone()) != *encodings {
                problems.push(format!("encodings {found:?}, expected {encodings}"));
            }
        }
        for w in &words {
            if match_encoded_word(data, w.start, data.len()) != Some(*w)
                || match_encoded_word(data, w.start, w.end) != Some(*w)
                || match_encoded_word(data, w.start, w.end - 1).is_some()
            {
                problems.push(format!("match_encoded_word disagrees at {}", w.start));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_label_has_a_real_text_case() {
    let names: Vec<String> = cases()
        .iter()
        .filter_map(|case| case["name"].as_str().map(str::to_owned))
        .collect();
    for label in charset_labels() {
        let name = format!("real text in {label}");
        assert!(names.contains(&name), "no case {name:?}");
    }
}

/// Inputs built from the pieces of encoded-words, so that many of them nearly match.
fn pieces() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"=?".to_vec()),
        Just(b"?=".to_vec()),
        Just(b"?".to_vec()),
        Just(b"=".to_vec()),
        Just(b"utf-8".to_vec()),
        Just(b"utf-7".to_vec()),
        Just(b"gb18030".to_vec()),
        Just(b"iso-2022-jp".to_vec()),
        Just(b"*en".to_vec()),
        Just(b"?q?".to_vec()),
        Just(b"?B?".to_vec()),
        Just(b"+".to_vec()),
        Just(b"-".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|parts| parts.concat())
}

fn check_no_panic(data: &[u8], start: usize, end: usize) {
    let mut last_end = 0;
    for w in find_encoded_words(data, start, end) {
        assert!(last_end <= w.start && w.start < w.text_start && w.text_start < w.text_end);
        assert!(w.text_end < w.end && w.end <= data.len().min(end));
        last_end = w.end;
        let _ = decode(data, &w);
        let _ = too_long(&w);
    }
    for pos in 0..data.len() + 2 {
        if let Some(w) = match_encoded_word(data, pos, end) {
            assert_eq!(w.start, pos);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_panic_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200),
                                   start in 0usize..220, end in 0usize..220) {
        check_no_panic(&data, start, end);
        check_no_panic(&data, 0, data.len());
    }

    #[test]
    fn no_panic_on_near_encoded_words(data in pieces(), start in 0usize..8) {
        check_no_panic(&data, start, data.len());
        check_no_panic(&data, 0, usize::MAX);
    }
}

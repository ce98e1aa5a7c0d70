//! The organisational domains of `fromguard::psl` on the shared case file
//! `tests/cases/organisational_domains.jsonl` (also run by `tests/test_psl.py` against the
//! Python reference): the test vectors of publicsuffix.org (a public suffix is its own
//! organisational domain, punycode is decoded) and fromguard's own. The generated
//! `tests/cases/psl_parity.jsonl` is checked by `tests/lookalike.rs` with the other
//! generated files.

mod common;

use fromguard::psl::organisational_domain;

const CASES: &str = include_str!("../../../tests/cases/organisational_domains.jsonl");

#[test]
fn case_file() {
    let cases = common::jsonl(CASES);
    assert!(cases.len() >= 70);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let domain = case["domain"].as_str().expect("domain");
            let expected = case["organisational_domain"].as_str().expect("expected");
            let got = organisational_domain(domain);
            (got != expected).then(|| format!("{}: {got:?}, expected {expected:?}", case["name"]))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

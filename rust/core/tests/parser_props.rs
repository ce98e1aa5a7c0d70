//! Properties of the parser on any input: no panic, spans inside the input, findings
//! sorted and bounded, borrowed text taken from the input, the verdict at least as bad as
//! every finding. (Equality with the Python reference is checked by the pytest parity
//! test through the binding.)

use std::borrow::Cow;

use fromguard::limits::{MAX_FINDINGS, MAX_MAILBOXES};
use fromguard::{Parsed, Profile, Severity, Verdict, parse};
use proptest::prelude::*;

/// Pieces of From values: atoms, words, specials, quoted strings, comments, literals,
/// encoded-words, folds, stray line breaks, controls, raw UTF-8 and Latin-1 bytes.
const PIECES: &[&[u8]] = &[
    b"a",
    b"john",
    b"J\xc3\xb6rg",
    b"\xe9t\xe9",
    b"\xff",
    b"x.y",
    b".",
    b"@",
    b"<",
    b">",
    b",",
    b";",
    b":",
    b"\"",
    b"\"q s\"",
    b"\"a\\\"b\"",
    b"(",
    b")",
    b"(c)",
    b"((n))",
    b"(a\\)b)",
    b"[",
    b"]",
    b"[192.0.2.1]",
    b"[a\\]b]",
    b"\\",
    b"\\a",
    b" ",
    b"\t",
    b"\r\n ",
    b"\n ",
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n \r\n ",
    b"\x00",
    b"\x01",
    b"\x7f",
    b"=?utf-8?q?J=C3=B6rg?=",
    b"=?UTF-8?B?SsO2cmc=?=",
    b"=?iso-8859-1?q?caf=E9?=",
    b"=?utf-8?q?ceo=40bank=2Eexample?=",
    b"=?x-unknown?q?a?=",
    b"=?utf-8?b?!!!?=",
    b"=?utf-8*en?Q?Keith_Moore?=",
    b"=?utf-7?q?+AOQ-?=",
    b"=?",
    b"?=",
    b"example.com",
    b"\xe2\x80\xae",
];

fn soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(PIECES), 0..30).prop_map(|pieces| pieces.concat())
}

fn is_inside(input: &[u8], text: &str) -> bool {
    let range = input.as_ptr_range();
    let start = text.as_ptr();
    // An empty text may point anywhere.
    text.is_empty() || (range.start <= start && start < range.end)
}

fn check(input: &[u8], parsed: &Parsed<'_>) -> Result<(), TestCaseError> {
    let len = input.len();
    prop_assert!(parsed.findings.len() <= MAX_FINDINGS + 1);
    prop_assert!(parsed.mailboxes.len() <= MAX_MAILBOXES);
    let mut previous = None;
    for finding in &parsed.findings {
        prop_assert!(finding.start <= finding.end && finding.end <= len);
        let key = (finding.start, finding.end, finding.code.index());
        prop_assert!(previous.is_none_or(|p| p <= key), "findings not sorted");
        previous = Some(key);
        prop_assert!(parsed.verdict >= Verdict::from_severity(finding.code.severity()));
    }
    if parsed.findings.is_empty() {
        prop_assert_eq!(parsed.verdict, Verdict::Valid);
    }
    for finding in &parsed.findings {
        prop_assert!(parsed.codes.contains(finding.code));
    }
    let worst = parsed.codes.iter().map(|code| code.severity()).max();
    prop_assert_eq!(
        parsed.verdict,
        worst.map_or(Verdict::Valid, Verdict::from_severity)
    );
    for mailbox in &parsed.mailboxes {
        for (start, end) in [mailbox.span, mailbox.local_part_span, mailbox.domain_span]
            .into_iter()
            .chain(mailbox.display_name_span)
        {
            prop_assert!(start <= end && end <= len);
        }
        let texts = [
            mailbox.display_name.as_ref(),
            Some(&mailbox.local_part),
            Some(&mailbox.domain),
            Some(&mailbox.addr_spec),
            mailbox.group.as_ref(),
        ];
        for text in texts
            .into_iter()
            .flatten()
            .chain(&mailbox.comments)
            .chain(&mailbox.route)
        {
            if let Cow::Borrowed(text) = text {
                prop_assert!(
                    is_inside(input, text),
                    "borrowed text {:?} not from the input",
                    text
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes(input in prop::collection::vec(any::<u8>(), 0..200), utf8: bool, groups: bool) {
        let parsed = parse(&input, Profile { utf8, groups });
        check(&input, &parsed)?;
    }

    #[test]
    fn grammar_pieces(input in soup(), utf8: bool, groups: bool) {
        let parsed = parse(&input, Profile { utf8, groups });
        check(&input, &parsed)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Comments before a value push its findings past the limit without hiding any
    /// deceptive or invalid code from the code set, nor weakening the verdict.
    #[test]
    fn padding_hides_no_decisive_code(input in soup(), utf8: bool, groups: bool) {
        let profile = Profile { utf8, groups };
        let plain = parse(&input, profile);
        let padded_input = [b"(x) ".repeat(MAX_FINDINGS + 1), input.clone()].concat();
        let padded = parse(&padded_input, profile);
        prop_assert!(padded.verdict >= plain.verdict);
        for code in plain.codes.iter().filter(|code| code.severity() >= Severity::Deceptive) {
            prop_assert!(padded.codes.contains(code), "{} lost", code);
        }
    }
}

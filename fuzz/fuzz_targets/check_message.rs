//! `check_message` on a raw message (default profile): no panic; message-level findings
//! within the limit and inside the message; every field inside it, and its value's parse
//! checked like `parse`'s; the message verdict at least each field's, but for the field
//! codes the header block explains (a message finding says which).
#![no_main]

use fromguard::limits::MAX_FINDINGS;
use fromguard::{Code, CodeSet, Profile, Verdict, check_message};
use fromguard_fuzz::check_parsed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let check = check_message(data, Profile::default());
    assert!(
        check.findings.len() <= MAX_FINDINGS + 1,
        "message findings past the limit"
    );
    for finding in &check.findings {
        assert!(
            finding.start <= finding.end && finding.end <= data.len(),
            "{finding:?}"
        );
        assert!(
            check.codes.contains(finding.code),
            "{finding:?} not in the codes"
        );
    }
    for code in check.codes.iter() {
        assert!(check.verdict >= Verdict::from_severity(code.severity()));
    }
    // A list's attribution explains an address in the display name, a Sender among
    // several authors explains them: the author's field keeps those findings, the
    // message verdict leaves them out.
    let explained: CodeSet = [
        (Code::ListAttribution, Code::AddressInDisplayName),
        (Code::SenderAmongAuthors, Code::SeveralAuthors),
    ]
    .into_iter()
    .filter(|(explanation, _)| check.codes.contains(*explanation))
    .map(|(_, code)| code)
    .collect();
    for field in &check.fields {
        assert!(field.start <= field.value_start && field.value_start <= field.end);
        assert!(field.end <= data.len(), "field past the message");
        check_parsed(&field.result, field.end - field.value_start);
        for code in field.result.codes.iter() {
            assert!(
                explained.contains(code)
                    || check.verdict >= Verdict::from_severity(code.severity()),
                "message verdict below a field's {code:?}"
            );
        }
    }
});

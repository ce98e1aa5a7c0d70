//! `check_message` on a raw message (default profile): no panic; message-level findings
//! within the limit and inside the message; every field inside it, and its value's parse
//! checked like `parse`'s.
#![no_main]

use fromguard::limits::MAX_FINDINGS;
use fromguard::{Profile, Verdict, check_message};
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
    for field in &check.fields {
        assert!(field.start <= field.value_start && field.value_start <= field.end);
        assert!(field.end <= data.len(), "field past the message");
        check_parsed(&field.result, field.end - field.value_start);
        assert!(
            check.verdict >= field.result.verdict,
            "message verdict below a field's"
        );
    }
});

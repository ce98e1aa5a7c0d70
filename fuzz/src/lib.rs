//! What every fuzz target asserts of a parse: the promises the binding, `explain()` and
//! the reference rely on, beyond "no panic".

use fromguard::limits::{MAX_FINDINGS, MAX_MAILBOXES, MAX_SHADOWS};
use fromguard::{Finding, Parsed, Span, Verdict};

/// Panics unless `parsed`, the parse of a value of `len` bytes, has every span inside the
/// value, its findings sorted, no more findings, mailboxes or shadows than the limits let
/// through, and a verdict at least as bad as its worst finding.
pub fn check_parsed(parsed: &Parsed<'_>, len: usize) {
    let inside = |(start, end): Span| start <= end && end <= len;
    assert!(
        parsed.findings.len() <= MAX_FINDINGS + 1,
        "findings past the limit"
    );
    assert!(
        parsed.mailboxes.len() <= MAX_MAILBOXES,
        "mailboxes past the limit"
    );
    assert!(
        parsed.shadows.len() <= MAX_SHADOWS,
        "shadows past the limit"
    );
    for finding in &parsed.findings {
        assert!(
            inside((finding.start, finding.end)),
            "{finding:?} outside {len} bytes"
        );
    }
    for finding in &parsed.findings {
        assert!(
            parsed.codes.contains(finding.code),
            "{finding:?} not in the codes"
        );
    }
    let worst = parsed.codes.iter().map(|code| code.severity()).max();
    assert_eq!(
        parsed.verdict,
        worst.map_or(Verdict::Valid, Verdict::from_severity),
        "the verdict is not the worst code's"
    );
    let order = |f: &Finding| (f.start, f.end, f.code.index());
    assert!(
        parsed
            .findings
            .windows(2)
            .all(|w| order(&w[0]) <= order(&w[1])),
        "findings unsorted: {:?}",
        parsed.findings
    );
    for mailbox in &parsed.mailboxes {
        let spans = [mailbox.span, mailbox.local_part_span, mailbox.domain_span];
        assert!(
            spans.into_iter().all(inside),
            "{mailbox:?} outside {len} bytes"
        );
        assert!(mailbox.display_name_span.is_none_or(inside), "{mailbox:?}");
    }
    for shadow in &parsed.shadows {
        assert!(
            inside((shadow.start, shadow.end)),
            "{shadow:?} outside {len} bytes"
        );
    }
    if let Some(worst) = parsed.findings.iter().map(|f| f.code.severity()).max() {
        assert!(
            parsed.verdict >= Verdict::from_severity(worst),
            "verdict below a finding"
        );
    }
}

//! The MIME rewrite (`fromguard::mime::rewrite`, the UTF-8/ASCII/Latin-1 encoder) on a raw
//! message, the first byte choosing the warning, the header field and `body_only`: no
//! panic; the edits sorted, apart and inside the message; the output the input with the
//! edits made (every other byte the input's, its length the input's plus what was
//! inserted less what was replaced); a replaced stretch either a base64 line written
//! anew or a Content-* field moved into a wrapped message; and a second rewrite of the
//! output as safe.
#![no_main]

use fromguard::mime::{self, BuiltinEncoder, MAX_WARNED_PARTS, Rewrite, Warning};
use libfuzzer_sys::fuzz_target;

const BOUNDARY: &[u8] = b"fromguard-fuzz";
const WARNINGS: [&str; 3] = [
    "Caution: the sender's address could not be verified.",
    "Achtung: Absender nicht \u{fc}berpr\u{fc}ft.\nZweite <Zeile> & so",
    "\u{5dee}\u{51fa}\u{4eba}",
];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, raw)) = data.split_first() else {
        return;
    };
    let body_only = flags & 1 != 0;
    let warning = Warning {
        text: WARNINGS[usize::from(flags >> 1) % WARNINGS.len()],
        ascii_text: "Caution: sender not verified.",
    };
    let headers: &[(&str, &str)] = if flags & 0x80 != 0 {
        &[("X-Fromguard", "warned")]
    } else {
        &[]
    };
    let first = rewritten(raw, headers, warning, body_only);
    let message = first.message(raw);
    rewritten(&message, headers, warning, body_only);
});

fn rewritten(
    raw: &[u8],
    headers: &[(&str, &str)],
    warning: Warning<'_>,
    body_only: bool,
) -> Rewrite {
    let result = mime::rewrite(
        raw,
        headers,
        Some(warning),
        body_only,
        &mut || Ok(BOUNDARY.to_vec()),
        &mut BuiltinEncoder,
    );
    let rewrite = match result {
        Ok(rewrite) => rewrite,
        Err(error) => panic!("the rewrite failed: {error:?}"),
    };
    assert!(rewrite.warned <= MAX_WARNED_PARTS);
    assert!(rewrite.warned == 0 || !rewrite.edits.is_empty());
    let message = rewrite.message(raw);
    let (mut position, mut written) = (0, 0);
    let (mut inserted, mut replaced) = (0, 0);
    for edit in &rewrite.edits {
        assert!(
            position <= edit.start && edit.start <= edit.end && edit.end <= raw.len(),
            "{edit:?}"
        );
        let kept = &raw[position..edit.start];
        assert_eq!(&message[written..written + kept.len()], kept);
        written += kept.len();
        assert_eq!(
            &message[written..written + edit.data.len()],
            edit.data.as_slice()
        );
        written += edit.data.len();
        let old = &raw[edit.start..edit.end];
        if !old.is_empty() {
            let base64_line = !edit.data.is_empty()
                && old
                    .iter()
                    .chain(&edit.data)
                    .all(|&byte| byte.is_ascii_alphanumeric() || b"+/=\r\n".contains(&byte));
            assert!(
                base64_line
                    || (edit.data.is_empty() && old.to_ascii_lowercase().starts_with(b"content-")),
                "{edit:?}"
            );
        }
        inserted += edit.data.len();
        replaced += old.len();
        position = edit.end;
    }
    assert_eq!(&message[written..], &raw[position..]);
    assert_eq!(message.len(), raw.len() + inserted - replaced);
    rewrite
}

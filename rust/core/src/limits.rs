//! Explicit limits for untrusted input (the same numbers as
//! `python/fromguard/reference/limits.py`).
//!
//! Each limit, when hit, is reported as an `invalid` finding; only the input size stops
//! the parser early. Together they bound the time (linear in the input) and the memory
//! one value can cost, whatever an attacker sends.

/// Bytes parsed at most: real From fields are under 1 KiB and Postfix's whole header
/// limit is 100 KiB, so anything near this is an attack. The rest is reported
/// (`input-too-long`), not parsed.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;

/// Comment nesting reported beyond this depth (`comment-too-deep`). Nesting is counted,
/// not recursed, so deeper input costs no stack; the limit flags it as hostile.
pub const MAX_COMMENT_DEPTH: usize = 64;

/// Mailboxes returned at most (`too-many-mailboxes`); the rest are checked but not
/// returned, so a result's size stays bounded.
pub const MAX_MAILBOXES: usize = 1000;

/// Findings returned at most (`too-many-findings`); the rest still count in the verdict
/// and syntax.
pub const MAX_FINDINGS: usize = 1000;

/// Shadow addresses returned at most (`too-many-shadows`, at the first one not returned):
/// a value of encoded-words or of a display name full of addresses can hold one every
/// few bytes.
pub const MAX_SHADOWS: usize = 1000;

/// Checked header fields (From, Sender, Resent-From, Reply-To) parsed and returned by
/// `check_message` at most (`too-many-fields`, at the first one left out): a header block
/// of nothing but `From:` lines would otherwise cost a parse result every 20 bytes.
pub const MAX_CHECKED_FIELDS: usize = 100;

/// RFC 5322 §2.1.1: "Each line of characters MUST be no more than 998 characters ...
/// excluding the CRLF" (`line-too-long`).
pub const MAX_LINE_OCTETS: usize = 998;

//! fromguard: the e-mail `From:` header parsed exactly as RFC 5322 defines it.
//!
//! [`parse`] reads a From field body (the bytes after `From:`, folded or not) and
//! returns a [`Parsed`]: the [`Verdict`] a gateway acts on, the [`Syntax`] (the grammar's
//! truth under the [`Profile`]), the mailboxes with their parts and byte spans, and every
//! departure from the grammar as a [`Finding`] whose [`Code`] comes from the catalogue
//! (`rust/core/data/findings.tsv`), and every [`Shadow`] address: an address-like
//! string (in a display name, a comment, a decoded encoded-word, ...) that a lenient mail
//! program could show instead of the real one.
//!
//! [`check_message`] reads a whole message's header block: every From, Sender,
//! Resent-From and Reply-To field parsed, plus what only the whole block shows (no From,
//! several From fields however spelled, several authors without Sender, ...).
//!
//! The parser never panics, its time is linear in the input, and what it may cost is
//! bounded by the constants of [`limits`]. This crate knows nothing of Python: the
//! binding is the `fromguard-python` crate.

mod code;
mod deception;
pub mod encoded_word;
mod fast;
mod lexer;
pub mod limits;
pub mod lookalike;
mod message;
mod model;
mod parser;
pub mod rules;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod sse2;

pub use code::Code;
pub use message::{HeaderField, MessageCheck, RawField, check_message, header_fields};
pub use model::{
    Assessment, Finding, Mailbox, Parsed, Profile, Severity, Shadow, ShadowSource, Span, Syntax,
    Verdict,
};
pub use parser::{assess, parse, parse_full};
pub use rules::{RuleError, RuleSet, Target};

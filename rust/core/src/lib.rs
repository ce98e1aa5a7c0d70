//! fromguard: the e-mail `From:` header parsed exactly as RFC 5322 defines it.
//!
//! [`parse`] reads a From field body (the bytes after `From:`, folded or not) and
//! returns a [`Parsed`]: the [`Verdict`] a gateway acts on, the [`Syntax`] (the grammar's
//! truth under the [`Profile`]), the mailboxes with their parts and byte spans, and every
//! departure from the grammar as a [`Finding`] whose [`Code`] comes from the catalogue
//! (`rust/core/data/findings.tsv`), the set of every code reported, and every
//! [`Shadow`] address: an address-like string (in a display name, a comment, a decoded
//! encoded-word, ...) that a lenient mail program could show instead of the real one.
//!
//! Inside, data flows one way: the entry points (`entry.rs`) choose the fast path
//! (`fast/`) or the grammar (`parser.rs`, after the lexer), which produces a read-only
//! tree (`tree.rs`) and reports into a findings sink (`findings.rs`); the analysis
//! (`deception.rs`, with `lookalike.rs` and `psl.rs`) reads the tree and reports into
//! the sink. The header block of a message is split once (`message.rs`, which compares
//! organisational domains with `psl.rs`); rules match on its check (`rules.rs`).
//! `python .ci/module_graph.py` prints the modules' graph (it has no cycle).
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
mod entry;
mod fast;
mod findings;
mod lexer;
pub mod limits;
pub mod lookalike;
mod message;
pub mod mime;
mod model;
mod parser;
pub mod psl;
pub mod rules;
mod tree;

pub use code::{Code, CodeSet, Severity, Syntax, Verdict};
pub use entry::{assess, parse, parse_fast, parse_full};
pub use message::{HeaderField, MessageCheck, RawField, check_message, header_fields};
pub use model::{Assessment, Finding, Mailbox, Parsed, Profile, Shadow, ShadowSource, Span};
pub use rules::{RuleError, RuleSet, Target};

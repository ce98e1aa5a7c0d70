//! The grammar's output: what `parser.rs` read of a value, read-only for the analysis
//! passes after it (`deception.rs`).
//!
//! Besides the parts a result shows (the mailboxes), the tree keeps what the analysis
//! needs to look at again: the tokens and the decoded text of each comment, every display
//! name, each mailbox's list element, the decoded encoded-words, and the spans of the
//! text the grammar rejected, of every encoded-word and of every obs-route, and where
//! each backslash outside quotes stands. The grammar
//! records each of these where it reports the finding that goes with it, so that the
//! analysis never reads the findings list (which is capped, see `findings.rs`).

use std::borrow::Cow;

use crate::code::Code;
use crate::encoded_word::EncodedWord;
use crate::lexer::Token;
use crate::model::{Mailbox, Span};

/// An encoded-word the grammar saw, as it matched it (the analysis does not match it
/// again), and the code it was reported with: `encoded-word` when decoded; a place RFC
/// 2047 forbids (in a quoted string, in an address, glued to other text) or a decoding
/// error when not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeenWord<'a> {
    pub word: EncodedWord<'a>,
    pub code: Code,
}

/// Text with the span of the input it was read from.
pub(crate) type SpannedText<'a> = (usize, usize, Cow<'a, str>);

pub(crate) struct Tree<'a> {
    /// The input, at most MAX_INPUT_BYTES long (the rest is reported, not parsed).
    pub data: &'a [u8],
    pub tokens: Vec<Token>,
    /// The decoded text of each comment token (`texts[token.text]`).
    pub texts: Vec<Cow<'a, str>>,
    pub mailboxes: Vec<Mailbox<'a>>,
    /// Each kept mailbox's list element, from after the comma before it to the comma
    /// after it: what a comment or a display name there belongs to.
    pub elements: Vec<Span>,
    /// Every display name read (group names too).
    pub phrases: Vec<SpannedText<'a>>,
    /// The text of each encoded-word the grammar decoded, by span, so that the analysis
    /// reads it without decoding again.
    pub decoded: Vec<SpannedText<'a>>,
    /// Every encoded-word reported, in the order reported.
    pub words: Vec<SeenWord<'a>>,
    /// The text the grammar skipped or a lenient parser reads otherwise: after an
    /// address, an element without an address (`no-address`), an element without a
    /// mailbox (from its "<" on; in place of the spans rejected inside it), an addr-spec
    /// whose local part is words without a period between (`space-in-local-part`), an
    /// addr-spec the grammar could not recover (no local part or domain, a broken domain),
    /// the text skipped inside angle brackets after the addr-spec.
    pub rejected: Vec<Span>,
    /// Every obs-route, from its first "@" to its ":".
    pub routes: Vec<Span>,
    /// Where each backslash outside quotes, comments and literals stands
    /// (`backslash-outside-quotes`), in input order.
    pub backslashes: Vec<usize>,
}

impl<'a> Tree<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Tree {
            data,
            tokens: Vec::new(),
            texts: Vec::new(),
            mailboxes: Vec::new(),
            elements: Vec::new(),
            phrases: Vec::new(),
            decoded: Vec::new(),
            words: Vec::new(),
            rejected: Vec::new(),
            routes: Vec::new(),
            backslashes: Vec::new(),
        }
    }
}

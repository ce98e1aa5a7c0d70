//! Tokens of a From field body (RFC 5322 §3.2), for the parser.
//!
//! A port of `python/fromguard/reference/lexer.py`, function for function.
//!
//! The lexer cuts the value into units that never need to be looked into again by the
//! parser: white space, comments (nested, counted, not recursed), quoted strings, domain
//! literals, atoms and single special characters. Every departure from the grammar that
//! can be judged without knowing the context (inside a comment, a quoted string or a
//! literal; a control character or a backslash in an atom; NUL; every line break) is
//! reported here; what depends on the context (raw 8-bit text in a display name or in an
//! address) is left to the parser.
//!
//! The whole value is lexed before parsing: the token list is at most as long as the
//! input, and the parser only moves forward over it, so parsing stays linear.

use std::borrow::Cow;

use crate::code::Code;
use crate::encoded_word::{self, EncodedWord};
use crate::limits::MAX_COMMENT_DEPTH;

/// Token kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A run of SP, HTAB, CR and LF (line breaks are judged by the line scan).
    Ws,
    /// `"(" ... ")"`, nested.
    Comment,
    /// `DQUOTE ... DQUOTE`.
    QStr,
    /// `"[" ... "]"`.
    Literal,
    /// A run of atext, raw 8-bit bytes, control characters and stray quoted-pairs.
    Atom,
    /// One of `) < > ] : ; @ , .`
    Special,
}

// Byte classes: one table, indexed by byte.
pub(crate) const C_ATEXT: u8 = 0;
pub(crate) const C_WSP: u8 = 1;
pub(crate) const C_SPECIAL: u8 = 2;
/// `%d1-8 / %d11 / %d12 / %d14-31 / %d127` (obs-NO-WS-CTL).
pub(crate) const C_CTL: u8 = 3;
pub(crate) const C_NUL: u8 = 4;
/// `%x80-FF`: UTF-8 (RFC 6532) or another charset's raw bytes.
pub(crate) const C_HIGH: u8 = 5;

const ATEXT_PUNCTUATION: &[u8] = b"!#$%&'*+-/=?^_`{|}~";

pub(crate) const fn byte_classes() -> [u8; 256] {
    let mut table = [C_CTL; 256];
    table[0] = C_NUL;
    let mut b = 0x80;
    while b < 0x100 {
        table[b] = C_HIGH;
        b += 1;
    }
    table[b' ' as usize] = C_WSP;
    table[b'\t' as usize] = C_WSP;
    table[b'\r' as usize] = C_WSP;
    table[b'\n' as usize] = C_WSP;
    let specials = b"()<>[]:;@\\,.\"";
    let mut k = 0;
    while k < specials.len() {
        table[specials[k] as usize] = C_SPECIAL;
        k += 1;
    }
    let mut c = b'a';
    while c <= b'z' {
        table[c as usize] = C_ATEXT;
        table[(c - b'a' + b'A') as usize] = C_ATEXT;
        c += 1;
    }
    let mut d = b'0';
    while d <= b'9' {
        table[d as usize] = C_ATEXT;
        d += 1;
    }
    let mut k = 0;
    while k < ATEXT_PUNCTUATION.len() {
        table[ATEXT_PUNCTUATION[k] as usize] = C_ATEXT;
        k += 1;
    }
    // Every printable ASCII character has a class other than C_CTL.
    let mut b = 33;
    while b < 127 {
        assert!(table[b] != C_CTL);
        b += 1;
    }
    table
}

/// The class of every byte (`C_*`).
pub(crate) static BYTE_CLASS: [u8; 256] = byte_classes();

/// The class of `b`.
#[inline]
pub(crate) fn class(b: u8) -> u8 {
    BYTE_CLASS[usize::from(b)]
}

pub(crate) const BACKSLASH: u8 = b'\\';
pub(crate) const DQUOTE: u8 = b'"';

/// One lexical unit: `data[start..end]`. `closed` is false for an unterminated comment,
/// quoted string or literal, which then runs to the end of the input. `char` is the byte
/// of a [`Kind::Special`]. `escaped` marks an atom holding a quoted-pair. `text` is the
/// index of a comment's decoded text in [`Lexed::texts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    pub closed: bool,
    pub char: u8,
    pub escaped: bool,
    pub text: usize,
}

impl Token {
    pub(crate) fn new(kind: Kind, start: usize, end: usize) -> Token {
        Token {
            kind,
            start,
            end,
            closed: true,
            char: 0,
            escaped: false,
            text: 0,
        }
    }

    #[inline]
    pub(crate) fn is_special(&self, char: u8) -> bool {
        self.kind == Kind::Special && self.char == char
    }
}

/// White space or a comment.
#[inline]
pub(crate) fn is_cfws(token: &Token) -> bool {
    token.kind == Kind::Ws || token.kind == Kind::Comment
}

/// What the lexer needs from the parser: the finding sink, the check of raw 8-bit text
/// and the decoding of one encoded-word.
pub(crate) trait Report<'a> {
    /// Record a finding.
    fn report(&mut self, code: Code, start: usize, end: usize);
    /// Record a finding on an encoded-word (kept for the analysis after the grammar).
    fn report_word(&mut self, code: Code, word: &EncodedWord<'a>);
    /// The parser's check of raw 8-bit text in `data[start..end]`; the lexer calls it for
    /// comments (display text) and domain literals (address text).
    fn scan_8bit(&mut self, start: usize, end: usize, in_address: bool);
    /// Decodes `data[start..end]` if it is exactly one encoded-word (reporting on it),
    /// else returns None.
    fn decode_exact_word(&mut self, start: usize, end: usize) -> Option<Cow<'a, str>>;
    /// Whether the caller needs nothing more: the lexer stops at the next token.
    fn settled(&self) -> bool;
}

/// The lexer's output: the tokens, and the decoded text of each comment
/// (`texts[token.text]`).
pub(crate) struct Lexed<'a> {
    pub tokens: Vec<Token>,
    pub texts: Vec<Cow<'a, str>>,
}

/// Cuts `data[..end]` into tokens, reporting context-free findings through `sink`.
pub(crate) struct Lexer<'a, 'r, R: Report<'a>> {
    data: &'a [u8],
    end: usize,
    sink: &'r mut R,
    texts: Vec<Cow<'a, str>>,
}

impl<'a, 'r, R: Report<'a>> Lexer<'a, 'r, R> {
    pub(crate) fn new(data: &'a [u8], end: usize, sink: &'r mut R) -> Self {
        let end = end.min(data.len());
        Lexer {
            data: data.get(..end).unwrap_or(data),
            end,
            sink,
            texts: Vec::new(),
        }
    }

    #[inline]
    fn byte(&self, i: usize) -> Option<u8> {
        self.data.get(i).copied()
    }

    /// Every token of the value, in order.
    pub(crate) fn tokens(mut self) -> Lexed<'a> {
        let end = self.end;
        let mut out: Vec<Token> = Vec::with_capacity(end.min(32));
        let mut i = 0;
        while let Some(b) = self.byte(i) {
            if self.sink.settled() {
                break;
            }
            let cls = class(b);
            let token = if cls == C_WSP {
                let mut j = i;
                while let Some(c) = self.byte(j) {
                    if class(c) != C_WSP {
                        break;
                    }
                    j = if c == b'\r' || c == b'\n' {
                        self.line_break(j)
                    } else {
                        j + 1
                    };
                }
                Token::new(Kind::Ws, i, j)
            } else if b == b'(' {
                self.comment(i)
            } else if b == DQUOTE {
                self.quoted_string(i)
            } else if b == b'[' {
                self.literal(i)
            } else if cls == C_SPECIAL && b != BACKSLASH {
                let mut token = Token::new(Kind::Special, i, i + 1);
                token.char = b;
                token
            } else {
                self.atom(i)
            };
            // Every token is at least one byte long, so the loop ends.
            i = token.end.max(i + 1).min(end);
            out.push(token);
        }
        Lexed {
            tokens: out,
            texts: self.texts,
        }
    }

    /// atom = [CFWS] 1*atext [CFWS]; atext also takes UTF8-non-ascii (RFC 6532 §3.2).
    ///
    /// The run also swallows what no production allows outside quotes (control
    /// characters, a backslash and the byte it escapes) so that one bad byte does not
    /// split a word: each is reported, and the parser sees one atom. An encoded-word
    /// whose text holds periods (RFC 2047 §5(3) forbids them in a phrase, but encoders
    /// write them and readers decode them) stays one atom too; one holding other
    /// specials does not, since "<" or "@" there are structure to every RFC 5322 parser.
    fn atom(&mut self, start: usize) -> Token {
        let end = self.end;
        let mut token = Token::new(Kind::Atom, start, start);
        let mut i = start;
        if let Some(word) = encoded_word::match_encoded_word(self.data, start, end) {
            let dotted_atom = self
                .data
                .get(start..word.end)
                .is_some_and(|bytes| bytes.iter().all(|&b| class(b) == C_ATEXT || b == b'.'));
            if dotted_atom {
                i = word.end;
            }
        }
        while let Some(b) = self.byte(i) {
            let cls = class(b);
            if cls == C_ATEXT || cls == C_HIGH {
                i += 1;
            } else if cls == C_CTL || cls == C_NUL {
                self.control(i, Code::ControlCharacter);
                i += 1;
            } else if b == BACKSLASH {
                // Outside quotes a backslash escapes nothing, and never a line break.
                let pair_end = match self.byte(i + 1) {
                    None | Some(b'\r') | Some(b'\n') => i + 1,
                    Some(_) => i + 2,
                };
                let pair_end = pair_end.min(end);
                self.sink.report(Code::BackslashOutsideQuotes, i, pair_end);
                self.escaped_hazard(i);
                token.escaped = true;
                i = pair_end;
            } else {
                break;
            }
        }
        token.end = i;
        token
    }

    /// A control character where text belongs: NUL is never allowed (C programs end the
    /// string there); the others are reported as `code`.
    fn control(&mut self, i: usize, code: Code) {
        let code = if self.byte(i) == Some(0) {
            Code::Nul
        } else {
            code
        };
        self.sink.report(code, i, i + 1);
    }

    /// Judge the unescaped CR or LF at `i`; returns the index after the line break.
    ///
    /// A line break followed by SP or HTAB is a fold (FWS, RFC 5322 §3.2.2); LF alone is
    /// accepted as the line ending of Unix storage and reported as info. A break followed
    /// by anything else would end the field (header injection); one at the very end is
    /// the field's terminator, which is not part of the body. A folded line of white space
    /// only is obs-FWS (§4.2). CR without LF is never a line ending.
    fn line_break(&mut self, i: usize) -> usize {
        let end = self.end;
        let first = self.byte(i);
        let break_end = if first == Some(b'\r') {
            if self.byte(i + 1) != Some(b'\n') {
                self.sink.report(Code::BareCr, i, i + 1);
                return i + 1;
            }
            i + 2
        } else {
            i + 1
        };
        if break_end >= end {
            self.sink.report(Code::TrailingLineBreak, i, break_end);
            return break_end;
        }
        let following = self.byte(break_end);
        if following == Some(b' ') || following == Some(b'\t') {
            if first == Some(b'\n') {
                self.sink.report(Code::LfLineEnding, i, break_end);
            }
            let mut k = break_end;
            while matches!(self.byte(k), Some(b' ') | Some(b'\t')) {
                k += 1;
            }
            if matches!(self.byte(k), Some(b'\r') | Some(b'\n')) {
                self.sink.report(Code::ObsFws, break_end, k);
            }
        } else {
            self.sink.report(Code::UnfoldedLineBreak, i, break_end);
        }
        break_end
    }

    /// quoted-pair = ("\" (VCHAR / WSP)) / obs-qp;
    /// obs-qp = "\" (%d0 / obs-NO-WS-CTL / LF / CR)
    ///
    /// `i` is at the backslash; returns the index after the pair.
    fn quoted_pair(&mut self, i: usize) -> usize {
        let Some(escaped) = self.byte(i + 1) else {
            // A lone backslash at the end: the enclosing token is unterminated.
            return self.end;
        };
        if (escaped < 0x20 && escaped != 0x09) || escaped == 0x7F {
            self.sink.report(Code::ObsQp, i, i + 2);
        }
        self.escaped_hazard(i);
        i + 2
    }

    /// A backslash at `i` escaping NUL, CR or LF: legal as obs-qp, yet the NUL still ends
    /// C strings and the line break still ends header lines for mail software.
    fn escaped_hazard(&mut self, i: usize) {
        match self.byte(i + 1) {
            Some(0) => self.sink.report(Code::EscapedNul, i, i + 2),
            Some(b'\r' | b'\n') => self.sink.report(Code::EscapedLineBreak, i, i + 2),
            _ => {}
        }
    }

    /// quoted-string = [CFWS] DQUOTE *([FWS] qcontent) [FWS] DQUOTE [CFWS]
    /// qcontent = qtext / quoted-pair;  qtext = %d33 / %d35-91 / %d93-126 / obs-qtext
    fn quoted_string(&mut self, start: usize) -> Token {
        let mut token = Token::new(Kind::QStr, start, self.end);
        let mut i = start + 1;
        token.closed = false;
        while let Some(b) = self.byte(i) {
            if b == DQUOTE {
                token.closed = true;
                i += 1;
                break;
            }
            if b == BACKSLASH {
                i = self.quoted_pair(i);
                continue;
            }
            if b == b'\r' || b == b'\n' {
                i = self.line_break(i);
                continue;
            }
            let cls = class(b);
            if cls == C_CTL || cls == C_NUL {
                self.control(i, Code::ObsQtext);
            }
            i += 1;
        }
        let i = i.min(self.end);
        token.end = i;
        if !token.closed {
            self.sink.report(Code::UnterminatedQuotedString, start, i);
        }
        let content_end = if token.closed { i - 1 } else { i };
        for word in encoded_word::find_encoded_words(self.data, start + 1, content_end) {
            self.sink
                .report_word(Code::EncodedWordInQuotedString, &word);
        }
        token
    }

    /// domain-literal = [CFWS] "[" *([FWS] dtext) [FWS] "]" [CFWS]
    /// dtext = %d33-90 / %d94-126 / obs-dtext;  obs-dtext = obs-NO-WS-CTL / quoted-pair
    fn literal(&mut self, start: usize) -> Token {
        let end = self.end;
        let mut token = Token::new(Kind::Literal, start, end);
        token.closed = false;
        let mut i = start + 1;
        while let Some(b) = self.byte(i) {
            if b == b']' {
                token.closed = true;
                i += 1;
                break;
            }
            if b == BACKSLASH {
                let pair_end = (i + 2).min(end);
                self.sink.report(Code::ObsDtext, i, pair_end);
                self.escaped_hazard(i);
                i = pair_end;
                continue;
            }
            if b == b'\r' || b == b'\n' {
                i = self.line_break(i);
                continue;
            }
            let cls = class(b);
            if cls == C_CTL || cls == C_NUL {
                self.control(i, Code::ObsDtext);
            } else if b == b'[' {
                // "[" is not dtext
                self.sink.report(Code::UnexpectedCharacter, i, i + 1);
            }
            i += 1;
        }
        let i = i.min(end);
        token.end = i;
        if !token.closed {
            self.sink.report(Code::UnterminatedDomainLiteral, start, i);
        }
        self.sink.scan_8bit(start, i, true);
        token
    }

    /// comment = "(" *([FWS] ccontent) [FWS] ")";  ccontent = ctext / quoted-pair / comment
    /// ctext = %d33-39 / %d42-91 / %d93-126 / obs-ctext
    ///
    /// Nesting is counted, not recursed: a depth counter walks any depth in constant
    /// stack. Depth beyond MAX_COMMENT_DEPTH is reported once per comment.
    fn comment(&mut self, start: usize) -> Token {
        let mut token = Token::new(Kind::Comment, start, self.end);
        token.closed = false;
        let mut depth: usize = 1;
        let mut too_deep_reported = false;
        let mut i = start + 1;
        while let Some(b) = self.byte(i) {
            if b == b')' {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    token.closed = true;
                    break;
                }
                continue;
            }
            if b == b'(' {
                depth += 1;
                if depth > MAX_COMMENT_DEPTH && !too_deep_reported {
                    self.sink.report(Code::CommentTooDeep, i, i + 1);
                    too_deep_reported = true;
                    if self.sink.settled() {
                        // Nothing after matters to the caller: no need for the rest.
                        token.end = i + 1;
                        return token;
                    }
                }
            } else if b == BACKSLASH {
                i = self.quoted_pair(i);
                continue;
            } else if b == b'\r' || b == b'\n' {
                i = self.line_break(i);
                continue;
            } else if class(b) == C_CTL || class(b) == C_NUL {
                self.control(i, Code::ObsCtext);
            }
            i += 1;
        }
        let i = i.min(self.end);
        token.end = i;
        if !token.closed {
            self.sink.report(Code::UnterminatedComment, start, i);
        }
        self.sink.report(Code::Comment, start, i);
        self.sink.scan_8bit(start, i, false);
        let text = self.comment_text(&token);
        token.text = self.texts.len();
        self.texts.push(text);
        token
    }

    /// The comment as a reader sees it: the outer parentheses dropped, quoted-pairs
    /// unescaped, line breaks unfolded, and encoded-words decoded where RFC 2047 §5(2)
    /// allows them (delimited by white space or parentheses).
    fn comment_text(&mut self, token: &Token) -> Cow<'a, str> {
        let data = self.data;
        let content_end = if token.closed {
            token.end.saturating_sub(1)
        } else {
            token.end
        };
        let mut pieces = TextBuilder::new(data);
        // The pending white space: its span, CR and LF dropped when it is pushed.
        let mut pending_space: Option<(usize, usize)> = None;
        let mut last_was_word = false;
        let mut i = token.start + 1;
        while i < content_end {
            let Some(b) = self.byte(i) else { break };
            if class(b) == C_WSP {
                let mut j = i;
                while j < content_end && self.byte(j).map(class) == Some(C_WSP) {
                    j += 1;
                }
                pending_space = Some((i, j));
                i = j;
                continue;
            }
            if b == b'(' || b == b')' {
                pieces.push_space(pending_space.take());
                pieces.push_src(i, i + 1);
                last_was_word = false;
                i += 1;
                continue;
            }
            let mut j = i;
            let mut escaped = false;
            while j < content_end {
                let Some(c) = self.byte(j) else { break };
                if class(c) == C_WSP || c == b'(' || c == b')' {
                    break;
                }
                if c == BACKSLASH {
                    escaped = true;
                    j = (j + 2).min(content_end);
                } else {
                    j += 1;
                }
            }
            let decoded = if escaped {
                None
            } else {
                self.sink.decode_exact_word(i, j)
            };
            if let Some(decoded) = decoded {
                if last_was_word {
                    // White space between encoded-words is not shown.
                    pending_space = None;
                }
                pieces.push_space(pending_space.take());
                pieces.push_str(&decoded);
                last_was_word = true;
            } else {
                for word in encoded_word::find_encoded_words(data, i, j) {
                    if !(word.start == i && word.end == j) {
                        self.sink.report_word(Code::EncodedWordNotDelimited, &word);
                    }
                }
                pieces.push_space(pending_space.take());
                pieces.push_cow(unescape(data, i, j, QuotedPairs::Unescape), i, j);
                last_was_word = false;
            }
            i = j;
        }
        pieces.push_space(pending_space.take());
        pieces.finish()
    }
}

/// Each maximal run of bytes >= 0x80 in `data[start..end]`: its span and its text when
/// it is valid UTF-8 (`None` when it is some other charset's raw bytes). A valid UTF-8
/// character is never split by an ASCII byte, so runs can be judged one by one.
pub(crate) fn high_runs(data: &[u8], start: usize, end: usize) -> HighRuns<'_> {
    HighRuns {
        data: data.get(..end.min(data.len())).unwrap_or(data),
        i: start,
    }
}

/// The iterator of [`high_runs`].
pub(crate) struct HighRuns<'a> {
    data: &'a [u8],
    i: usize,
}

impl<'a> Iterator for HighRuns<'a> {
    type Item = (usize, usize, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        let data = self.data;
        self.i += ascii_prefix_len(data.get(self.i..).unwrap_or_default());
        let start = self.i;
        if start >= data.len() {
            return None;
        }
        let mut j = start;
        while data.get(j).is_some_and(|&b| b >= 0x80) {
            j += 1;
        }
        self.i = j;
        let text = data
            .get(start..j)
            .and_then(|run| std::str::from_utf8(run).ok());
        Some((start, j, text))
    }
}

/// The content of each physical line of `data`, split at every LF, as a span: a CR before
/// the LF is not counted (RFC 5322 §2.1.1 counts a line's octets without its CRLF).
pub(crate) fn line_spans(data: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut line_start = 0;
    let ends = memchr::memchr_iter(b'\n', data).chain(std::iter::once(data.len()));
    ends.map(move |end| {
        let cr = end > line_start && data.get(end - 1) == Some(&b'\r');
        let span = (line_start, end - usize::from(cr));
        line_start = end + 1;
        span
    })
}

/// How many bytes at the start of `bytes` are ASCII: eight at a time, since most text is.
fn ascii_prefix_len(bytes: &[u8]) -> usize {
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut ascii = 0;
    for word in words.by_ref() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        if word & HIGH_BITS != 0 {
            // The lowest high bit is the first non-ASCII byte (little-endian order).
            return ascii + (word & HIGH_BITS).trailing_zeros() as usize / 8;
        }
        ascii += 8;
    }
    ascii
        + words
            .remainder()
            .iter()
            .position(|&b| b >= 0x80)
            .unwrap_or(words.remainder().len())
}

/// [`String::from_utf8_lossy`], tried first as [`std::str::from_utf8`]: the same text,
/// but valid UTF-8 (nearly all of it) is checked a word at a time, not a character at a
/// time.
pub(crate) fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// [`lossy`] for bytes already owned: valid UTF-8 becomes the String without a copy.
pub(crate) fn lossy_owned(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// What [`unescape`] makes of a quoted-pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QuotedPairs {
    /// The escaped character alone, but an escaped CR or LF is dropped with its
    /// backslash: display text, where the line break is reported, not shown.
    Unescape,
    /// The escaped character alone, CR and LF included: a local part, whose canonical
    /// form escapes them again, so that its address never hides them.
    UnescapeAll,
    /// The backslash and the character as written: a domain, which has no quoting, so
    /// that unescaping would make another domain of it (`[1.2.3.4\]]`, `b\.c`).
    Keep,
}

/// The text of `data[start..end]` with quoted-pairs read as `pairs` says and the other
/// line breaks removed (unfolding), decoded as UTF-8 with U+FFFD for bytes that are
/// not. Borrowed when the text is the input verbatim.
pub(crate) fn unescape(data: &[u8], start: usize, end: usize, pairs: QuotedPairs) -> Cow<'_, str> {
    let slice = data.get(start..end.min(data.len())).unwrap_or(&[]);
    if !slice
        .iter()
        .any(|&b| b == BACKSLASH || b == b'\r' || b == b'\n')
    {
        return lossy(slice);
    }
    let mut out: Vec<u8> = Vec::with_capacity(slice.len());
    let mut i = 0;
    while let Some(&b) = slice.get(i) {
        if b == BACKSLASH
            && let Some(&escaped) = slice.get(i + 1)
        {
            match pairs {
                QuotedPairs::Keep => out.extend_from_slice(&[b, escaped]),
                QuotedPairs::Unescape if escaped == b'\r' || escaped == b'\n' => {}
                QuotedPairs::Unescape | QuotedPairs::UnescapeAll => out.push(escaped),
            }
            i += 2;
            continue;
        }
        // A lone backslash at the end is kept only where pairs are kept as written.
        if b != b'\r' && b != b'\n' && (b != BACKSLASH || pairs == QuotedPairs::Keep) {
            out.push(b);
        }
        i += 1;
    }
    Cow::Owned(lossy_owned(out))
}

/// Builds a text from pieces, borrowing from the input as long as the pieces are the
/// input verbatim and contiguous; copies only when a piece is not.
pub(crate) struct TextBuilder<'a> {
    data: &'a [u8],
    state: TextState,
}

enum TextState {
    Empty,
    /// The text so far is `data[start..end]`, valid UTF-8.
    Range(usize, usize),
    Owned(String),
}

impl<'a> TextBuilder<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        TextBuilder {
            data,
            state: TextState::Empty,
        }
    }

    fn range_str(&self, start: usize, end: usize) -> Cow<'a, str> {
        lossy(self.data.get(start..end).unwrap_or(&[]))
    }

    /// Appends `text` to an owned copy of the text so far.
    fn push_owned(&mut self, text: &str) {
        let mut owned = match std::mem::replace(&mut self.state, TextState::Empty) {
            TextState::Owned(owned) => owned,
            TextState::Range(start, end) => self.range_str(start, end).into_owned(),
            TextState::Empty => String::new(),
        };
        owned.push_str(text);
        self.state = TextState::Owned(owned);
    }

    /// Appends `data[start..end]`, which the caller knows to be valid UTF-8 (it comes
    /// from a borrowed `Cow` of that range).
    pub(crate) fn push_src(&mut self, start: usize, end: usize) {
        match self.state {
            TextState::Empty => self.state = TextState::Range(start, end),
            TextState::Range(s, e) if e == start => self.state = TextState::Range(s, end),
            _ => {
                let piece = self.range_str(start, end);
                self.push_owned(&piece);
            }
        }
    }

    /// Appends text that is not the input verbatim.
    pub(crate) fn push_str(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.push_owned(text);
    }

    /// Appends `text`, which is `data[start..end]` verbatim when it is borrowed.
    pub(crate) fn push_cow(&mut self, text: Cow<'a, str>, start: usize, end: usize) {
        match text {
            Cow::Borrowed(_) => self.push_src(start, end),
            Cow::Owned(owned) => self.push_str(&owned),
        }
    }

    /// Appends one ASCII character, borrowing it when it is the next byte of the input.
    pub(crate) fn push_ascii(&mut self, char: u8) {
        if let TextState::Range(s, e) = self.state
            && self.data.get(e) == Some(&char)
        {
            self.state = TextState::Range(s, e + 1);
            return;
        }
        let mut buffer = [0u8; 4];
        let text = char::from(char).encode_utf8(&mut buffer);
        self.push_owned(text);
    }

    /// Appends the white space `data[start..end]` (SP, HTAB, CR, LF) with CR and LF
    /// dropped.
    pub(crate) fn push_space(&mut self, span: Option<(usize, usize)>) {
        let Some((start, end)) = span else { return };
        let slice = self.data.get(start..end).unwrap_or(&[]);
        if !slice.iter().any(|&b| b == b'\r' || b == b'\n') {
            if !slice.is_empty() {
                self.push_src(start, end);
            }
            return;
        }
        for k in start..end {
            match self.data.get(k) {
                Some(b'\r') | Some(b'\n') | None => {}
                Some(&b) => self.push_ascii(b),
            }
        }
    }

    /// The text built.
    pub(crate) fn finish(self) -> Cow<'a, str> {
        self.finish_with_src().0
    }

    /// The text built, and the span of the input it is when it is the input verbatim.
    pub(crate) fn finish_with_src(self) -> (Cow<'a, str>, Option<(usize, usize)>) {
        match self.state {
            TextState::Empty => (Cow::Borrowed(""), None),
            TextState::Range(start, end) => {
                let text = self.range_str(start, end);
                let src = matches!(text, Cow::Borrowed(_)).then_some((start, end));
                (text, src)
            }
            TextState::Owned(text) => (Cow::Owned(text), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_runs_are_found_at_every_offset() {
        // Runs of each length at each position around the eight-byte steps.
        for len in 0..20 {
            for start in 0..len {
                for run in 1..=len - start {
                    let mut data = vec![b'a'; len];
                    data[start..start + run].fill(0xE9);
                    let runs: Vec<_> = high_runs(&data, 0, len).map(|(i, j, _)| (i, j)).collect();
                    assert_eq!(runs, [(start, start + run)], "{len} {start} {run}");
                    assert_eq!(ascii_prefix_len(&data), start);
                }
            }
            assert_eq!(high_runs(&vec![b'a'; len], 0, len).count(), 0);
        }
        let text = "caf\u{e9} na\u{ef}ve \u{e9}t\u{e9}".as_bytes();
        let runs: Vec<_> = high_runs(text, 2, text.len()).collect();
        assert_eq!(
            runs,
            [
                (3, 5, Some("\u{e9}")),
                (8, 10, Some("\u{ef}")),
                (13, 15, Some("\u{e9}")),
                (16, 18, Some("\u{e9}"))
            ]
        );
    }

    #[test]
    fn byte_classes_match_the_reference_table() {
        assert_eq!(class(0), C_NUL);
        for b in [1u8, 8, 11, 12, 14, 31, 127] {
            assert_eq!(class(b), C_CTL, "{b}");
        }
        for b in *b" \t\r\n" {
            assert_eq!(class(b), C_WSP);
        }
        for b in *b"()<>[]:;@\\,.\"" {
            assert_eq!(class(b), C_SPECIAL);
        }
        for b in *b"azAZ09!#$%&'*+-/=?^_`{|}~" {
            assert_eq!(class(b), C_ATEXT);
        }
        for b in 0x80..=0xFFu8 {
            assert_eq!(class(b), C_HIGH);
        }
    }

    #[test]
    fn unescape_borrows_verbatim_text_only() {
        let data = b"plain a\\\"b fo\r\n ld \\";
        let unescape = |start, end| super::unescape(data, start, end, QuotedPairs::Unescape);
        assert!(matches!(unescape(0, 5), Cow::Borrowed("plain")));
        assert_eq!(unescape(6, 10), "a\"b");
        assert_eq!(unescape(11, 18), "fo ld");
        // A lone backslash at the end of the range is dropped.
        assert_eq!(unescape(19, 20), "");
        // Out-of-range spans give empty text, not a panic.
        assert_eq!(unescape(50, 60), "");
        assert_eq!(
            super::unescape(b"a\xffb", 0, 3, QuotedPairs::Unescape),
            "a\u{fffd}b"
        );
    }

    #[test]
    fn quoted_pairs_are_read_as_asked() {
        let data = b"a\\\rb\r\n c\\]\\";
        let read = |pairs| super::unescape(data, 0, data.len(), pairs);
        assert_eq!(read(QuotedPairs::Unescape), "ab c]");
        assert_eq!(read(QuotedPairs::UnescapeAll), "a\rb c]");
        assert_eq!(read(QuotedPairs::Keep), "a\\\rb c\\]\\");
    }

    #[test]
    fn text_builder_borrows_contiguous_pieces() {
        let data = b"John Doe\r\n Smith";
        let mut text = TextBuilder::new(data);
        text.push_src(0, 4);
        text.push_ascii(b' ');
        text.push_src(5, 8);
        assert_eq!(
            text.finish_with_src(),
            (Cow::Borrowed("John Doe"), Some((0, 8)))
        );

        let mut text = TextBuilder::new(data);
        text.push_src(5, 8);
        text.push_space(Some((8, 11)));
        text.push_src(11, 16);
        let (value, src) = text.finish_with_src();
        assert_eq!(value, "Doe Smith");
        assert!(matches!(value, Cow::Owned(_)));
        assert_eq!(src, None);

        assert_eq!(TextBuilder::new(data).finish(), "");
    }
}

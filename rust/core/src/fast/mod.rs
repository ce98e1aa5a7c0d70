//! The fast path: the shapes most From values take, recognised in one pass over the
//! bytes with a byte-class table, without tokens and without allocating.
//!
//! ```text
//! value   = addr / [phrase [SP]] "<" addr ">"
//! phrase  = atom *(SP atom) / quoted          (atoms: atext, UTF-8 and "." but not first;
//!                                              quoted: printable ASCII but "\", DQUOTE
//!                                              and "@", and UTF-8; no "?" anywhere)
//! addr    = dot-atom-text "@" label *("." label)    (ASCII; no "%", "!", "&" or "?" in
//!                                                    the local part; labels of letters,
//!                                                    digits, "-", none starting "xn--")
//! ```
//!
//! Anything else (a comment, a fold, a second space, a "?", a period first in the name,
//! an "@" in the name or a look-alike of "@", ".", "<" or ">" (`lookalike_special`),
//! invalid UTF-8 or a format character, a value over 998 bytes, ...) is
//! left to the full grammar (`parser.rs`), which gives the same result on these shapes:
//! a test compares both on every case file, the Debian corpus and generated values. On
//! these shapes the full grammar finds nothing but one `utf8` (info) per run of UTF-8 and
//! one `obs-phrase` (legacy) per period in the name, and the deception pass has nothing to
//! look at (no "@" outside the address, no comment, no encoded-word, an ASCII domain
//! without punycode, no routing characters, no "&" that could start IMAP modified UTF-7).
//!
//! Where SSE2 is there (every x86-64 processor), the plainest of these values (ASCII, at
//! most 64 bytes) are recognised sixteen bytes at a time first ([`sse2`], chosen at
//! compile time by `target_feature`, as `memchr` chooses); [`scan_bytewise`] is the
//! definition both follow, and decides all values elsewhere.
//!
//! Each function here answers or declines (`Option`): the entry points (`entry.rs`)
//! fall back to the full grammar when it declines.
//!
//! More shapes are recognised for `assess` alone, which needs the verdict and the syntax
//! but no parts: runs of spaces in an unquoted name and a comma at the end
//! ([`assess_shape`]), a name of encoded-words, folded or not ([`assess_encoded_name`]),
//! and a quoted name with quoted-pairs or folds ([`assess_quoted_name`]).

use std::borrow::Cow;

use crate::code::{Code, Syntax, Verdict};
use crate::encoded_word::{self, WordEncoding, is_phrase_q_text};
use crate::lexer::{C_ATEXT, byte_classes, high_runs, line_spans};
use crate::limits::{MAX_FINDINGS, MAX_INPUT_BYTES, MAX_LINE_OCTETS};
use crate::lookalike::{self, lookalike_special};
use crate::model::{Assessment, Finding, Mailbox, Parsed, Profile};

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
mod sse2;

pub(crate) type Span = (usize, usize);

// One table: for each byte, in which part of a value it may stand (the first four bits)
// and what it is (the last four), so that one pass over a part ANDs and ORs the entries
// and sees everything at once. No part allows "?": without it no "=?" can begin an
// encoded-word, so the scan needs no second look for one (the rare value with a "?"
// takes the full grammar).

/// In an unquoted display name: atext, UTF-8, "." (obs-phrase) and SP.
const IN_NAME: u8 = 1;
/// Inside a quoted display name: printable ASCII and SP but "\", DQUOTE and "@"; UTF-8.
const IN_QUOTED: u8 = 2;
/// In a local part: atext but "%" and "!" (routing hacks) and "&" (IMAP modified UTF-7,
/// which the deception pass decodes), and ".".
const IN_LOCAL: u8 = 4;
/// In a domain: letters, digits, "-" and ".".
const IN_DOMAIN: u8 = 8;
/// A byte >= 0x80 (UTF-8 text in a name).
const HIGH: u8 = 16;
const DOT: u8 = 32;
const SPACE: u8 = 64;
const HYPHEN: u8 = 128;

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0x80;
    while b < 0x100 {
        table[b] = HIGH | IN_NAME | IN_QUOTED;
        b += 1;
    }
    let mut b = b' ';
    while b < 0x7F {
        if b != b'\\' && b != b'"' && b != b'@' && b != b'?' {
            table[b as usize] |= IN_QUOTED;
        }
        b += 1;
    }
    // atext as the lexer defines it, but "?" (see above).
    let lexer_classes = byte_classes();
    let mut b = 0u8;
    while b < 0x80 {
        if lexer_classes[b as usize] == C_ATEXT && b != b'?' {
            table[b as usize] |= IN_NAME;
            if b != b'%' && b != b'!' && b != b'&' {
                table[b as usize] |= IN_LOCAL;
            }
            if b.is_ascii_alphanumeric() {
                table[b as usize] |= IN_DOMAIN;
            }
        }
        b += 1;
    }
    table[b'.' as usize] |= DOT | IN_NAME | IN_LOCAL | IN_DOMAIN;
    table[b' ' as usize] |= SPACE | IN_NAME;
    table[b'-' as usize] |= HYPHEN | IN_DOMAIN;
    table
}

static CLASS: [u8; 256] = classes();

/// A value of a fast-path shape: the spans the result is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fast {
    /// The display name's span (quotes included) and the span of its text.
    display: Option<(Span, Span)>,
    local: Span,
    domain: Span,
    /// The whole mailbox.
    span: Span,
    /// A comment after the display name (parentheses included).
    comment: Option<Span>,
    /// The "<" (0 without one): the name and its comment are before it.
    open: usize,
    /// Whether the name or its comment holds UTF-8 (one `utf8` finding per run).
    utf8: bool,
    /// Whether the display name holds periods (one `obs-phrase` finding each).
    dots: bool,
}

/// What one pass over a part found: the AND and the OR of its bytes' entries, and the
/// OR of `entry & previous entry` (two dots, two spaces or two hyphens in a row; a dot
/// or a space first counts as one after another).
#[derive(Clone, Copy)]
struct Fold {
    every: u8,
    any: u8,
    twice: u8,
}

impl Fold {
    #[inline(always)]
    fn of(bytes: &[u8]) -> Fold {
        let (mut every, mut any, mut twice) = (0xFF, 0, 0);
        let mut previous = DOT | SPACE;
        for &b in bytes {
            let entry = CLASS[usize::from(b)];
            every &= entry;
            any |= entry;
            twice |= entry & previous;
            previous = entry;
        }
        Fold { every, any, twice }
    }

    /// Every byte may stand in the part `part` (`IN_*`).
    #[inline]
    fn allowed(self, part: u8) -> bool {
        self.every & part != 0
    }
}

/// `input` as a fast-path shape, or `None` when the full grammar must read it.
#[inline]
pub(crate) fn scan(input: &[u8], profile: Profile) -> Option<Fast> {
    scan_spaced(input, profile, Spaces::Single)
}

/// [`scan`] with the spaces of an unquoted name read as `spaces` says: the plainest values
/// sixteen bytes at a time on x86-64 (they hold no two spaces in a row), the rest a byte
/// at a time.
#[inline]
fn scan_spaced(input: &[u8], profile: Profile, spaces: Spaces) -> Option<Fast> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Some(fast) = sse2::scan_plain(input, profile) {
        return Some(fast);
    }
    scan_bytewise(input, profile, spaces)
}

/// How the fast path reads the spaces of an unquoted display name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spaces {
    /// One between words, and at most one before the comment or the "<": the name's text
    /// is then its span, as a result needs it.
    Single,
    /// Runs of them, which the full grammar judges alike (collapsing each to one in the
    /// name it builds): `assess` alone, which builds no name.
    Runs,
}

/// The verdict and syntax of a value the full grammar judges as a fast-path shape,
/// without building its parts: [`scan`]'s shapes, their unquoted names with runs of
/// spaces (`Debian  Python Team <...>`, `Name  <...>`: common in real headers, and
/// costly in the full grammar; `cargo bench -p fromguard` measures the Debian corpus),
/// and any of these with a comma at the end (`Name <local@domain>,`, an empty list
/// element: legacy and obsolete).
pub(crate) fn assess_shape(input: &[u8], profile: Profile) -> Option<Assessment> {
    let shape = |value: &[u8]| Some(scan_spaced(value, profile, Spaces::Runs)?.assessment());
    match input.split_last() {
        Some((b',', value)) if input.len() <= MAX_LINE_OCTETS => {
            shape(value)?;
            Some(LEGACY_OBSOLETE)
        }
        _ => shape(input),
    }
}

/// [`scan`] a byte at a time (on every platform): the definition of the fast path.
pub(crate) fn scan_bytewise(input: &[u8], profile: Profile, spaces: Spaces) -> Option<Fast> {
    let len = input.len();
    if len == 0 || len > MAX_LINE_OCTETS {
        return None;
    }
    if input.last() != Some(&b'>') {
        let (local, domain) = addr(input, 0, len)?;
        return Some(Fast {
            display: None,
            local,
            domain,
            span: (0, len),
            comment: None,
            open: 0,
            utf8: false,
            dots: false,
        });
    }
    let name = phrase(input, spaces)?;
    let open = name.open;
    if input.get(open) != Some(&b'<') {
        return None;
    }
    let (local, domain) = addr(input, open + 1, len - 1)?;
    if name.high && !(profile.utf8 && plain_utf8(input.get(..open)?)) {
        return None;
    }
    Some(Fast {
        display: name.display,
        local,
        domain,
        span: (0, len),
        comment: name.comment,
        open,
        utf8: name.high,
        dots: name.dots,
    })
}

/// What every fast path judges: what the full grammar gives its shapes (but periods in
/// an unquoted name).
const VALID_STRICT: Assessment = Assessment {
    verdict: Verdict::Valid,
    syntax: Syntax::Strict,
};

/// What the full grammar gives an obsolete form (here, periods in a name or an empty list
/// element) that nothing worse joins.
const LEGACY_OBSOLETE: Assessment = Assessment {
    verdict: Verdict::Legacy,
    syntax: Syntax::Obsolete,
};

/// The verdict and syntax of a display name of encoded-words before a plain address, the
/// usual form of a non-ASCII name in mail (`=?utf-8?b?...?= <local@domain>`), which the
/// full grammar finds valid and strict with one `encoded-word` (info) per word:
///
/// ```text
/// value = word *(fold word) fold "<" addr ">"     (addr as in `scan`)
/// fold  = SP / [SP] CRLF (SP / HTAB)             (a long name is folded between words)
/// ```
///
/// when each `word` is exactly one encoded-word in a known charset that no other decoder
/// reads otherwise (`encoded_word::other_readings`), without a language, not too long,
/// B text in whole groups of 4, its Q text only what a phrase allows, whose text decodes
/// (without a replaced byte) to letters and spaces alone (none a look-alike of "<", ">"
/// or "."): no address punctuation, control, format character or "@" that the deception
/// passes would report; no line over 998 octets and fewer words than would fill the
/// findings. `None` leaves the value to the full grammar.
/// `assess` only: the result's other parts need the full grammar.
pub(crate) fn assess_encoded_name(input: &[u8]) -> Option<Assessment> {
    if input.len() > MAX_INPUT_BYTES || !input.starts_with(b"=?") || input.last() != Some(&b'>') {
        return None;
    }
    let open = memchr::memchr(b'<', input)?;
    addr(input, open + 1, input.len() - 1)?;
    if !lines_fit(input) {
        return None;
    }
    let mut start = 0;
    let mut decoded = encoded_word::DecodeBuffers::default();
    // Each word is one `encoded-word` finding: far fewer than MAX_FINDINGS.
    for _ in 0..MAX_FINDINGS / 2 {
        let word = encoded_word::match_encoded_word(input, start, open)?;
        let label = input.get(word.start..word.text_start)?;
        let text = input.get(word.text_start..word.text_end)?;
        let phrase_text = match word.encoding {
            WordEncoding::Q => text.iter().all(|&b| is_phrase_q_text(b)),
            WordEncoding::B => true,
        };
        if label.contains(&b'*')
            || !phrase_text
            || encoded_word::too_long(&word)
            || encoded_word::b_text_misaligned(&word)
            || !encoded_word::other_readings(word.charset).is_empty()
        {
            return None;
        }
        encoded_word::decode_in(input, &word, &mut decoded).ok()?;
        let text = decoded.text();
        // Some letters pass for "<", ">" or "." (UTS #39): the analysis reads them so.
        let letters = text
            .chars()
            .all(|c| c == ' ' || (is_letter(c) && lookalike_special(c).is_none()));
        if text.is_empty() || !letters {
            return None;
        }
        start = fold(input, word.end)?;
        if start == open {
            return Some(VALID_STRICT);
        }
    }
    None
}

/// `c.is_alphabetic()`, with the Latin-1 letters (most decoded names in European mail)
/// answered before the Unicode table search.
fn is_letter(c: char) -> bool {
    matches!(c, 'a'..='z' | 'A'..='Z' | '\u{c0}'..='\u{ff}') && c != '\u{d7}' && c != '\u{f7}'
        || c.is_alphabetic()
}

/// The verdict and syntax of a quoted display name with quoted-pairs or folded, before a
/// plain address (`"Doe, \"Jo\"" <local@domain>`), which the full grammar finds valid
/// and strict without a finding:
///
/// ```text
/// value   = DQUOTE *(qtext / qpair / CRLF (SP / HTAB)) DQUOTE [fold] "<" addr ">"
/// qpair   = "\" (qtext / DQUOTE / "\")
/// ```
///
/// where `qtext` is printable ASCII and SP but "\", DQUOTE, "@" and "?" (`IN_QUOTED`
/// without UTF-8): the unquoted name holds no address, encoded-word or format character
/// for the deception passes to report. No line over 998 octets. The plain quoted name
/// (no pair, not folded) is `scan`'s; this is `assess` only.
pub(crate) fn assess_quoted_name(input: &[u8]) -> Option<Assessment> {
    if input.len() > MAX_INPUT_BYTES || input.first() != Some(&b'"') || input.last() != Some(&b'>')
    {
        return None;
    }
    let qtext = |b: u8| b < 0x80 && CLASS[usize::from(b)] & IN_QUOTED != 0;
    let mut i = 1;
    // A line break since the last text: a second one would be obs-FWS.
    let mut folded = false;
    loop {
        match *input.get(i)? {
            b'"' => break,
            b'\\' => match *input.get(i + 1)? {
                b'"' | b'\\' => i += 2,
                escaped if qtext(escaped) => i += 2,
                _ => return None,
            },
            b'\r' if !folded => {
                // CRLF and one SP or HTAB: `fold` without its leading space.
                i = fold(input, i)?;
                folded = true;
                continue;
            }
            b' ' => i += 1,
            b if qtext(b) => i += 1,
            _ => return None,
        }
        folded &= input.get(i - 1) == Some(&b' ');
    }
    let after = i + 1;
    let open = fold(input, after).unwrap_or(after);
    if input.get(open) != Some(&b'<') || !lines_fit(input) {
        return None;
    }
    addr(input, open + 1, input.len() - 1)?;
    Some(VALID_STRICT)
}

/// Whether every line of `input` is at most 998 octets (RFC 5322 §2.1.1), as the
/// grammar counts them.
fn lines_fit(input: &[u8]) -> bool {
    line_spans(input).all(|(start, end)| end - start <= MAX_LINE_OCTETS)
}

/// The end of the `fold` (`SP / [SP] CRLF (SP / HTAB)`) at `i`, if there is one.
fn fold(input: &[u8], i: usize) -> Option<usize> {
    let mut j = i + usize::from(input.get(i) == Some(&b' '));
    if input.get(j..j + 2) == Some(b"\r\n".as_slice()) {
        j += 2;
        if !matches!(input.get(j), Some(b' ' | b'\t')) {
            return None;
        }
        j += 1;
    }
    (j > i).then_some(j)
}

/// Valid UTF-8 without a bidi or invisible format character, and without a look-alike of
/// "@", ".", "<" or ">", from which the analysis reads addresses (`＠`, `．`, `。`...).
pub(crate) fn plain_utf8(text: &[u8]) -> bool {
    std::str::from_utf8(text).is_ok_and(lookalike::is_plain_text)
}

/// What comes before the "<".
struct Name {
    /// The display name's span and its text's span (`None` when the value starts with
    /// "<").
    display: Option<(Span, Span)>,
    /// A comment after an unquoted name.
    comment: Option<Span>,
    /// The index of the "<".
    open: usize,
    /// Some byte >= 0x80 in the name or the comment.
    high: bool,
    /// Periods in an unquoted name (obs-phrase).
    dots: bool,
}

/// The phrase before the "<", and a comment after an unquoted one.
fn phrase(input: &[u8], spaces: Spaces) -> Option<Name> {
    match input.first() {
        Some(b'<') => Some(Name {
            display: None,
            comment: None,
            open: 0,
            high: false,
            dots: false,
        }),
        Some(b'"') => {
            let close = 1 + memchr::memchr(b'"', input.get(1..)?)?;
            let text = Fold::of(input.get(1..close)?);
            if !text.allowed(IN_QUOTED) {
                return None;
            }
            let after = close + 1;
            let open = if input.get(after) == Some(&b' ') {
                after + 1
            } else {
                after
            };
            Some(Name {
                display: Some(((0, after), (1, close))),
                comment: None,
                open,
                high: text.any & HIGH != 0,
                dots: false,
            })
        }
        // A period may not begin the phrase (it is then no obs-phrase).
        Some(b'.') | None => None,
        Some(_) => {
            let open = memchr::memchr(b'<', input)?;
            let mut end = before_spaces(input, open, spaces);
            let mut text = input.get(..end)?;
            let mut name = Fold::of(text);
            let (mut comment, mut comment_high) = (None, false);
            // "(" is no name byte: look for a comment only when the name fails.
            if !name.allowed(IN_NAME) {
                let paren = memchr::memchr(b'(', text)?;
                let (span, high) = parse_comment(input, paren, end)?;
                (comment, comment_high) = (Some(span), high);
                end = before_spaces(input, paren, spaces);
                text = input.get(..end)?;
                name = Fold::of(text);
            }
            let words_apart = match spaces {
                Spaces::Single => name.twice & SPACE == 0,
                Spaces::Runs => text.first() != Some(&b' '),
            } && text.last().is_some_and(|&b| b != b' ');
            if !(name.allowed(IN_NAME) && words_apart) {
                return None;
            }
            Some(Name {
                display: Some(((0, end), (0, end))),
                comment,
                open,
                high: name.any & HIGH != 0 || comment_high,
                dots: name.any & DOT != 0,
            })
        }
    }
}

/// Where the spaces before `i` begin: the one before it ([`Spaces::Single`]), or the
/// first of the run ([`Spaces::Runs`]).
fn before_spaces(input: &[u8], i: usize, spaces: Spaces) -> usize {
    let before = input.get(..i).unwrap_or_default();
    let run = before.iter().rev().take_while(|&&b| b == b' ').count();
    match spaces {
        Spaces::Single => i - run.min(1),
        Spaces::Runs => i - run,
    }
}

/// `input[paren..end]` as one comment after a space, without nested comments, quoted
/// pairs, an "@" or a "?" (`IN_QUOTED` without the parentheses): its span, and whether
/// it holds UTF-8.
fn parse_comment(input: &[u8], paren: usize, end: usize) -> Option<(Span, bool)> {
    let content = input.get(paren + 1..end.checked_sub(1)?)?;
    let closed = input.get(end - 1) == Some(&b')');
    let spaced = input.get(paren.checked_sub(1)?) == Some(&b' ');
    let text = Fold::of(content);
    let plain = text.allowed(IN_QUOTED) && memchr::memchr2(b'(', b')', content).is_none();
    (closed && spaced && plain).then_some(((paren, end), text.any & HIGH != 0))
}

/// `input[start..end]` as an ASCII `dot-atom-text "@" domain`: the local part's and the
/// domain's spans.
fn addr(input: &[u8], start: usize, end: usize) -> Option<(Span, Span)> {
    let text = input.get(start..end)?;
    let at = start + memchr::memchr(b'@', text)?;
    let local = input.get(start..at)?;
    let domain = input.get(at + 1..end)?;
    let (local_fold, domain_fold) = (Fold::of(local), Fold::of(domain));
    let dot_atom = |part: &[u8], fold: Fold, allowed: u8| {
        fold.allowed(allowed) && fold.twice & DOT == 0 && part.last().is_some_and(|&b| b != b'.')
    };
    if !(dot_atom(local, local_fold, IN_LOCAL) && dot_atom(domain, domain_fold, IN_DOMAIN)) {
        return None;
    }
    // Only a label with "--" can be an A-label; look at each label then.
    if domain_fold.twice & HYPHEN != 0
        && domain.split(|&b| b == b'.').any(|label| {
            label
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"xn--"))
        })
    {
        return None;
    }
    Some(((start, at), (at + 1, end)))
}

impl Fast {
    /// A value without a comment: `name_end` ends an unquoted display name that starts
    /// the value (with UTF-8 in it when `utf8`), `open` is the "<" (0 without one). (For
    /// [`sse2`], hence with SSE2 only.)
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    pub(crate) fn plain(
        name_end: Option<usize>,
        local: Span,
        domain: Span,
        open: usize,
        utf8: bool,
        dots: bool,
        len: usize,
    ) -> Fast {
        Fast {
            display: name_end.map(|end| ((0, end), (0, end))),
            local,
            domain,
            span: (0, len),
            comment: None,
            open,
            utf8,
            dots,
        }
    }

    /// The verdict and syntax the full grammar gives for this value: periods in the
    /// name are obsolete (legacy); `utf8` findings are info.
    #[inline]
    pub(crate) fn assessment(&self) -> Assessment {
        if self.dots {
            LEGACY_OBSOLETE
        } else {
            VALID_STRICT
        }
    }

    /// The result the full grammar gives for this value.
    pub(crate) fn parsed(self, input: &[u8], profile: Profile) -> Parsed<'_> {
        // The scan checked that the value is ASCII but for valid UTF-8 in the name and
        // its comment: validated once, then sliced.
        let whole = std::str::from_utf8(input).ok();
        let text = |(start, end): Span| -> Cow<'_, str> {
            match whole.and_then(|whole| whole.get(start..end)) {
                Some(text) => Cow::Borrowed(text),
                None => String::from_utf8_lossy(input.get(start..end).unwrap_or_default()),
            }
        };
        let mut findings = Vec::new();
        if self.utf8 {
            findings.extend(
                high_runs(input, 0, self.open).map(|(i, j, _)| Finding::new(Code::Utf8, i, j)),
            );
        }
        if let (true, Some(((start, end), _))) = (self.dots, self.display) {
            let name = input.get(start..end).unwrap_or_default();
            findings.extend(
                name.iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'.')
                    .map(|(k, _)| Finding::new(Code::ObsPhrase, start + k, start + k + 1)),
            );
        }
        if let Some((start, end)) = self.comment {
            findings.push(Finding::new(Code::Comment, start, end));
        }
        findings.sort_by_key(|f| (f.start, f.end, f.code.index()));
        let codes = findings.iter().map(|f| f.code).collect();
        let Assessment { verdict, syntax } = self.assessment();
        let mailbox = Mailbox {
            display_name: self.display.map(|(_, text_span)| text(text_span)),
            local_part: text(self.local),
            domain: text(self.domain),
            addr_spec: text((self.local.0, self.domain.1)),
            route: Vec::new(),
            comments: self
                .comment
                .map(|(start, end)| text((start + 1, end - 1)))
                .into_iter()
                .collect(),
            group: None,
            span: self.span,
            display_name_span: self.display.map(|(span, _)| span),
            local_part_span: self.local,
            domain_span: self.domain,
        };
        Parsed {
            verdict,
            syntax,
            profile,
            findings,
            codes,
            mailboxes: vec![mailbox],
            shadows: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{assess, parse_full};

    fn profiles() -> [Profile; 4] {
        [
            Profile::default(),
            Profile {
                utf8: false,
                groups: false,
            },
            Profile {
                utf8: true,
                groups: true,
            },
            Profile {
                utf8: false,
                groups: true,
            },
        ]
    }

    /// Fast and full paths agree on `input` under every profile; returns whether the fast
    /// path took it (under the default profile).
    fn agree(input: &[u8]) -> bool {
        for profile in profiles() {
            let full = parse_full(input, profile);
            let assessed = assess(input, profile);
            assert_eq!(
                (assessed.verdict, assessed.syntax),
                (full.verdict, full.syntax),
                "{:?} {profile:?}",
                String::from_utf8_lossy(input)
            );
            if let Some(fast) = scan(input, profile) {
                assert_eq!(
                    fast.parsed(input, profile),
                    parse_full(input, profile),
                    "{:?}",
                    String::from_utf8_lossy(input)
                );
            }
            // The SSE2 path decides a value only as the byte-at-a-time scan does.
            assert_eq!(
                scan(input, profile),
                scan_bytewise(input, profile, Spaces::Single),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        scan(input, Profile::default()).is_some()
    }

    fn case_inputs() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases");
        let mut inputs = Vec::new();
        for entry in std::fs::read_dir(dir).expect("tests/cases") {
            let path = entry.expect("an entry").path();
            if path.extension().is_some_and(|ext| ext == "jsonl") {
                let text = std::fs::read_to_string(&path).expect("a case file");
                for line in text.lines().filter(|line| !line.trim().is_empty()) {
                    let case: serde_json::Value = serde_json::from_str(line).expect("JSON");
                    if let Some(input) = case.get("input").and_then(|v| v.as_str()) {
                        inputs.push(input.to_owned());
                    }
                }
            }
        }
        inputs
    }

    #[test]
    fn agrees_with_the_full_grammar_on_every_case() {
        let inputs = case_inputs();
        assert!(inputs.len() > 300, "{}", inputs.len());
        let taken = inputs
            .iter()
            .filter(|input| agree(input.as_bytes()))
            .count();
        assert!(taken >= 10, "{taken}");
    }

    /// The values of the Debian maintainer corpus.
    fn debian_corpus() -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/corpus/debian-maintainers.txt");
        let corpus = std::fs::read_to_string(path).expect("the corpus");
        corpus.lines().map(str::to_owned).collect()
    }

    #[test]
    fn agrees_with_the_full_grammar_on_the_debian_corpus() {
        let lines = debian_corpus();
        let taken = lines.iter().filter(|line| agree(line.as_bytes())).count();
        // Most real values take the fast path (the rest: periods in names, comments, ...).
        assert!(taken * 10 > lines.len() * 8, "{taken} of {}", lines.len());
    }

    /// The SSE2 path is no dead weight: it decides most real values (what it decides is
    /// compared with the byte-at-a-time scan by `agree`).
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[test]
    fn the_sse2_path_decides_most_real_values() {
        let lines = debian_corpus();
        let decided = lines
            .iter()
            .filter(|line| sse2::scan_plain(line.as_bytes(), Profile::default()).is_some())
            .count();
        // All but the values over 64 bytes (9%) and a few with other characters.
        assert!(
            decided * 100 > lines.len() * 85,
            "{decided} of {}",
            lines.len()
        );
        // Around its 64-byte limit and its 16-byte blocks: the same results as the scan.
        for name in [
            "Ann Lee-Smith Jr. Van_Der+Berg ",
            "J\u{f6}rg M\u{fc}ller ",
            "a\u{202e}b ",
        ] {
            for extra in 0..48 {
                let local = "a".repeat(extra);
                for value in [
                    format!("{name}<{local}.b@x-y.example>"),
                    format!("{local}c.d@e.example"),
                    format!("<{local}@e.example>"),
                    format!("{name}{local} <b@x.example>"),
                    format!("{local}<b@x.example>"),
                ] {
                    agree(value.as_bytes());
                }
            }
        }
    }

    /// RFC 2047 "B" and "Q" encodings of `text` (Q: letters and digits as they are, "_"
    /// for a space, `=XX` for the rest).
    fn encode_word(charset: &str, encoding: char, bytes: &[u8]) -> String {
        let text: String = if encoding == 'B' {
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let n = chunk
                    .iter()
                    .enumerate()
                    .fold(0u32, |n, (k, &b)| n | u32::from(b) << (16 - 8 * k));
                for k in 0..4 {
                    if k <= chunk.len() {
                        out.push(char::from(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]));
                    } else {
                        out.push('=');
                    }
                }
            }
            out
        } else {
            bytes
                .iter()
                .map(|&b| match b {
                    b' ' => "_".to_owned(),
                    b if b.is_ascii_alphanumeric() => char::from(b).to_string(),
                    b => format!("={b:02X}"),
                })
                .collect()
        };
        format!("=?{charset}?{encoding}?{text}?=")
    }

    /// Encoded-word names: the shortcut of `assess` takes the plain ones, and `assess`
    /// gives what the full grammar gives on all of them (`agree`).
    #[test]
    fn encoded_word_names_are_assessed_as_the_full_grammar_does() {
        let names = [
            "Jörg Müller",
            "Σοφία Παπαδάκη",
            "山田 太郎",
            "Ana",
            "O'Brien",
            "Jean-Luc",
            "ceo@bank.example",
            "Pay\u{200b}Pal",
            "a\u{202e}b",
            "Line\u{1}break",
            "R2 D2",
            "Dr. Who",
            "a, b",
            "ceo\u{FF20}bank\u{FF0E}example",
            "\u{1438}\u{14C2}",
        ];
        let mut taken = 0;
        let mut total = 0;
        for name in names {
            for (charset, bytes) in [
                ("utf-8", name.as_bytes().to_vec()),
                ("UTF-8", name.as_bytes().to_vec()),
                ("utf-8*en", name.as_bytes().to_vec()),
                ("x-unknown", name.as_bytes().to_vec()),
                (
                    "iso-8859-1",
                    name.chars()
                        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                        .collect(),
                ),
            ] {
                for encoding in ['B', 'Q'] {
                    let word = encode_word(charset, encoding, &bytes);
                    let words: Vec<String> = name
                        .split(' ')
                        .map(|part| encode_word(charset, encoding, part.as_bytes()))
                        .collect();
                    for value in [
                        format!("{word} <j.d@x.example>"),
                        format!("{} <j.d@x.example>", words.join(" ")),
                        format!("{word}<j.d@x.example>"),
                        format!("{word} <j..d@x.example>"),
                        format!("{word}  <j.d@x.example>"),
                        format!("{word} x <j.d@x.example>"),
                        format!("{} <j@x.example>", words.join("")),
                        format!("{word}{} <j@x.example>", "a".repeat(80)),
                        // Folded between the words, before the "<", badly.
                        format!("{} <j.d@x.example>", words.join("\r\n ")),
                        format!("{}\r\n\t<j.d@x.example>", words.join(" \r\n ")),
                        format!("{word}\r\n <j.d@x.example>"),
                        format!("{word} \r\n  <j.d@x.example>"),
                        format!("{word}\r\n<j.d@x.example>"),
                        format!("{word}\n <j.d@x.example>"),
                        format!("{word}\r <j.d@x.example>"),
                        format!("{word}\r\n \r\n <j.d@x.example>"),
                        // Long: many words, a line over 998 octets, more words than
                        // the findings hold.
                        format!("{} <j@x.example>", [word.as_str(); 40].join("\r\n ")),
                        format!("{} <j@x.example>", [word.as_str(); 40].join(" ")),
                        format!("{} <j@x.example>", [word.as_str(); 1200].join("\r\n ")),
                        "=?utf-8?q?a.b?= <j@x.example>".to_owned(),
                        "=?utf-8?b?!!!?= <j@x.example>".to_owned(),
                    ] {
                        agree(value.as_bytes());
                        total += 1;
                        if let Some(assessed) = assess_encoded_name(value.as_bytes()) {
                            taken += 1;
                            let full = parse_full(value.as_bytes(), Profile::default());
                            assert_eq!(full.mailboxes.len(), 1, "{value}");
                            assert_eq!(
                                (assessed.verdict, assessed.syntax),
                                (full.verdict, full.syntax)
                            );
                        }
                    }
                }
            }
        }
        // The plain names in known charsets, in one word or one per part, folded or not.
        assert!(taken >= 100 && taken * 4 < total, "{taken} of {total}");
        for folded in [
            &b"=?utf-8?q?J=C3=B6rg?=\r\n =?iso-8859-1?b?TfxsbGVy?= <j@x.example>"[..],
            b"=?utf-8?q?J=C3=B6rg?= \r\n =?iso-8859-1?b?TfxsbGVy?=\r\n\t<j@x.example>",
        ] {
            assert!(assess_encoded_name(folded).is_some());
        }
    }

    /// Quoted names with quoted-pairs and folds, and their near misses: `assess` gives
    /// what the full grammar gives on all of them (`agree`), most without the grammar.
    #[test]
    fn quoted_names_are_assessed_as_the_full_grammar_does() {
        let names = [
            "Doe, John",
            "x\\\"y, x\\\"y",
            "back\\\\slash",
            "\\a\\ \\.\\,",
            "",
            "ceo@bank.example",
            "ceo\\@bank.example",
            "What\\?",
            "=?utf-8?q?a?=",
            "J\u{f6}rg",
            "tab\there",
            "escaped\\\ttab",
            "ctl\u{1}",
            "escaped\\\u{1}ctl",
            "Pay\u{200b}Pal",
            "trailing\\",
            "bare\rcr",
            "bare\nlf",
            "crlf\r\nnone",
            "folded\r\n once",
            "folded\r\n\ttab",
            "folded\r\n  twice",
            "folded\r\n \r\n again",
            "long line",
        ];
        let mut taken = 0;
        let mut total = 0;
        for name in names {
            let name = if name == "long line" {
                "x".repeat(MAX_LINE_OCTETS)
            } else {
                name.to_owned()
            };
            for fold in ["", " ", "  ", "\r\n ", " \r\n\t", "\r\n"] {
                for address in ["j.d@x.example", "j..d@x.example", "j@xn--bnk-6cd.example"] {
                    let value = format!("\"{name}\"{fold}<{address}>");
                    agree(value.as_bytes());
                    total += 1;
                    if assess_quoted_name(value.as_bytes()).is_some() {
                        taken += 1;
                    }
                }
            }
        }
        // The eight plain names (the first four, the empty one, the three folded once),
        // each after four good folds, before the one good address.
        assert_eq!(taken, 32, "{taken} of {total}");
        for value in [
            &b"\"x\\\"y, x\\\"y\" <a@b.example>"[..],
            b"\"Doe,\r\n John\"\r\n <a@b.example>",
        ] {
            assert!(assess_quoted_name(value).is_some());
        }
    }

    /// Unquoted names with runs of spaces, values with a comma at the end, and their near
    /// misses: `assess` gives what the full grammar gives on all of them (`agree`).
    #[test]
    fn spaced_names_and_list_ends_are_assessed_as_the_full_grammar_does() {
        let names = [
            "Debian  Python Team",
            "Matthias Klose",
            "A.  B",
            "J\u{f6}rg  M\u{fc}ller",
            "a  (c)",
            "  Lead",
            "a\t b",
            "a  \"q\"",
        ];
        let mut taken = 0;
        for name in names {
            for spaces in ["", " ", "  ", "   "] {
                for end in ["", ",", ", ", ",,"] {
                    let value = format!("{name}{spaces}<j.d@x.example>{end}");
                    agree(value.as_bytes());
                    if assess_shape(value.as_bytes(), Profile::default()).is_some() {
                        taken += 1;
                    }
                }
            }
        }
        // The first five names, before each run of spaces, without an end or with one
        // comma.
        assert_eq!(taken, 40);
        for (value, taken) in [
            (&b"a@b.example,"[..], true),
            (b"a@b.example ,", false),
            (b",", false),
            (b"<a@b.example>,", true),
        ] {
            agree(value);
            assert_eq!(
                assess_shape(value, Profile::default()).is_some(),
                taken,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
        let long = format!("{}@x.example,", "a".repeat(MAX_LINE_OCTETS - 10));
        assert_eq!(long.len(), MAX_LINE_OCTETS + 1);
        agree(long.as_bytes());
        assert!(assess_shape(long.as_bytes(), Profile::default()).is_none());
    }

    #[test]
    fn letters_are_the_alphabetic_characters() {
        for c in (0..0x3000).filter_map(char::from_u32) {
            assert_eq!(is_letter(c), c.is_alphabetic(), "{c:?}");
        }
    }

    #[test]
    fn lines_fit_as_the_grammar_counts_them() {
        let line = |n: usize| "x".repeat(n);
        for (value, fits) in [
            (line(MAX_LINE_OCTETS), true),
            (line(MAX_LINE_OCTETS + 1), false),
            (format!("{}\r", line(MAX_LINE_OCTETS)), true),
            (format!("a\r\n{}\r\nb", line(MAX_LINE_OCTETS)), true),
            (format!("a\n{}\nb", line(MAX_LINE_OCTETS)), true),
            (format!("a\r\n{}\r\nb", line(MAX_LINE_OCTETS + 1)), false),
            (format!("a\r\n\r\n{}", line(MAX_LINE_OCTETS + 1)), false),
            (format!("{}\r\r\n", line(MAX_LINE_OCTETS)), false),
            (String::new(), true),
        ] {
            assert_eq!(lines_fit(value.as_bytes()), fits, "{}", value.len());
            let mut parser_view = parse_full(value.as_bytes(), Profile::default());
            parser_view.findings.retain(|f| f.code == Code::LineTooLong);
            assert_eq!(parser_view.findings.is_empty(), fits);
        }
    }

    #[test]
    fn shapes_taken_and_left() {
        for taken in [
            &b"a@b.example"[..],
            b"John Doe <jdoe@example.org>",
            b"John Doe<jdoe@example.org>",
            b"<jdoe@example.org>",
            b"\"Doe, John\" <j.d+x@example.org>",
            b"\"\" <a@b>",
            b"J\xc3\xb6rg M\xc3\xbcller <j@x.example>",
        ] {
            assert!(agree(taken), "{:?}", String::from_utf8_lossy(taken));
        }
        assert!(agree(b"Dr. Jane E.Doe. <j@x.example>"));
        assert!(agree(
            b"Shih-Yuan Lee (Four Dollars, \xe6\x9d\x8e) <f@x.example>"
        ));
        for left in [
            &b""[..],
            b".Jane <j@x.example>",
            b"John  Doe <j@x.example>",
            b" a@b.example",
            b"a@b.example ",
            b"a@b..example",
            b".a@b.example",
            b"a@xn--bnk-6cd.example",
            b"u%h@b.example",
            b"h!u@b.example",
            b"\"ceo@bank.example\" <m@x.example>",
            b"=?utf-8?q?a?= <a@b.example>",
            b"a=?x <a@b.example>",
            b"\"a\" b <a@b.example>",
            b"a (c@d.example) <a@b.example>",
            b"a (c (d)) <a@b.example>",
            b"a(c) <a@b.example>",
            b"(c) <a@b.example>",
            b"J\xf6rg <j@x.example>",
            b"a\xe2\x80\xae <j@x.example>",
            b"j\xc3\xb6rg@x.example",
            b"a <b@c> d",
            b"a <b@c>>",
            // Look-alikes of "@" and "." in a name, which the analysis reads as ASCII.
            "ceo\u{FF20}bank\u{FF0E}example <m@x.example>".as_bytes(),
            "\"ceo\u{FE6B}bank.example\" <m@x.example>".as_bytes(),
            "ceo\u{FF20}bank\u{2024}example <m@x.example>".as_bytes(),
            "Bank \u{FF1C}ceo <m@x.example>".as_bytes(),
            "a (ceo\u{FF20}bank.example) <m@x.example>".as_bytes(),
            "\u{6771}\u{4eac}\u{3002}\u{5927}\u{962a} <m@x.example>".as_bytes(),
        ] {
            assert!(!agree(left), "{:?}", String::from_utf8_lossy(left));
        }
        assert!(scan(b"J\xc3\xb6rg <j@x.example>", profiles()[1]).is_none());
    }

    /// Pieces of values near the fast-path shapes and just outside them.
    const PIECES: &[&[u8]] = &[
        b"a",
        b"Jo",
        b"x-y",
        b"1",
        b"%",
        b"!",
        b"=",
        b"?",
        b"=?",
        b"'",
        b"_",
        b" ",
        b"  ",
        b"\t",
        b"<",
        b">",
        b"@",
        b".",
        b",",
        b"\"",
        b"\\",
        b"(",
        b")",
        b":",
        b";",
        b"[",
        b"]",
        b"xn--",
        b"XN--a",
        b"\xc3\xb6",
        b"\xe2\x80\xae",
        // Look-alikes of "@", "." and "<".
        b"\xef\xbc\xa0",
        b"\xef\xbc\x8e",
        b"\xe3\x80\x82",
        b"\xef\xbc\x9c",
        b"\xff",
        b"\r\n ",
        b"\x00",
        b"Abcdefghijklmnopqrstuvwxyz0123456789",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn generated_values_agree(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..16),
            shape in 0..3usize,
        ) {
            let body = pieces.concat();
            let input = match shape {
                0 => body,
                1 => [&body[..], b" <a.b@c-d.example>"].concat(),
                _ => [&b"N <"[..], &body, b"@x.example>"].concat(),
            };
            agree(&input);
        }
    }
}

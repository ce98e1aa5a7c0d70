//! The header block of a whole message: a port of `python/fromguard/reference/message.py`.
//!
//! ```text
//! message      = (fields / obs-fields) [CRLF body]            (RFC 5322 §3.5)
//! field        = field-name ":" unstructured CRLF;  field-name = 1*ftext
//! obs-optional = field-name *WSP ":" unstructured CRLF         (§4.5)
//! ```
//!
//! [`check_message`] finds the header block (after a leading mbox `From ` line, up to the
//! first empty line), splits it into fields (CRLF or LF line ends, folded lines), parses
//! every `From`, `Sender`, `Resent-From` and `Reply-To` field with the field grammar, and
//! reports what only the whole block shows. The body is never read.
//!
//! The block is split in one place ([`split`]): the check reports on what it finds, and
//! keeps every field's span ([`FieldSpan`]) so that rules (`rules.rs`) match on the check
//! without splitting the block again; [`header_fields`] lists the same fields.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::code::{Code, CodeSet, Verdict};
use crate::entry::parse;
use crate::findings::{Findings, Goal};
use crate::limits::{MAX_CHECKED_FIELDS, MAX_LINE_OCTETS};
use crate::model::{Finding, Parsed, Profile};
use crate::psl::organisational_domain;

/// The fields whose values are mailbox lists checked with the From grammar.
const CHECKED_FIELDS: [&str; 4] = ["from", "sender", "resent-from", "reply-to"];

/// One checked field: its name as written, the span of the whole field in the message,
/// where its value starts (add it to the result's spans), and the parse of the value.
#[derive(Clone, Debug)]
pub struct HeaderField<'a> {
    pub name: Cow<'a, str>,
    pub start: usize,
    pub end: usize,
    pub value_start: usize,
    pub result: Parsed<'a>,
}

/// The check of a message's header block.
#[derive(Clone, Debug)]
pub struct MessageCheck<'a> {
    /// The worst of the message-level findings and of every checked field's verdict.
    pub verdict: Verdict,
    pub fields: Vec<HeaderField<'a>>,
    /// Message-level findings, spans into the raw message, sorted like a field's.
    pub findings: Vec<Finding>,
    /// Every message-level code reported, those past the findings limit too.
    pub codes: CodeSet,
    /// Every field of the header block, checked or not, in order.
    pub header: Vec<FieldSpan>,
}

/// Where one field of the header block stands in the message: the field from the start
/// of its name to the end of its last line (line end excluded), its name without the
/// white space before the colon, and where its value starts (after the colon).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpan {
    pub start: usize,
    pub name_end: usize,
    pub value_start: usize,
    pub end: usize,
}

impl FieldSpan {
    /// The field's name as written (white space before the colon trimmed).
    pub fn name<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        raw.get(self.start..self.name_end).unwrap_or_default()
    }

    /// The field's value unfolded (the line ends of folding removed) and trimmed of
    /// white space at either end; borrowed unless the field is folded.
    pub fn value<'a>(&self, raw: &'a [u8]) -> Cow<'a, [u8]> {
        let value = raw.get(self.value_start..self.end).unwrap_or_default();
        if !value.contains(&b'\n') {
            return Cow::Borrowed(trim_blank_end(trim_blank_start(value)));
        }
        // Inside a field's lines every LF ends a line, and a CR right before it is part
        // of that line end (`lines` drops it).
        let mut joined = Vec::with_capacity(value.len());
        let mut rest = value;
        while let Some((&byte, tail)) = rest.split_first() {
            if byte != b'\n' && !(byte == b'\r' && tail.first() == Some(&b'\n')) {
                joined.push(byte);
            }
            rest = tail;
        }
        Cow::Owned(trim_blank_end(trim_blank_start(&joined)).to_vec())
    }
}

impl MessageCheck<'_> {
    /// A copy that owns its text, for results that outlive the input.
    pub fn into_owned(self) -> MessageCheck<'static> {
        MessageCheck {
            verdict: self.verdict,
            fields: self
                .fields
                .into_iter()
                .map(|field| HeaderField {
                    name: Cow::Owned(field.name.into_owned()),
                    start: field.start,
                    end: field.end,
                    value_start: field.value_start,
                    result: field.result.into_owned(),
                })
                .collect(),
            findings: self.findings,
            codes: self.codes,
            header: self.header,
        }
    }
}

/// One line of the header block: `start..end` is its content, without the line end.
#[derive(Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
}

fn find(raw: &[u8], byte: u8, start: usize, end: usize) -> Option<usize> {
    raw.get(start..end)?
        .iter()
        .position(|&b| b == byte)
        .map(|i| start + i)
}

fn is_blank(byte: Option<&u8>) -> bool {
    matches!(byte, Some(b' ' | b'\t'))
}

fn trim_blank_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    bytes.get(skip..).unwrap_or_default()
}

fn trim_blank_end(bytes: &[u8]) -> &[u8] {
    let keep = bytes.len()
        - bytes
            .iter()
            .rev()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
    bytes.get(..keep).unwrap_or_default()
}

/// Whether a field name (white space already trimmed) is one of [`CHECKED_FIELDS`].
fn is_checked(name: &[u8]) -> bool {
    CHECKED_FIELDS
        .iter()
        .any(|checked| name.eq_ignore_ascii_case(checked.as_bytes()))
}

/// The header block's lines from `start` up to the first empty line.
fn lines(raw: &[u8], start: usize) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut i = start;
    while i < raw.len() {
        let newline = find(raw, b'\n', i, raw.len());
        let next = newline.map_or(raw.len(), |n| n + 1);
        let mut end = newline.unwrap_or(raw.len());
        if end > i && raw.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        if end == i {
            break; // the empty line that ends the header block
        }
        lines.push(Line { start: i, end });
        i = next;
    }
    lines
}

/// The lines grouped into fields: a line starting with SP or HTAB continues the field.
fn groups<'l>(raw: &[u8], lines: &'l [Line]) -> Vec<&'l [Line]> {
    let mut groups = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let mut last = index;
        while lines
            .get(last + 1)
            .is_some_and(|line| is_blank(raw.get(line.start)))
        {
            last += 1;
        }
        groups.push(lines.get(index..=last).unwrap_or_default());
        index = last + 1;
    }
    groups
}

/// Where the header block starts: after a leading mbox `From ` line, if any.
fn block_start(raw: &[u8]) -> usize {
    if raw.starts_with(b"From ")
        && !trim_blank_start(raw.get(5..).unwrap_or_default()).starts_with(b":")
    {
        find(raw, b'\n', 0, raw.len()).map_or(raw.len(), |n| n + 1)
    } else {
        0
    }
}

/// One group of lines of the header block, as [`split`] reads it.
enum Split<'l> {
    /// A field. Its name ends at `name_end` (white space before the colon included);
    /// `colon_line` is the line holding the colon when the name is folded before it
    /// (`From\r\n : ...`).
    Field {
        lines: &'l [Line],
        name_end: usize,
        value_start: usize,
        colon_line: Option<Line>,
    },
    /// Folded lines with no field before them (the block starts with white space).
    Orphan(&'l [Line]),
    /// A field's first line without a colon, the name not folded before one.
    Malformed(&'l [Line]),
}

/// The header block's lines grouped and read as fields: the one splitter of the block.
fn split<'l>(raw: &[u8], lines: &'l [Line]) -> impl Iterator<Item = Split<'l>> {
    groups(raw, lines).into_iter().filter_map(|group| {
        let first = group.first().copied()?;
        if is_blank(raw.get(first.start)) {
            return Some(Split::Orphan(group));
        }
        if let Some(colon) = find(raw, b':', first.start, first.end) {
            return Some(Split::Field {
                lines: group,
                name_end: colon,
                value_start: colon + 1,
                colon_line: None,
            });
        }
        // No colon on the first line: a name folded before its colon, or junk.
        let folded = group
            .iter()
            .skip(1)
            .find_map(|line| find(raw, b':', line.start, line.end).map(|colon| (*line, colon)));
        Some(match folded {
            Some((line, colon))
                if trim_blank_start(raw.get(line.start..line.end).unwrap_or_default())
                    .starts_with(b":") =>
            {
                Split::Field {
                    lines: group,
                    name_end: first.end,
                    value_start: colon + 1,
                    colon_line: Some(line),
                }
            }
            _ => Split::Malformed(group),
        })
    })
}

/// The span of a group's lines, from the start of the first to the end of the last.
fn group_span(lines: &[Line]) -> (usize, usize) {
    let start = lines.first().map_or(0, |line| line.start);
    let end = lines.last().map_or(start, |line| line.end);
    (start, end)
}

/// One field of the header block as written: its name (white space before the colon
/// trimmed), and its unfolded value (the line ends of folding removed, white space at
/// either end trimmed). Malformed lines (no colon, a continuation with no field) are
/// left out, as [`check_message`] leaves them out of its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawField<'a> {
    pub name: &'a [u8],
    /// The span of the whole field in the message, and where its value starts.
    pub start: usize,
    pub end: usize,
    pub value_start: usize,
    pub value: Cow<'a, [u8]>,
}

/// Every field of the header block of `raw`, in order (see [`RawField`]).
pub fn header_fields(raw: &[u8]) -> Vec<RawField<'_>> {
    let lines = lines(raw, block_start(raw));
    split(raw, &lines)
        .filter_map(|split| field_span(raw, &split))
        .map(|span| RawField {
            name: span.name(raw),
            start: span.start,
            end: span.end,
            value_start: span.value_start,
            value: span.value(raw),
        })
        .collect()
}

/// The span of a [`Split::Field`].
fn field_span(raw: &[u8], split: &Split<'_>) -> Option<FieldSpan> {
    let Split::Field {
        lines,
        name_end,
        value_start,
        ..
    } = *split
    else {
        return None;
    };
    let (start, end) = group_span(lines);
    let name = trim_blank_end(raw.get(start..name_end).unwrap_or_default());
    Some(FieldSpan {
        start,
        name_end: start + name.len(),
        value_start,
        end,
    })
}

struct Checker<'a> {
    raw: &'a [u8],
    /// The message-level findings: the same sink, and so the same limit, as a value's.
    findings: Findings,
}

impl<'a> Checker<'a> {
    fn report(&mut self, code: Code, start: usize, end: usize) {
        self.findings.report(code, start, end);
    }

    fn bytes(&self, start: usize, end: usize) -> &'a [u8] {
        self.raw.get(start..end).unwrap_or_default()
    }

    /// A folded line like ` From: x` is part of the field above, but parsers that trim
    /// white space first take it for a field: report it where the name is a checked one.
    fn report_hidden_fields(&mut self, continuations: &[Line]) {
        for line in continuations {
            let text = trim_blank_start(self.bytes(line.start, line.end));
            if let Some(colon) = text.iter().position(|&b| b == b':') {
                if colon > 0 && is_checked(trim_blank_end(text.get(..colon).unwrap_or_default())) {
                    self.report(Code::FieldInContinuation, line.start, line.end);
                }
            }
        }
    }

    /// From exactly once; Sender at most once, and required with several authors; Sender
    /// and Resent-From compared with From by organisational domain.
    fn report_authors(&mut self, fields: &[HeaderField<'a>], block_start: usize) {
        let named = |name: &str| -> Vec<&HeaderField<'a>> {
            fields
                .iter()
                .filter(|field| {
                    trim_blank_end(field.name.as_bytes()).eq_ignore_ascii_case(name.as_bytes())
                })
                .collect()
        };
        let froms = named("from");
        let senders = named("sender");
        let Some(author) = froms.first() else {
            self.report(Code::NoFrom, block_start, block_start);
            return;
        };
        for extra in froms.iter().skip(1) {
            self.report(Code::SeveralFromFields, extra.start, extra.end);
        }
        for extra in senders.iter().skip(1) {
            self.report(Code::SeveralSenderFields, extra.start, extra.end);
        }
        if author.result.mailboxes.len() > 1 && senders.is_empty() {
            self.report(Code::SeveralAuthorsWithoutSender, author.start, author.end);
        }
        // DMARC's relaxed alignment (RFC 7489 §3.2): another mailbox of the author's own
        // organisation (a secretary, the list server of the same domain) is no news.
        let own: HashSet<String> = author
            .result
            .mailboxes
            .iter()
            .map(|mailbox| organisational_domain(&mailbox.domain))
            .collect();
        let resent = named("resent-from");
        let checks = [
            (Code::SenderDiffers, senders.get(..1).unwrap_or_default()),
            (Code::ResentFromDiffers, &resent[..]),
        ];
        for (code, others) in checks {
            for other in others {
                if other
                    .result
                    .mailboxes
                    .iter()
                    .any(|m| !own.contains(&organisational_domain(&m.domain)))
                {
                    self.report(code, other.start, other.end);
                }
            }
        }
    }
}

/// Check the header block of `raw` (a whole message, or just its header).
pub fn check_message(raw: &[u8], profile: Profile) -> MessageCheck<'_> {
    let mut checker = Checker {
        raw,
        findings: Findings::new(Goal::Everything),
    };
    let start = block_start(raw);
    if start > 0 {
        checker.report(Code::MboxFromLine, 0, start);
    }
    let lines = lines(raw, start);
    for line in &lines {
        if line.end - line.start > MAX_LINE_OCTETS {
            checker.report(Code::LineTooLong, line.start + MAX_LINE_OCTETS, line.end);
        }
        for i in line.start..line.end {
            match raw.get(i) {
                Some(0) => checker.report(Code::Nul, i, i + 1),
                Some(b'\r') => checker.report(Code::BareCr, i, i + 1),
                _ => {}
            }
        }
    }

    let mut fields: Vec<HeaderField<'_>> = Vec::new();
    let mut header: Vec<FieldSpan> = Vec::new();
    let mut fields_left_out = false;
    for split in split(raw, &lines) {
        let span = field_span(raw, &split);
        let (group, colon_line) = match split {
            Split::Orphan(group) => {
                let (first, last_end) = group_span(group);
                checker.report(Code::MalformedHeaderLine, first, last_end);
                checker.report_hidden_fields(group);
                continue;
            }
            Split::Malformed(group) => {
                let (first, last_end) = group_span(group);
                checker.report(Code::MalformedHeaderLine, first, last_end);
                continue;
            }
            Split::Field {
                lines, colon_line, ..
            } => (lines, colon_line),
        };
        let Some(span) = span else { continue };
        match colon_line {
            Some(line) => checker.report(Code::FoldedFieldName, span.start, line.end),
            None => {
                checker.report_hidden_fields(group.get(1..).unwrap_or_default());
                let colon = span.value_start - 1;
                if span.name_end != colon {
                    checker.report(Code::ObsFieldNameSpace, span.name_end, colon);
                }
            }
        }
        header.push(span);
        if !is_checked(span.name(raw)) {
            continue;
        }
        if fields.len() == MAX_CHECKED_FIELDS {
            if !fields_left_out {
                checker.report(Code::TooManyFields, span.start, span.end);
                fields_left_out = true;
            }
            continue;
        }
        let value = raw.get(span.value_start..span.end).unwrap_or_default();
        fields.push(HeaderField {
            name: String::from_utf8_lossy(span.name(raw)),
            start: span.start,
            end: span.end,
            value_start: span.value_start,
            result: parse(value, profile),
        });
    }

    checker.report_authors(&fields, start);
    let own_verdict = checker.findings.assessment().verdict;
    let (findings, codes) = checker.findings.into_sorted();
    let verdict = fields
        .iter()
        .map(|f| f.result.verdict)
        .fold(own_verdict, Verdict::max);
    MessageCheck {
        verdict,
        fields,
        findings,
        codes,
        header,
    }
}

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

use std::borrow::Cow;
use std::collections::HashSet;

use crate::deception::normalize_address;
use crate::limits::{MAX_CHECKED_FIELDS, MAX_FINDINGS, MAX_LINE_OCTETS};
use crate::{Code, Finding, Parsed, Profile, Verdict, parse};

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
    let mut fields = Vec::new();
    for group in groups(raw, &lines) {
        let Some(first) = group.first().copied() else {
            continue;
        };
        if is_blank(raw.get(first.start)) {
            continue;
        }
        let colon = group
            .iter()
            .enumerate()
            .find_map(|(i, line)| find(raw, b':', line.start, line.end).map(|c| (i, c)));
        let Some((colon_line, colon)) = colon else {
            continue;
        };
        let name_end = if colon_line == 0 {
            colon
        } else if trim_blank_start(raw.get(group[colon_line].start..colon).unwrap_or_default())
            .is_empty()
        {
            first.end // a name folded before its colon
        } else {
            continue;
        };
        let name = trim_blank_end(raw.get(first.start..name_end).unwrap_or_default());
        let value_start = colon + 1;
        let rest = group.get(colon_line + 1..).unwrap_or_default();
        let head = raw
            .get(value_start..group[colon_line].end)
            .unwrap_or_default();
        let value: Cow<'_, [u8]> = if rest.is_empty() {
            Cow::Borrowed(trim_blank_end(trim_blank_start(head)))
        } else {
            let mut joined = head.to_vec();
            for line in rest {
                joined.extend_from_slice(raw.get(line.start..line.end).unwrap_or_default());
            }
            let trimmed = trim_blank_end(trim_blank_start(&joined)).to_vec();
            Cow::Owned(trimmed)
        };
        let end = group.last().map_or(first.end, |line| line.end);
        fields.push(RawField {
            name,
            start: first.start,
            end,
            value_start,
            value,
        });
    }
    fields
}

struct Checker<'a> {
    raw: &'a [u8],
    findings: Vec<Finding>,
}

impl<'a> Checker<'a> {
    /// As a value's findings: past MAX_FINDINGS one `too-many-findings` (invalid, so
    /// the verdict stays the worst) marks where the ones not kept began.
    fn report(&mut self, code: Code, start: usize, end: usize) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(Finding::new(code, start, end));
        } else if self.findings.len() == MAX_FINDINGS {
            self.findings
                .push(Finding::new(Code::TooManyFindings, start, end));
        }
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
    /// and Resent-From compared with From.
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
        let own: HashSet<String> = author
            .result
            .mailboxes
            .iter()
            .map(mailbox_address)
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
                    .any(|m| !own.contains(&mailbox_address(m)))
                {
                    self.report(code, other.start, other.end);
                }
            }
        }
    }
}

fn mailbox_address(mailbox: &crate::Mailbox<'_>) -> String {
    normalize_address(&format!("{}@{}", mailbox.local_part, mailbox.domain))
}

/// Check the header block of `raw` (a whole message, or just its header).
pub fn check_message(raw: &[u8], profile: Profile) -> MessageCheck<'_> {
    let mut checker = Checker {
        raw,
        findings: Vec::new(),
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
    let mut fields_left_out = false;
    for group in groups(raw, &lines) {
        let Some(first) = group.first().copied() else {
            continue;
        };
        let last_end = group.last().map_or(first.end, |line| line.end);
        if is_blank(raw.get(first.start)) {
            // A folded line with no field before it (the block starts with white space).
            checker.report(Code::MalformedHeaderLine, first.start, last_end);
            checker.report_hidden_fields(group);
            continue;
        }
        let colon = find(raw, b':', first.start, first.end);
        let (name_end, value_start) = match colon {
            Some(colon) => {
                checker.report_hidden_fields(group.get(1..).unwrap_or_default());
                (colon, colon + 1)
            }
            None => {
                // No colon on the first line: a name folded before its colon, or junk.
                let folded = group
                    .iter()
                    .skip(1)
                    .find(|line| find(raw, b':', line.start, line.end).is_some());
                match folded {
                    Some(line)
                        if trim_blank_start(checker.bytes(line.start, line.end))
                            .starts_with(b":") =>
                    {
                        checker.report(Code::FoldedFieldName, first.start, line.end);
                        let value_start =
                            find(raw, b':', line.start, line.end).map_or(line.end, |c| c + 1);
                        (first.end, value_start)
                    }
                    _ => {
                        checker.report(Code::MalformedHeaderLine, first.start, last_end);
                        continue;
                    }
                }
            }
        };
        let raw_name = checker.bytes(first.start, name_end);
        let name = trim_blank_end(raw_name);
        if name.len() != raw_name.len() && colon.is_some() {
            checker.report(Code::ObsFieldNameSpace, first.start + name.len(), name_end);
        }
        let checked = is_checked(name);
        if checked && fields.len() == MAX_CHECKED_FIELDS {
            if !fields_left_out {
                checker.report(Code::TooManyFields, first.start, last_end);
                fields_left_out = true;
            }
        } else if checked {
            let value = checker.bytes(value_start, last_end);
            fields.push(HeaderField {
                name: String::from_utf8_lossy(name),
                start: first.start,
                end: last_end,
                value_start,
                result: parse(value, profile),
            });
        }
    }

    checker.report_authors(&fields, start);
    let mut findings = checker.findings;
    findings.sort_by_key(|f| (f.start, f.end, f.code.index()));
    let verdict = findings
        .iter()
        .map(|f| Verdict::from_severity(f.code.severity()))
        .chain(fields.iter().map(|f| f.result.verdict))
        .max()
        .unwrap_or(Verdict::Valid);
    MessageCheck {
        verdict,
        fields,
        findings,
    }
}

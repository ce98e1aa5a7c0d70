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
//!
//! A field is checked when its name reads as a checked one to some parser: as written,
//! or once trimmed the way lenient parsers trim names ([`reads_as`]). Such a disguised
//! name is reported and counts as that field (a second From is several From fields).
//!
//! Some field findings are explained by the rest of the header block: a mailing list's
//! credit to the author in its own From (`list-attribution`), several authors with a
//! Sender among them (`sender-among-authors`). The field's result keeps its findings;
//! the message verdict is the worst of the message findings and of every field's
//! findings but the explained ones (a bare `parse` of the field keeps its verdict).

use std::borrow::Cow;
use std::collections::HashSet;

use crate::code::{Code, CodeSet, Severity, Verdict};
use crate::deception::normalize_address;
use crate::entry::parse;
use crate::findings::{Findings, Goal};
use crate::limits::{MAX_CHECKED_FIELDS, MAX_LINE_OCTETS};
use crate::model::{Finding, Mailbox, Parsed, Profile};
use crate::psl::organisation;

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
    /// The worst of the message-level findings and of every checked field's findings,
    /// but those the header block explains (`list-attribution`, `sender-among-authors`).
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
    /// Every finding of the message: its own and each checked field's, the fields' spans
    /// moved into the message, ordered as a field's are (start, end, catalogue order).
    pub fn all_findings(&self) -> Vec<Finding> {
        let mut all = self.findings.clone();
        for field in &self.fields {
            let shift = field.value_start;
            all.extend(field.result.findings.iter().map(|finding| {
                Finding::new(finding.code, finding.start + shift, finding.end + shift)
            }));
        }
        // Each field's findings are in order and fields do not overlap: only the
        // message's own need sorting in.
        if !self.findings.is_empty() {
            all.sort_by_key(|finding| (finding.start, finding.end, finding.code.index()));
        }
        all
    }

    /// The codes a policy matches: those of `findings` (`all_findings`) in their order,
    /// then every other code reported, the message's and its fields', in catalogue
    /// order. Findings lists stop at a cap and codes do not, so padding a value past the
    /// cap cannot hide a code from a policy.
    pub fn policy_codes(&self, findings: &[Finding]) -> Vec<Code> {
        let mut listed = CodeSet::default();
        let mut codes = Vec::new();
        for finding in findings {
            if !listed.contains(finding.code) {
                listed.insert(finding.code);
                codes.push(finding.code);
            }
        }
        let reported = self.fields.iter().map(|field| &field.result.codes);
        let reported: CodeSet = std::iter::once(&self.codes)
            .chain(reported)
            .flat_map(CodeSet::iter)
            .collect();
        codes.extend(reported.iter().filter(|&code| !listed.contains(code)));
        codes
    }

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

/// ftext = %d33-57 / %d59-126 (RFC 5322 §3.6.8): printable ASCII but ":".
fn is_ftext_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| matches!(b, 33..=57 | 59..=126))
}

/// What lenient parsers trim around a field name besides the bytes up to SP (JavaMail's
/// `InternetHeaders` trims names with Java's `String.trim()`, which drops every character
/// up to U+0020: controls, NUL, SP): the Unicode white space .NET's `String.Trim()`
/// drops (NEL, NBSP, the Zs spaces, line and paragraph separators; in .NET Framework 3.5
/// also U+200B and the byte-order mark U+FEFF), in UTF-8, then NEL and NBSP as single
/// Latin-1 bytes. Longer sequences first: `C2 A0` is one NBSP, not `C2` and a Latin-1 one.
const TRIMMED_AROUND_NAMES: [&[u8]; 23] = [
    "\u{0085}".as_bytes(),
    "\u{00A0}".as_bytes(),
    "\u{1680}".as_bytes(),
    "\u{2000}".as_bytes(),
    "\u{2001}".as_bytes(),
    "\u{2002}".as_bytes(),
    "\u{2003}".as_bytes(),
    "\u{2004}".as_bytes(),
    "\u{2005}".as_bytes(),
    "\u{2006}".as_bytes(),
    "\u{2007}".as_bytes(),
    "\u{2008}".as_bytes(),
    "\u{2009}".as_bytes(),
    "\u{200A}".as_bytes(),
    "\u{200B}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{2029}".as_bytes(),
    "\u{202F}".as_bytes(),
    "\u{205F}".as_bytes(),
    "\u{3000}".as_bytes(),
    "\u{FEFF}".as_bytes(),
    b"\x85",
    b"\xa0",
];

/// A field name as lenient parsers read it: trimmed at both ends of what they trim
/// ([`TRIMMED_AROUND_NAMES`]). Python's `email` package trims nothing: it ends the
/// header block at the first name outside ftext (and drops a `From :` after the first
/// line as a misplaced mbox line), so that the fields after it are not there for it.
fn lenient_trim(mut name: &[u8]) -> &[u8] {
    // Every byte or sequence trimmed starts and ends outside printable ASCII: a name that
    // starts and ends inside it, as nearly every name does, is as written.
    let printable = |byte: &u8| (b'!'..=b'~').contains(byte);
    if name.first().is_some_and(printable) && name.last().is_some_and(printable) {
        return name;
    }
    loop {
        if let [first, rest @ ..] = name
            && *first <= b' '
        {
            name = rest;
            continue;
        }
        match TRIMMED_AROUND_NAMES
            .iter()
            .find_map(|sequence| name.strip_prefix(*sequence))
        {
            Some(rest) => name = rest,
            None => break,
        }
    }
    loop {
        if let [rest @ .., last] = name
            && *last <= b' '
        {
            name = rest;
            continue;
        }
        match TRIMMED_AROUND_NAMES
            .iter()
            .find_map(|sequence| name.strip_suffix(*sequence))
        {
            Some(rest) => name = rest,
            None => return name,
        }
    }
}

/// The checked field a name reads as, as written or trimmed by a lenient parser (ASCII
/// case ignored, as field names are compared).
fn reads_as(name: &[u8]) -> Option<&'static str> {
    let trimmed = lenient_trim(name);
    CHECKED_FIELDS
        .into_iter()
        .find(|checked| trimmed.eq_ignore_ascii_case(checked.as_bytes()))
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

/// The checked fields sorted by the name lenient parsers read them as (see
/// [`reads_as`]), once per message.
struct Roles<'f, 'a> {
    /// The first From's index in the checked fields: the author field.
    author: Option<usize>,
    froms: Vec<&'f HeaderField<'a>>,
    senders: Vec<&'f HeaderField<'a>>,
    resent: Vec<&'f HeaderField<'a>>,
}

impl<'f, 'a> Roles<'f, 'a> {
    /// `fields` with what each reads as, in the same order.
    fn new(fields: &'f [HeaderField<'a>], reads_as: &[&'static str]) -> Self {
        let mut roles = Roles {
            author: None,
            froms: Vec::new(),
            senders: Vec::new(),
            resent: Vec::new(),
        };
        for (index, (field, role)) in fields.iter().zip(reads_as).enumerate() {
            match *role {
                "from" => {
                    roles.author.get_or_insert(index);
                    roles.froms.push(field);
                }
                "sender" => roles.senders.push(field),
                "resent-from" => roles.resent.push(field),
                _ => {}
            }
        }
        roles
    }
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
            if let Some(colon) = text.iter().position(|&b| b == b':')
                && colon > 0
                && reads_as(text.get(..colon).unwrap_or_default()).is_some()
            {
                self.report(Code::FieldInContinuation, line.start, line.end);
            }
        }
    }

    /// A field name outside ftext (RFC 5322 §3.6.8), `From\u{A0}:` or a byte-order mark
    /// before `From:` say, is no field to a strict parser and ends the header block for
    /// Python's `email`; when a lenient parser's trimming makes a checked name of it, it
    /// is a field that some programs read and others do not: reported as disguised, and
    /// checked as that field.
    fn report_field_name(&mut self, span: &FieldSpan) {
        let name = span.name(self.raw);
        if is_ftext_name(name) {
            return;
        }
        // An empty name is pointed at by its colon.
        let end = if span.name_end > span.start {
            span.name_end
        } else {
            span.value_start
        };
        self.report(Code::MalformedFieldName, span.start, end);
        if reads_as(name).is_some() {
            self.report(Code::DisguisedFieldName, span.start, end);
        }
    }

    /// From exactly once; Sender at most once, and required with several authors; Sender
    /// and Resent-From compared with From by organisational domain. True when a Sender
    /// or Resent-From names another organisation than the From's.
    fn report_authors(&mut self, roles: &Roles<'_, 'a>, block_start: usize) -> bool {
        let Some(author) = roles.froms.first() else {
            self.report(Code::NoFrom, block_start, block_start);
            return false;
        };
        for extra in roles.froms.iter().skip(1) {
            self.report(Code::SeveralFromFields, extra.start, extra.end);
        }
        for extra in roles.senders.iter().skip(1) {
            self.report(Code::SeveralSenderFields, extra.start, extra.end);
        }
        if author.result.mailboxes.len() > 1 && roles.senders.is_empty() {
            self.report(Code::SeveralAuthorsWithoutSender, author.start, author.end);
        }
        let checks = [
            (
                Code::SenderDiffers,
                roles.senders.get(..1).unwrap_or_default(),
            ),
            (Code::ResentFromDiffers, &roles.resent[..]),
        ];
        if checks.iter().all(|(_, others)| others.is_empty()) {
            return false; // nearly every message: no organisation to look up
        }
        // DMARC's relaxed alignment (RFC 7489 §3.2): another mailbox of the author's own
        // organisation (a secretary, the list server of the same domain) is no news; at a
        // shared mailbox provider another mailbox is another person.
        let own: HashSet<String> = author
            .result
            .mailboxes
            .iter()
            .map(|mailbox| organisation(&mailbox.local_part, &mailbox.domain))
            .collect();
        let mut elsewhere = false;
        for (code, others) in checks {
            for other in others {
                if other
                    .result
                    .mailboxes
                    .iter()
                    .any(|m| !own.contains(&organisation(&m.local_part, &m.domain)))
                {
                    self.report(code, other.start, other.end);
                    elsewhere = true;
                }
            }
        }
        elsewhere
    }

    /// Outlook does not recognise a From written with more than its name before the
    /// colon (`From :`, a name folded before its colon, a disguised name) and shows the
    /// Sender instead (Chen, Paxson, Jiang, "Composition Kills", USENIX Security 2020,
    /// Fig. 6): with a Sender or Resent-From of another organisation than the From's
    /// (`sender_elsewhere`, from [`Checker::report_authors`]), the reader is shown that
    /// sender.
    fn report_odd_from_sender(&mut self, roles: &Roles<'_, 'a>, sender_elsewhere: bool) {
        let Some(author) = roles.froms.first() else {
            return;
        };
        if sender_elsewhere && !self.field_name(author).eq_ignore_ascii_case(b"from") {
            self.report(Code::OddFromOtherSender, author.start, author.end);
        }
    }

    /// A checked field's name as written: up to its colon, the white space or line break
    /// before the colon included.
    fn field_name(&self, field: &HeaderField<'_>) -> &'a [u8] {
        self.bytes(field.start, field.value_start.saturating_sub(1))
    }

    /// The author field's findings that the rest of the header block explains: the
    /// author field's index in `fields` and the explained codes, each reported with a
    /// message-level finding of its own.
    fn explain(&mut self, roles: &Roles<'_, 'a>, header: &[FieldSpan]) -> Option<(usize, CodeSet)> {
        let author = roles.author?;
        let field = roles.froms.first()?;
        let mut explained = CodeSet::default();
        if self.report_list_attribution(field, header) {
            explained.insert(Code::AddressInDisplayName);
        }
        if self.report_sender_among_authors(field, &roles.senders) {
            explained.insert(Code::SeveralAuthors);
        }
        Some((author, explained))
    }

    /// A mailing list that rewrites From to its own address credits the author in the
    /// display name: Google Groups writes `"'jane@example.com' via Group" <group@...>`
    /// (Gmail Help, "Extra info next to sender's name"), Mailman's `from_is_list` and
    /// Sympa "Jane Doe via List". With a List-Post naming that address or a List-Id under
    /// its domain (RFC 2369 §3.4, RFC 2919), and the credit's " via ", an address in the
    /// display name is that attribution, not a forged sender. Without the credit the
    /// reader is shown the address as the sender, whoever added the list fields.
    fn report_list_attribution(&mut self, field: &HeaderField<'a>, header: &[FieldSpan]) -> bool {
        let [mailbox] = field.result.mailboxes.as_slice() else {
            return false;
        };
        let credits = mailbox
            .display_name
            .as_deref()
            .is_some_and(|name| name.contains(" via "));
        if !credits || !field.result.codes.contains(Code::AddressInDisplayName) {
            return false;
        }
        let address = mailbox_address(mailbox);
        let under_domain = format!(".{}", mailbox.domain.to_ascii_lowercase());
        let is_list = header.iter().any(|span| {
            let name = span.name(self.raw);
            let value = span.value(self.raw);
            if name.eq_ignore_ascii_case(b"list-post") {
                angle_contents(&value).any(|url| {
                    mailto(url).is_some_and(|to| {
                        normalize_address(&String::from_utf8_lossy(to)) == address
                    })
                })
            } else if name.eq_ignore_ascii_case(b"list-id") {
                angle_contents(&value)
                    .any(|id| id.to_ascii_lowercase().ends_with(under_domain.as_bytes()))
            } else {
                false
            }
        });
        if is_list {
            self.report(Code::ListAttribution, field.start, field.end);
        }
        is_list
    }

    /// Several authors and a Sender that is one of them: what RFC 5322 §3.6.2 asks for
    /// (the Sender is the author responsible for sending), and what Exchange Online
    /// accepts where it rejects several authors alone.
    fn report_sender_among_authors(
        &mut self,
        field: &HeaderField<'a>,
        senders: &[&HeaderField<'a>],
    ) -> bool {
        if field.result.mailboxes.len() < 2 {
            return false;
        }
        let Some(sender) = senders.first() else {
            return false;
        };
        let [mailbox] = sender.result.mailboxes.as_slice() else {
            return false;
        };
        let address = mailbox_address(mailbox);
        let among = field
            .result
            .mailboxes
            .iter()
            .any(|author| mailbox_address(author) == address);
        if among {
            self.report(Code::SenderAmongAuthors, sender.start, sender.end);
        }
        among
    }
}

fn mailbox_address(mailbox: &Mailbox<'_>) -> String {
    normalize_address(&format!("{}@{}", mailbox.local_part, mailbox.domain))
}

/// What each `<...>` of a field value holds, left to right.
fn angle_contents(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = value;
    std::iter::from_fn(move || {
        let open = rest.iter().position(|&b| b == b'<')?;
        let after = rest.get(open + 1..)?;
        let close = after.iter().position(|&b| b == b'>')?;
        rest = after.get(close + 1..).unwrap_or_default();
        after.get(..close)
    })
}

/// The address of a `mailto:` URL (RFC 6068), without its `?` fields.
fn mailto(url: &[u8]) -> Option<&[u8]> {
    let url = trim_blank_end(trim_blank_start(url));
    let scheme = url.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"mailto:") {
        return None;
    }
    let to = url.get(7..)?;
    Some(to.split(|&b| b == b'?').next().unwrap_or_default())
}

/// A field's verdict without the codes the header block explains.
fn verdict_without(result: &Parsed<'_>, explained: &CodeSet) -> Verdict {
    if explained.is_empty() {
        return result.verdict;
    }
    let worst = result
        .codes
        .iter()
        .filter(|&code| !explained.contains(code))
        .map(Code::severity)
        .max()
        .unwrap_or(Severity::Info);
    Verdict::from_severity(worst)
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
    let mut fields_read_as: Vec<&'static str> = Vec::new();
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
        checker.report_field_name(&span);
        header.push(span);
        let Some(read_as) = reads_as(span.name(raw)) else {
            continue;
        };
        if fields.len() == MAX_CHECKED_FIELDS {
            if !fields_left_out {
                checker.report(Code::TooManyFields, span.start, span.end);
                fields_left_out = true;
            }
            continue;
        }
        let value = raw.get(span.value_start..span.end).unwrap_or_default();
        fields_read_as.push(read_as);
        fields.push(HeaderField {
            name: String::from_utf8_lossy(span.name(raw)),
            start: span.start,
            end: span.end,
            value_start: span.value_start,
            result: parse(value, profile),
        });
    }

    let roles = Roles::new(&fields, &fields_read_as);
    let sender_elsewhere = checker.report_authors(&roles, start);
    checker.report_odd_from_sender(&roles, sender_elsewhere);
    let explained = checker.explain(&roles, &header);
    let own_verdict = checker.findings.assessment().verdict;
    let (findings, codes) = checker.findings.into_sorted();
    let verdict = fields
        .iter()
        .enumerate()
        .map(|(k, field)| match &explained {
            Some((author, codes)) if *author == k => verdict_without(&field.result, codes),
            _ => field.result.verdict,
        })
        .fold(own_verdict, Verdict::max);
    MessageCheck {
        verdict,
        fields,
        findings,
        codes,
        header,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_lenient_parsers_trim_them() {
        for name in [
            &b"From"[..],
            b"FROM",
            b"From \t",
            b"\xef\xbb\xbfFrom",
            b"From\xc2\xa0",
            b"From\xa0",
            b"From\x85",
            b"\x0bFrom\x0c",
            b"From\x00",
            b"\xe2\x80\x8bFrom\xe3\x80\x80",
            b"From\xe2\x80\x85",
        ] {
            assert_eq!(reads_as(name), Some("from"), "{name:?}");
        }
        assert_eq!(reads_as(b"Resent-From\xc2\xa0"), Some("resent-from"));
        // Only around the name: what is inside it stays, and other bytes are not trimmed.
        for name in [
            &b"Fr\xc2\xa0om"[..],
            b"From\xc2",
            b"From\xe3\x80\xa0",
            b"From\x7f",
            b"X-From",
            b"",
        ] {
            assert_eq!(reads_as(name), None, "{name:?}");
        }
    }

    #[test]
    fn ftext_names() {
        assert!(is_ftext_name(b"X-Mailer"));
        assert!(is_ftext_name(b"!~"));
        for name in [&b""[..], b"X Mailer", b"From\xa0", b"\x7fX", b"A\x00"] {
            assert!(!is_ftext_name(name), "{name:?}");
        }
    }

    #[test]
    fn list_fields_are_read_for_their_urls() {
        let contents: Vec<&[u8]> =
            angle_contents(b"List <a.b.example>, <mailto:a@b.example?subject=x> <open").collect();
        assert_eq!(
            contents,
            [&b"a.b.example"[..], b"mailto:a@b.example?subject=x"]
        );
        assert_eq!(
            mailto(b" MAILTO:list@x.example?subject=hi"),
            Some(&b"list@x.example"[..])
        );
        assert_eq!(mailto(b"https://x.example/post"), None);
        assert_eq!(mailto(b"mail"), None);
    }

    /// A raw Latin-1 NBSP (A0) or NEL (85) before the colon, which the case file (text)
    /// cannot hold: a second From to a parser that reads the name as Latin-1 and trims it.
    #[test]
    fn latin1_white_space_before_the_colon() {
        for raw in [
            &b"From: <m@mallory.example>\r\nFrom\xa0: <ceo@bank.example>\r\n\r\n"[..],
            b"From: <m@mallory.example>\r\nFrom\x85: <ceo@bank.example>\r\n\r\n",
        ] {
            let checked = check_message(raw, Profile::default());
            let findings: Vec<(Code, usize, usize)> = checked
                .findings
                .iter()
                .map(|f| (f.code, f.start, f.end))
                .collect();
            assert_eq!(
                findings,
                [
                    (Code::DisguisedFieldName, 27, 32),
                    (Code::MalformedFieldName, 27, 32),
                    (Code::SeveralFromFields, 27, 52),
                ]
            );
            assert_eq!(checked.fields.len(), 2);
            assert_eq!(checked.verdict, Verdict::Invalid);
        }
    }
}

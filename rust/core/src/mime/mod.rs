//! Header fields and a body warning added to a raw message, changing nothing else: the
//! port of the Python reference `fromguard/reference/mime.py`, whose documentation says
//! where the warning goes and why; both engines give the same bytes and notes.
//!
//! The MIME structure is read in place (`&[u8]`, delimiter lines found with `memchr` and
//! `memmem`, the few header fields needed read as Python's `email` package reads them,
//! `header.rs`); the rewrite is a list of [`Edit`]s applied in one copy. Only what an
//! insertion point needs is decoded (`transfer.rs`). The charsets of text parts are the
//! caller's ([`WarningEncoder`]). The boundary of a wrapping `multipart/mixed` comes from
//! the caller, so the rewrite is deterministic.

mod encoder;
mod header;
mod transfer;

pub use encoder::{Builtin, BuiltinEncoder, CharsetInfo, WarningEncoder};

use header::{Field, Param, Values, py_strip};
use memchr::memmem;

/// How deep multiparts are searched for the main body.
pub const MAX_DEPTH: usize = 32;
/// Delimiter lines read in one message, all multiparts together.
pub const MAX_PARTS: usize = 1000;
/// Text parts that get the warning in place; more, and it gets a part of its own.
pub const MAX_WARNED_PARTS: usize = 16;
/// Bytes of an HTML part searched for `<body>`; past them the warning goes first.
pub const HTML_HEAD_LIMIT: usize = 256 << 10;
/// Longer base64 lines are not rewritten (a line is decoded and encoded whole).
pub const MAX_BASE64_LINE: usize = 998;
/// Bytes a `<body ...>` tag may span; a longer one counts as none.
pub const BODY_TAG_LIMIT: usize = 16 << 10;
/// The style of the HTML warning's paragraph.
pub const HTML_STYLE: &str =
    "border:1px solid #b00000;padding:4px 8px;background:#fff4f4;color:#600000";

const CRLF: &[u8] = b"\r\n";
const LF: &[u8] = b"\n";
const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";
const QP_FIRST_CHUNK: usize = 2048;
const BASE64_FIRST_LINES: usize = 16;
/// Decoded bytes of a base64 HTML part past which no `<body>` tag can end within the
/// limits: where its search stops.
const BASE64_HEAD_READ: usize = HTML_HEAD_LIMIT + BODY_TAG_LIMIT;
/// The note on a warning left in place, where only the body may change, in a message
/// whose header block the `email` package ends early.
const EARLY_IN_PLACE: &str =
    "warning in place, which those readers may not show (only the body may change)";
const BAD_BASE64: &str = "a text part whose base64 does not decode strictly, in regular lines";
const BASE64_SPACE: &[u8] = b" \t\r\n\x0b\x0c";

/// The warning to prepend: `text` (lines separated by `\n`) and `ascii_text`, what a
/// plain-text part gets when its charset cannot represent `text` (ASCII, or the rewrite
/// fails with [`RewriteError::NotAscii`] when it needs it).
#[derive(Clone, Copy, Debug)]
pub struct Warning<'a> {
    pub text: &'a str,
    pub ascii_text: &'a str,
}

/// One change: `raw[start..end]` replaced by `data` (an insertion when they are equal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub data: Vec<u8>,
}

/// The rewrite: the edits to make (sorted, none overlapping; none: the message stays
/// as it is), what the caller should know (notes), and how many parts received the
/// warning.
#[derive(Clone, Debug, Default)]
pub struct Rewrite {
    pub edits: Vec<Edit>,
    pub notes: Vec<String>,
    pub warned: usize,
}

impl Rewrite {
    /// The length of the rewritten `raw`.
    pub fn len(&self, raw: &[u8]) -> usize {
        let removed: usize = self.edits.iter().map(|edit| edit.end - edit.start).sum();
        let added: usize = self.edits.iter().map(|edit| edit.data.len()).sum();
        raw.len() - removed + added
    }

    /// The rewritten `raw`, written into `out` (`len(raw)` bytes): one copy, the kept
    /// stretches read in place.
    pub fn write(&self, raw: &[u8], out: &mut [u8]) {
        let mut position = 0;
        let mut written = 0;
        let mut put = |data: &[u8]| {
            out[written..written + data.len()].copy_from_slice(data);
            written += data.len();
        };
        for edit in &self.edits {
            put(&raw[position..edit.start]);
            put(&edit.data);
            position = edit.end;
        }
        put(&raw[position..]);
    }

    /// The rewritten `raw`.
    pub fn message(&self, raw: &[u8]) -> Vec<u8> {
        let mut out = vec![0; self.len(raw)];
        self.write(raw, &mut out);
        out
    }
}

/// Why a rewrite returned no message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RewriteError<E> {
    /// The encoder failed.
    Encoder(E),
    /// A header field or the warning's ASCII form that must be ASCII is not.
    NotAscii(&'static str),
    /// Two edits overlap: a bug of the rewrite, never the input's.
    Overlap,
}

/// Inside: a part the warning cannot be written into (the reason), or a failure.
enum Fault<E> {
    Unwritable(String),
    Failed(RewriteError<E>),
}

type Step<T, E> = Result<T, Fault<E>>;

fn unwritable<T, E>(reason: impl Into<String>) -> Step<T, E> {
    Err(Fault::Unwritable(reason.into()))
}

/// One MIME entity: `raw[start..body_start]` its header block with the empty line,
/// `raw[body_start..end]` its body (`has_body` false: no empty line, `body_start == end`).
#[derive(Clone, Debug)]
struct Entity {
    start: usize,
    body_start: usize,
    end: usize,
    eol: &'static [u8],
    has_body: bool,
    fields: Vec<Field>,
    values: Values,
    ctype: String,
    disposition: Option<String>,
}

impl Entity {
    fn is_multipart(&self) -> bool {
        self.ctype.starts_with("multipart/")
    }

    fn param(&self, name: &str) -> Param {
        self.values
            .content_type
            .as_deref()
            .map_or(Param::Missing, |value| header::param(value, name))
    }
}

/// Add `headers` (name, value; ASCII, empty values skipped) at the top of the header
/// block (a wrapping multipart's fields after them) and, if given, prepend `warning` to
/// the main text parts. `body_only`: the header block must stay as it is, so the message
/// is never wrapped; `boundary` gives the boundary of the `multipart/mixed` a message is
/// wrapped in, asked for only then (a random one costs a system call).
pub fn rewrite<E: WarningEncoder>(
    raw: &[u8],
    headers: &[(&str, &str)],
    warning: Option<Warning<'_>>,
    body_only: bool,
    boundary: &mut dyn FnMut() -> Result<Vec<u8>, E::Error>,
    encoder: &mut E,
) -> Result<Rewrite, RewriteError<E::Error>> {
    let mut notes = Vec::new();
    let mut edits = Vec::new();
    let top = top_start(raw);
    let eol = eol_of(raw, top, raw.len(), CRLF);
    let mut fields = Vec::new();
    for (name, value) in headers {
        if !value.is_empty() {
            fields.extend(folded_field(name, value, eol)?);
        }
    }
    if !fields.is_empty() {
        // After lines of white space that open the header block: in front of them, the
        // added fields would take them in as continuation lines.
        let head = header::past_continuations(raw, top, raw.len());
        edits.push(Edit {
            start: head,
            end: head,
            data: fields,
        });
    }
    let mut warned = 0;
    if let Some(warning) = warning {
        let entity = entity(raw, top, raw.len(), eol, false, None);
        if !entity.has_body {
            notes.push("message has no body: warning not added".to_owned());
        } else {
            let mut reader = Reader::new(raw);
            let found = reader.targets(&entity, &mut notes).and_then(|targets| {
                // Wrapped, every reader sees the warning part; where only the body may
                // change, the warning in place is still what most readers show.
                let early = read_early(raw, &entity, &targets);
                if let Some(reason) = early
                    && !body_only
                {
                    return unwritable(reason);
                }
                let edits = targets
                    .iter()
                    .map(|part| warn_part(raw, part, warning, &mut notes, encoder))
                    .collect::<Step<Vec<_>, _>>()?;
                if overlapping(&edits) {
                    return unwritable("text parts that overlap (a multipart not closed)");
                }
                if let Some(reason) = early {
                    notes.push(format!("{reason}: {EARLY_IN_PLACE}"));
                }
                Ok((targets.is_empty(), edits))
            });
            match found {
                Ok((no_targets, found)) => {
                    warned = found.len();
                    edits.extend(found);
                    if no_targets && notes.is_empty() {
                        notes.push("no text part for the warning".to_owned());
                    }
                }
                Err(Fault::Unwritable(reason)) => {
                    notes.clear();
                    let placed = warning_part_edits(
                        raw, &entity, warning, &reason, &mut notes, body_only, boundary,
                    )
                    .map_err(RewriteError::Encoder)?;
                    warned = usize::from(!placed.is_empty());
                    edits.extend(placed);
                }
                Err(Fault::Failed(error)) => return Err(error),
            }
        }
    }
    if edits.is_empty() {
        return Ok(Rewrite {
            edits,
            notes,
            warned: 0,
        });
    }
    edits.sort_by_key(|edit| (edit.start, edit.end));
    let mut position = 0;
    for edit in &edits {
        if edit.start < position || edit.end < edit.start || edit.end > raw.len() {
            return Err(RewriteError::Overlap);
        }
        position = edit.end;
    }
    Ok(Rewrite {
        edits,
        notes,
        warned,
    })
}

/// Why the email package ends a header block that matters to the warning before the
/// rewrite does (the reference's `_read_early`): the message's (read from its first
/// line, an mbox line included) when the warning would be written in place, and each
/// text part's that would get it.
fn read_early(raw: &[u8], top: &Entity, targets: &[Entity]) -> Option<&'static str> {
    if targets.is_empty() {
        return None;
    }
    let nested = targets
        .iter()
        .filter(|part| part.start > top.start && part.has_body)
        .map(|part| (part.start, part.body_start));
    std::iter::once((0, top.body_start))
        .chain(nested)
        .find_map(|(start, body_start)| header::ended_early(raw, start, body_start))
}

/// Whether two edits overlap: two targets share bytes when a multipart whose close
/// delimiter is missing reads its last part up to its parent's end, over the parts of
/// the parent that follow it.
fn overlapping(edits: &[Edit]) -> bool {
    let mut spans: Vec<(usize, usize)> = edits.iter().map(|edit| (edit.start, edit.end)).collect();
    spans.sort_unstable();
    let mut position = 0;
    for (start, end) in spans {
        if start < position {
            return true;
        }
        position = end;
    }
    false
}

/// Where the header block starts: after a leading mbox `From ` line (not a field named
/// `From`).
fn top_start(raw: &[u8]) -> usize {
    let Some(rest) = raw.strip_prefix(b"From ") else {
        return 0;
    };
    let after_space = rest
        .iter()
        .position(|&byte| byte != b' ' && byte != b'\t')
        .unwrap_or(rest.len());
    if rest.get(after_space) == Some(&b':') {
        return 0;
    }
    // The line ends as the email package ends it, at a bare CR too: fields written after
    // a CR inside it would be body to that reader.
    header::line_end(raw, 0, raw.len())
}

/// Where the message's body starts: after the empty line that ends its header block
/// (the end when there is none).
pub fn body_start(raw: &[u8]) -> usize {
    entity(raw, top_start(raw), raw.len(), CRLF, false, None).body_start
}

/// The line end a region uses (its first one).
fn eol_of(raw: &[u8], start: usize, end: usize, default: &'static [u8]) -> &'static [u8] {
    match memchr::memchr(b'\n', &raw[start..end]) {
        None => default,
        Some(at) if at > 0 && raw[start + at - 1] == b'\r' => CRLF,
        Some(_) => LF,
    }
}

/// Python's `str.split()` white space, for the ASCII a header value holds.
fn is_split_space(byte: u8) -> bool {
    matches!(byte, b'\t'..=b'\r' | 0x1c..=0x1f | b' ')
}

/// One header field, folded at spaces to keep lines within 78 characters.
pub fn folded_field<E>(name: &str, value: &str, eol: &[u8]) -> Result<Vec<u8>, RewriteError<E>> {
    if !name.is_ascii() || !value.is_ascii() {
        return Err(RewriteError::NotAscii("a header field"));
    }
    let prefix = format!("{name}:");
    let mut out = Vec::with_capacity(prefix.len() + value.len() + 8);
    let mut current = prefix.clone().into_bytes();
    for word in value
        .as_bytes()
        .split(|&byte| is_split_space(byte))
        .filter(|word| !word.is_empty())
    {
        if current.len() + 1 + word.len() > 78 && current != prefix.as_bytes() {
            out.extend_from_slice(&current);
            out.extend_from_slice(eol);
            current.clear();
        }
        current.push(b' ');
        current.extend_from_slice(word);
    }
    out.extend_from_slice(&current);
    out.extend_from_slice(eol);
    Ok(out)
}

/// Where the empty line that ends the header block in `raw[start..end]` starts.
fn header_end(raw: &[u8], start: usize, end: usize) -> Option<usize> {
    let block = &raw[start..end];
    if block.starts_with(LF) || block.starts_with(CRLF) {
        return Some(start);
    }
    memchr::memchr_iter(b'\n', block)
        .find(|&at| match block.get(at + 1) {
            Some(b'\n') => true,
            Some(b'\r') => block.get(at + 2) == Some(&b'\n'),
            _ => false,
        })
        .map(|at| start + at + 1)
}

/// The entity in `raw[start..end]`; `empty`, where the caller knows it, is where its
/// header block ends.
fn entity(
    raw: &[u8],
    start: usize,
    end: usize,
    eol: &'static [u8],
    digest: bool,
    empty: Option<Option<usize>>,
) -> Entity {
    let eol = eol_of(raw, start, end, eol);
    let empty = empty.unwrap_or_else(|| header_end(raw, start, end));
    let (fields, values) = header::fields(raw, start, empty.unwrap_or(end));
    let ctype = header::content_type(
        values.content_type.as_deref(),
        if digest {
            "message/rfc822"
        } else {
            "text/plain"
        },
    );
    let disposition = header::disposition(values.disposition.as_deref());
    let body_start = match empty {
        Some(empty) => empty + memchr::memchr(b'\n', &raw[empty..end]).map_or(0, |at| at + 1),
        None => end,
    };
    Entity {
        start,
        body_start,
        end,
        eol,
        has_body: empty.is_some(),
        fields,
        values,
        ctype,
        disposition,
    }
}

/// A delimiter line: where it starts, where the next line starts, whether it closes.
#[derive(Clone, Copy, Debug)]
struct Delimiter {
    start: usize,
    next: usize,
    close: bool,
}

/// The multiparts' reader: counts the delimiter lines read, and remembers the last
/// search for an empty line (parts without one would each search the rest again).
struct Reader<'r> {
    raw: &'r [u8],
    parts: usize,
    empty_line: (usize, usize, Option<usize>),
}

fn untouchable(ctype: &str) -> Option<&'static str> {
    match ctype {
        "multipart/signed" => Some("signed part left untouched: multipart/signed"),
        "multipart/encrypted" => Some("encrypted part left untouched: multipart/encrypted"),
        "application/pkcs7-mime" => {
            Some("signed or encrypted part left untouched: application/pkcs7-mime")
        }
        "application/x-pkcs7-mime" => {
            Some("signed or encrypted part left untouched: application/x-pkcs7-mime")
        }
        _ => None,
    }
}

fn is_text(ctype: &str) -> bool {
    ctype == "text/plain" || ctype == "text/html"
}

fn count_part<E>(parts: &mut usize) -> Step<(), E> {
    *parts += 1;
    if *parts > MAX_PARTS {
        return unwritable(format!("more than {MAX_PARTS} MIME parts"));
    }
    Ok(())
}

impl<'r> Reader<'r> {
    fn new(raw: &'r [u8]) -> Self {
        Reader {
            raw,
            parts: 0,
            empty_line: (0, 0, None),
        }
    }

    fn header_end(&mut self, start: usize, end: usize) -> Option<usize> {
        let block = &self.raw[start..end];
        if block.starts_with(LF) || block.starts_with(CRLF) {
            return Some(start);
        }
        let (searched_from, up_to, found) = self.empty_line;
        if searched_from <= start && up_to == end && found.is_none_or(|found| found > start) {
            return found;
        }
        let found = header_end(self.raw, start, end);
        self.empty_line = (start, end, found);
        found
    }

    /// The text parts of the main body of `entity` that should carry the warning.
    fn targets<E>(&mut self, entity: &Entity, notes: &mut Vec<String>) -> Step<Vec<Entity>, E> {
        let found = self.targets_within(entity, 0, notes)?;
        if found.len() > MAX_WARNED_PARTS {
            return unwritable(format!(
                "more than {MAX_WARNED_PARTS} text parts for the warning"
            ));
        }
        Ok(found)
    }

    fn targets_within<E>(
        &mut self,
        entity: &Entity,
        depth: usize,
        notes: &mut Vec<String>,
    ) -> Step<Vec<Entity>, E> {
        let ctype = entity.ctype.as_str();
        if let Some(note) = untouchable(ctype) {
            notes.push(note.to_owned());
            return Ok(Vec::new());
        }
        if entity.disposition.as_deref() == Some("attachment") {
            return Ok(Vec::new());
        }
        if is_text(ctype) {
            return Ok(vec![entity.clone()]);
        }
        if !entity.is_multipart() {
            return Ok(Vec::new());
        }
        if depth >= MAX_DEPTH {
            return unwritable(format!("MIME nesting deeper than {MAX_DEPTH}"));
        }
        if ctype == "multipart/alternative" {
            let mut found = Vec::new();
            let mut children = Children::new(entity);
            while let Some(child) = children.next(self)? {
                found.extend(self.targets_within(&child, depth + 1, notes)?);
                if found.len() > MAX_WARNED_PARTS {
                    break;
                }
            }
            return Ok(found);
        }
        if ctype == "multipart/related" {
            let start = match entity.param("start") {
                Param::Missing => None,
                Param::Value(start) => Some(start),
                Param::Rfc2231 => return unwritable(rfc2231("start")),
            };
            let root = self.related_root(Children::new(entity), start)?;
            return match root {
                None => Ok(Vec::new()),
                Some(root) => self.targets_within(&root, depth + 1, notes),
            };
        }
        let mut children = Children::new(entity);
        while let Some(child) = children.next(self)? {
            if child.disposition.as_deref() == Some("attachment") {
                continue;
            }
            if is_text(&child.ctype) || untouchable(&child.ctype).is_some() || child.is_multipart()
            {
                return self.targets_within(&child, depth + 1, notes);
            }
        }
        Ok(Vec::new())
    }

    /// The root of a multipart/related: the part named by `start`, else the first.
    fn related_root<E>(
        &mut self,
        mut children: Children<'_>,
        start: Option<String>,
    ) -> Step<Option<Entity>, E> {
        let Some(first) = children.next(self)? else {
            return Ok(None);
        };
        let Some(start) = start else {
            return Ok(Some(first));
        };
        let mut all = vec![first];
        while let Some(child) = children.next(self)? {
            all.push(child);
        }
        let wanted = py_strip(&start);
        let named = all
            .iter()
            .position(|child| py_strip(child.values.content_id.as_deref().unwrap_or("")) == wanted);
        Ok(Some(all.swap_remove(named.unwrap_or(0))))
    }

    /// The first delimiter line in `raw[start..end]` that starts there or after a line
    /// break. A line that only starts like one counts as a part: each costs a search.
    fn delimiter_line<E>(
        &mut self,
        boundary: &Boundary,
        start: usize,
        end: usize,
    ) -> Step<Option<Delimiter>, E> {
        let raw = self.raw;
        let (delimiter, finder) = (boundary.delimiter.as_slice(), &boundary.finder);
        let mut start = start;
        let mut found = raw[start..end].starts_with(delimiter).then_some(start);
        loop {
            let at = match found {
                Some(at) => at,
                None => match finder.find(&raw[start..end]) {
                    Some(at) => start + at + 1,
                    None => return Ok(None),
                },
            };
            let next = memchr::memchr(b'\n', &raw[at..end]).map_or(end, |newline| at + newline + 1);
            let rest = raw.get(at + delimiter.len()..next).unwrap_or_default();
            let rest = trim_end(rest, b"\r\n");
            if trim_end(rest, b" \t").is_empty() {
                return Ok(Some(Delimiter {
                    start: at,
                    next,
                    close: false,
                }));
            }
            if rest.starts_with(b"--") && trim_end(&rest[2..], b" \t").is_empty() {
                return Ok(Some(Delimiter {
                    start: at,
                    next,
                    close: true,
                }));
            }
            count_part(&mut self.parts)?;
            start = next - 1;
            found = None;
        }
    }
}

/// A multipart's delimiter (`--` and the boundary), and the searcher for it at the start
/// of a line.
struct Boundary {
    delimiter: Vec<u8>,
    finder: memmem::Finder<'static>,
}

impl Boundary {
    fn new(delimiter: Vec<u8>) -> Self {
        let finder = memmem::Finder::new(&[LF, &delimiter].concat()).into_owned();
        Boundary { delimiter, finder }
    }
}

fn trim_end<'a>(bytes: &'a [u8], set: &[u8]) -> &'a [u8] {
    let kept = bytes
        .iter()
        .rposition(|byte| !set.contains(byte))
        .map_or(0, |at| at + 1);
    &bytes[..kept]
}

fn rfc2231(name: &str) -> String {
    format!("an RFC 2231 {name} parameter")
}

/// The body parts of a multipart (RFC 2046 §5.1.1), read lazily: a multipart child is
/// read with its parent's end as its own (its end is where the parent's next delimiter
/// line is), and its parent's next delimiter line is searched for only after it.
struct Children<'e> {
    parent: &'e Entity,
    boundary: Option<Boundary>,
    line: Option<Delimiter>,
    /// The start of a multipart child given out, whose following delimiter line is
    /// still to be found.
    resume: Option<usize>,
}

impl<'e> Children<'e> {
    fn new(parent: &'e Entity) -> Self {
        Children {
            parent,
            boundary: None,
            line: None,
            resume: None,
        }
    }

    fn next<E>(&mut self, reader: &mut Reader<'_>) -> Step<Option<Entity>, E> {
        let parent = self.parent;
        let raw = reader.raw;
        if self.boundary.is_none() {
            let boundary = Boundary::new(delimiter_of(parent)?);
            let line = reader.delimiter_line(&boundary, parent.body_start, parent.end)?;
            if line.is_none_or(|line| line.close) {
                return unwritable(format!(
                    "malformed MIME: {} whose boundary never occurs",
                    shown(&parent.ctype)
                ));
            }
            self.line = line;
            self.boundary = Some(boundary);
        }
        let Some(delimiter) = &self.boundary else {
            return Ok(None);
        };
        if let Some(part_start) = self.resume.take() {
            self.line = reader.delimiter_line(delimiter, part_start, parent.end)?;
        }
        let Some(line) = self.line.filter(|line| !line.close) else {
            return Ok(None);
        };
        count_part(&mut reader.parts)?;
        let digest = parent.ctype == "multipart/digest";
        let part_start = line.next;
        let empty = reader.header_end(part_start, parent.end);
        let child = entity(raw, part_start, parent.end, parent.eol, digest, Some(empty));
        if child.is_multipart() {
            self.resume = Some(part_start);
            return Ok(Some(child));
        }
        let following = reader.delimiter_line(delimiter, part_start, parent.end)?;
        let mut part_end = following.map_or(parent.end, |line| line.start);
        if following.is_some() && part_end > part_start && raw[part_end - 1] == b'\n' {
            part_end -= 1;
            if part_end > part_start && raw[part_end - 1] == b'\r' {
                part_end -= 1;
            }
        }
        self.line = following;
        if child.has_body && child.body_start <= part_end {
            Ok(Some(Entity {
                end: part_end,
                ..child
            }))
        } else {
            Ok(Some(entity(
                raw, part_start, part_end, parent.eol, digest, None,
            )))
        }
    }
}

/// `--` and the multipart's boundary (as the email package's `get_boundary` reads it).
fn delimiter_of<E>(entity: &Entity) -> Step<Vec<u8>, E> {
    let ctype = shown(&entity.ctype);
    let boundary = match entity.param("boundary") {
        Param::Missing => String::new(),
        Param::Value(value) => header::unquote(&value)
            .trim_end_matches(header::is_py_space)
            .to_owned(),
        Param::Rfc2231 => return unwritable(rfc2231("boundary")),
    };
    if boundary.is_empty() {
        return unwritable(format!("malformed MIME: {ctype} without a boundary"));
    }
    if !boundary.is_ascii() {
        return unwritable(format!("malformed MIME: {ctype} with a non-ASCII boundary"));
    }
    Ok([b"--", boundary.as_bytes()].concat())
}

/// A name from the message as a note shows it: Python's `unicode_escape`.
fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            _ if u32::from(c) < 0x100 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            _ if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            _ => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out
}

/// The HTML form of the warning: one escaped paragraph, a `<br>` and a source line per
/// line of the text.
pub fn html_block(text: &str) -> String {
    let body = text
        .split('\n')
        .map(|line| {
            line.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        })
        .collect::<Vec<_>>()
        .join("<br>\n");
    format!("<p style=\"{HTML_STYLE}\">{body}</p>")
}

/// The edit that prepends the warning to one text part.
fn warn_part<E: WarningEncoder>(
    raw: &[u8],
    part: &Entity,
    warning: Warning<'_>,
    notes: &mut Vec<String>,
    encoder: &mut E,
) -> Step<Edit, E::Error> {
    if !part.has_body {
        return unwritable("a text part without a body");
    }
    let is_html = part.ctype == "text/html";
    let cte =
        py_strip(part.values.transfer_encoding.as_deref().unwrap_or("7bit")).to_ascii_lowercase();
    let cte = if cte.is_empty() {
        "7bit".to_owned()
    } else {
        cte
    };
    let raw_encoding = matches!(cte.as_str(), "7bit" | "8bit" | "binary");
    if !raw_encoding && cte != "quoted-printable" && cte != "base64" {
        return unwritable(format!(
            "a text part in an unknown Content-Transfer-Encoding {}",
            shown(&cte)
        ));
    }
    let charset = match part.param("charset") {
        Param::Value(charset) if !charset.is_empty() && charset.is_ascii() => {
            charset.to_ascii_lowercase()
        }
        Param::Rfc2231 => return unwritable(rfc2231("charset")),
        _ => "us-ascii".to_owned(),
    };
    let failed = |error| Fault::Failed(RewriteError::Encoder(error));
    let codec = encoder.lookup(&charset).map_err(failed)?;
    match codec {
        None => notes.push(format!(
            "unknown charset {}: warning in ASCII",
            shown(&charset)
        )),
        Some(codec) if !codec.ascii_compatible => {
            return unwritable(format!(
                "a text part in {}, which is not ASCII-compatible",
                shown(&charset)
            ));
        }
        Some(_) => {}
    }
    let seven_bit = cte == "7bit";
    let known = codec.map(|_| charset.as_str());
    let lines = if is_html {
        html_block(warning.text)
            .split('\n')
            .map(|line| encode_html(line, known, seven_bit, encoder))
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?
    } else {
        encode_plain(warning, known, seven_bit, notes, encoder)?
    };
    let utf8 = codec.is_some_and(|codec| codec.utf8);
    if raw_encoding {
        let position = insert_at(raw, part.body_start, part.end, is_html, utf8);
        let data = insertion(&lines, is_html, position > part.body_start, part.eol);
        return Ok(Edit {
            start: position,
            end: position,
            data,
        });
    }
    if cte == "quoted-printable" {
        return Ok(qp_edit(raw, part, &lines, is_html, utf8));
    }
    base64_edit(raw, part, &lines, is_html, utf8)
}

/// The warning's lines in the part's charset (`charset`: None if unknown), then an empty
/// line; its ASCII form where the charset, or 7bit, cannot carry it.
fn encode_plain<E: WarningEncoder>(
    warning: Warning<'_>,
    charset: Option<&str>,
    seven_bit: bool,
    notes: &mut Vec<String>,
    encoder: &mut E,
) -> Step<Vec<Vec<u8>>, E::Error> {
    if let Some(charset) = charset {
        let mut encoded = Vec::new();
        for line in warning.text.split('\n') {
            match encoder
                .encode(charset, line)
                .map_err(|error| Fault::Failed(RewriteError::Encoder(error)))?
            {
                Some(line) => encoded.push(line),
                None => break,
            }
        }
        if encoded.len() < warning.text.split('\n').count() {
            notes.push(format!(
                "warning in ASCII: charset {} cannot represent it",
                shown(charset)
            ));
        } else if !seven_bit || encoded.iter().all(|line| line.is_ascii()) {
            encoded.push(Vec::new());
            return Ok(encoded);
        } else {
            notes.push(format!(
                "warning in ASCII: the part is 7bit and {} needs 8 bits",
                shown(charset)
            ));
        }
    }
    if !warning.ascii_text.is_ascii() {
        return Err(Fault::Failed(RewriteError::NotAscii(
            "the warning's ASCII form",
        )));
    }
    let mut lines: Vec<Vec<u8>> = warning
        .ascii_text
        .split('\n')
        .map(|line| line.as_bytes().to_vec())
        .collect();
    lines.push(Vec::new());
    Ok(lines)
}

/// An HTML line in the part's charset, what it (or 7bit) cannot carry as character
/// references.
fn encode_html<E: WarningEncoder>(
    line: &str,
    charset: Option<&str>,
    seven_bit: bool,
    encoder: &mut E,
) -> Result<Vec<u8>, E::Error> {
    if let Some(charset) = charset {
        let encoded = encoder.encode_html(charset, line)?;
        if !seven_bit || encoded.is_ascii() {
            return Ok(encoded);
        }
    }
    Ok(Builtin::Ascii.encode_html(line))
}

/// The decoded bytes to insert: the lines, each ended; the HTML block also starts on a
/// line of its own after a tag.
fn insertion(lines: &[Vec<u8>], is_html: bool, after_tag: bool, eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if is_html && after_tag {
        out.extend_from_slice(eol);
    }
    for line in lines {
        out.extend_from_slice(line);
        out.extend_from_slice(eol);
    }
    out
}

/// Where in the decoded `content[start..end]` the warning goes: after `<body ...>` for
/// HTML, after a UTF-8 byte-order mark, else the start.
fn insert_at(content: &[u8], start: usize, end: usize, is_html: bool, utf8: bool) -> usize {
    if is_html && let Some(tag_end) = body_tag_end(content, start, end) {
        return tag_end;
    }
    if utf8 && content[start..end].starts_with(UTF8_BOM) {
        start + UTF8_BOM.len()
    } else {
        start
    }
}

/// The offset after the first `<body ...>` tag within `HTML_HEAD_LIMIT` of `start`
/// (closed within `BODY_TAG_LIMIT`; quoted attribute values may hold `>`).
fn body_tag_end(content: &[u8], start: usize, end: usize) -> Option<usize> {
    let opening = body_open(content, start, end.min(start + HTML_HEAD_LIMIT))?;
    let limit = end.min(opening - 6 + BODY_TAG_LIMIT);
    let mut at = opening - 1;
    while at < limit {
        match content[at] {
            b'>' => return Some(at + 1),
            quote @ (b'"' | b'\'') => {
                let close = memchr::memchr(quote, &content[at + 1..limit])?;
                at += close + 2;
            }
            _ => at += 1,
        }
    }
    None
}

/// The offset after `<body` and the character that ends the name (any case) of the
/// first such tag in `content[start..end]`. Found from its `y`, rarer in HTML than `<`
/// (and than `b`: a page of tags has a `<` every few bytes, and escaped text such as
/// `=3Cp=3E` decodes to one every four).
fn body_open(content: &[u8], start: usize, end: usize) -> Option<usize> {
    let window = &content[start..end];
    memchr::memchr2_iter(b'y', b'Y', window).find_map(|y| {
        let at = y.checked_sub(4)?;
        let tag = window.get(at..at + 6)?;
        (tag[0] == b'<'
            && tag[1..5].eq_ignore_ascii_case(b"body")
            && matches!(tag[5], b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n' | b'\x0c'))
        .then_some(start + at + 6)
    })
}

/// The warning encoded and spliced into a quoted-printable part where its decoded text
/// puts it; only the text before that point is decoded.
fn qp_edit(raw: &[u8], part: &Entity, lines: &[Vec<u8>], is_html: bool, utf8: bool) -> Edit {
    let (start, end) = (part.body_start, part.end);
    let guess = if is_html {
        body_open(raw, start, end.min(start + HTML_HEAD_LIMIT))
            .map_or(QP_FIRST_CHUNK, |opening| opening - start + 1024)
    } else {
        UTF8_BOM.len() * 3
    };
    let mut cut = qp_cut(raw, start, end, start + guess);
    let mut decoded = transfer::qp_decode(&raw[start..cut]);
    if is_html && cut < end && body_tag_end(&decoded, 0, decoded.len()).is_none() {
        cut = qp_cut(raw, start, end, start + HTML_HEAD_LIMIT);
        decoded = transfer::qp_decode(&raw[start..cut]);
    }
    let position = insert_at(&decoded, 0, decoded.len(), is_html, utf8);
    let offset = qp_offset(raw, start, &decoded, position).unwrap_or(start);
    let mut data = Vec::new();
    if is_html {
        if offset > start {
            data.extend_from_slice(part.eol);
        }
    } else if offset > start && raw[offset - 1] != b'\n' {
        data.push(b'=');
        data.extend_from_slice(part.eol);
    }
    for line in lines {
        data.extend(qp_line(line, part.eol));
        data.extend_from_slice(part.eol);
    }
    Edit {
        start: offset,
        end: offset,
        data,
    }
}

/// An offset at or after `target` (at most `end`) where quoted-printable text can be cut
/// and each side decoded alone.
fn qp_cut(raw: &[u8], start: usize, end: usize, target: usize) -> usize {
    if target >= end {
        return end;
    }
    if let Some(newline) = memchr::memchr(b'\n', &raw[target..end.min(target + 1024)]) {
        return target + newline + 1;
    }
    let mut target = target;
    while target > start
        && (raw[target.saturating_sub(2)..target].contains(&b'=') || raw[target - 1] == b'\r')
    {
        target -= 1;
    }
    target
}

fn count_byte(raw: &[u8], byte: u8, start: usize, end: usize) -> usize {
    if start >= end {
        0
    } else {
        memchr::memchr_iter(byte, &raw[start..end]).count()
    }
}

fn count_soft_crlf(raw: &[u8], start: usize, end: usize) -> usize {
    if start >= end {
        0
    } else {
        memmem::find_iter(&raw[start..end], b"=\r\n").count()
    }
}

/// The offset in the quoted-printable body at `start` just after the characters that
/// decode to its first `position` bytes, or None if the text before it is written
/// otherwise than `=XX` escapes, soft line breaks and characters as themselves.
fn qp_offset(raw: &[u8], start: usize, decoded: &[u8], position: usize) -> Option<usize> {
    let mut offset = start + position;
    let mut equals = count_byte(raw, b'=', start, offset);
    let mut soft_crlf = count_soft_crlf(raw, start, offset);
    loop {
        let wanted = start + position + 2 * equals + soft_crlf;
        if wanted == offset {
            break;
        }
        if wanted > raw.len() {
            return None;
        }
        equals += count_byte(raw, b'=', offset, wanted);
        soft_crlf += count_soft_crlf(raw, start.max(offset.saturating_sub(2)), wanted);
        offset = wanted;
    }
    if raw[start.max(offset.saturating_sub(2))..offset].contains(&b'=') {
        return None;
    }
    (transfer::qp_decode(&raw[start..offset]) == decoded[..position]).then_some(offset)
}

/// One line of text quoted-printable encoded, soft-broken to at most 76 characters.
fn qp_line(data: &[u8], eol: &[u8]) -> Vec<u8> {
    let encoded = transfer::qp_encode(data);
    if eol == LF {
        return encoded;
    }
    let mut out = Vec::with_capacity(encoded.len() + 4);
    let mut rest = encoded.as_slice();
    while let Some(at) = memmem::find(rest, b"=\n") {
        out.extend_from_slice(&rest[..at + 1]);
        out.extend_from_slice(eol);
        rest = &rest[at + 2..];
    }
    out.extend_from_slice(rest);
    out
}

/// The warning spliced into a base64 part: the line that holds the insertion point
/// decoded, the warning put in (padded with spaces to whole 3-byte groups) and encoded
/// again at the same line length. The lines up to it must decode strictly.
fn base64_edit<E>(
    raw: &[u8],
    part: &Entity,
    lines: &[Vec<u8>],
    is_html: bool,
    utf8: bool,
) -> Step<Edit, E> {
    let layout = Base64Layout::new(raw, part.body_start, part.end, part.eol)?;
    if layout.lines == 0 {
        let data = transfer::base64_encode(&insertion(lines, is_html, false, CRLF));
        return Ok(Edit {
            start: part.body_start,
            end: part.body_start,
            data,
        });
    }
    let (decoded, position) = if is_html {
        // The head is read in runs of lines that double, each decoded once: at most about
        // twice the lines before the <body> tag are read. Past `BASE64_HEAD_READ` decoded
        // bytes, more could not change where the tag ends.
        let (mut done, mut count, mut decoded) = (0, BASE64_FIRST_LINES, Vec::new());
        loop {
            layout.decode_into(done, count, &mut decoded)?;
            done = count.min(layout.lines);
            let position = insert_at(&decoded, 0, decoded.len(), true, utf8);
            if position > 0 || done >= layout.lines || decoded.len() >= BASE64_HEAD_READ {
                break (decoded, position);
            }
            count *= 2;
        }
    } else {
        let decoded = layout.decode(0, 1)?;
        let position = insert_at(&decoded, 0, decoded.len(), false, utf8);
        (decoded, position)
    };
    let content_eol = if memmem::find(&decoded, CRLF).is_some() {
        CRLF
    } else if memchr::memchr(b'\n', &decoded).is_some() {
        LF
    } else {
        CRLF
    };
    let mut insertion = insertion(lines, is_html, position > 0, content_eol);
    let per_line = layout.width / 4 * 3;
    let index = (position / per_line.max(1)).min(layout.lines - 1);
    let (unit_start, unit_end) = layout.span(index, index + 1)?;
    let unit = layout.decode(index, index + 1)?;
    let inside = (position - index * per_line).min(unit.len());
    if unit_end < layout.last {
        let cut = insertion
            .len()
            .saturating_sub(content_eol.len() * if is_html { 1 } else { 2 });
        let padding = (3 - insertion.len() % 3) % 3;
        insertion.splice(cut..cut, std::iter::repeat_n(b' ', padding));
    }
    let encoded = transfer::base64_encode(&[&unit[..inside], &insertion, &unit[inside..]].concat());
    let data = encoded
        .chunks(layout.width)
        .collect::<Vec<_>>()
        .join(layout.eol);
    Ok(Edit {
        start: unit_start,
        end: unit_end,
        data,
    })
}

/// The lines of a base64 body as far as they are read: every line `width` characters
/// of the alphabet but the last, ended by `eol`, `=` only at the end of the last.
struct Base64Layout<'r> {
    raw: &'r [u8],
    first: usize,
    last: usize,
    eol: &'static [u8],
    width: usize,
    lines: usize,
}

impl<'r> Base64Layout<'r> {
    fn new<E>(raw: &'r [u8], start: usize, end: usize, eol: &'static [u8]) -> Step<Self, E> {
        let first = start
            + raw[start..end]
                .iter()
                .position(|byte| !BASE64_SPACE.contains(byte))
                .unwrap_or(end - start);
        let mut last = end;
        while last > first && BASE64_SPACE.contains(&raw[last - 1]) {
            last -= 1;
        }
        let (eol, width) = match memchr::memchr(b'\n', &raw[first..last]) {
            None => (eol, last - first),
            Some(at) => {
                let newline = first + at;
                let eol = if raw[newline - 1] == b'\r' { CRLF } else { LF };
                (eol, newline + 1 - eol.len() - first)
            }
        };
        if width > MAX_BASE64_LINE {
            return unwritable(format!(
                "a text part with base64 lines over {MAX_BASE64_LINE} octets"
            ));
        }
        let step = width + eol.len();
        let lines = if last == first {
            0
        } else {
            (last - first) / step + 1
        };
        if width % 4 != 0 || (lines > 0 && first + (lines - 1) * step > last) {
            return unwritable(BAD_BASE64);
        }
        Ok(Base64Layout {
            raw,
            first,
            last,
            eol,
            width,
            lines,
        })
    }

    /// Where lines `first_line` to `end_line` (exclusive) are, their last line end left
    /// out; checked to hold nothing but those lines.
    fn span<E>(&self, first_line: usize, end_line: usize) -> Step<(usize, usize), E> {
        let (raw, eol, step) = (self.raw, self.eol, self.width + self.eol.len());
        let start = (self.first + first_line * step).min(self.last);
        let end = (self.first + end_line * step - eol.len())
            .min(self.last)
            .max(start);
        // The bytes other than the alphabet's and the line end's: only `=`, one or two,
        // at the end of the last line.
        let bytes = &raw[start..end];
        let crlf = eol == CRLF;
        let others = transfer::base64_others(bytes, crlf);
        let padding_only =
            others == 0 || (end == self.last && others <= 2 && bytes.ends_with(&b"=="[..others]));
        let bad = !padding_only
            || count_byte(raw, b'\n', start, end) + 1 != end_line - first_line
            || (first_line > 0 && raw.get(start.wrapping_sub(eol.len())..start) != Some(eol))
            || (end < self.last && raw.get(end..end + eol.len()) != Some(eol));
        if bad {
            return unwritable(BAD_BASE64);
        }
        Ok((start, end))
    }

    fn decode<E>(&self, first_line: usize, end_line: usize) -> Step<Vec<u8>, E> {
        let mut decoded = Vec::new();
        self.decode_into(first_line, end_line, &mut decoded)?;
        Ok(decoded)
    }

    /// Lines `first_line` to `end_line` decoded and appended to `out`.
    fn decode_into<E>(&self, first_line: usize, end_line: usize, out: &mut Vec<u8>) -> Step<(), E> {
        let (start, end) = self.span(first_line, end_line.min(self.lines))?;
        if transfer::base64_decode_into(&self.raw[start..end], out) {
            Ok(())
        } else {
            unwritable(BAD_BASE64)
        }
    }
}

/// The warning in a text part of its own, first in the message: in the top-level
/// `multipart/mixed` if it has a delimiter line, else with the message wrapped in a new
/// one (not when only the body may change).
///
/// The wrapping multipart's fields (`MIME-Version` if there is none, `Content-Type`) go
/// at the top of the header block, right after the added fields (the stable sort keeps
/// edits at one offset in their order): the `email` package ends a header block early at
/// a bare CR (inside a field or alone on a line) and reads a last line starting `From `
/// as the body's, so a field written further down could be body to it, and the warning
/// part unseen (`fuzz/regressions/policy/bare-cr-*-then-wrapped`). Lines of white space
/// that open the header block stay in front of them: they would continue the new
/// `Content-Type` and break its boundary.
fn warning_part_edits<E>(
    raw: &[u8],
    top: &Entity,
    warning: Warning<'_>,
    reason: &str,
    notes: &mut Vec<String>,
    body_only: bool,
    boundary: &mut dyn FnMut() -> Result<Vec<u8>, E>,
) -> Result<Vec<Edit>, E> {
    let eol = top.eol;
    let part = warning_part(warning, eol);
    if top.ctype == "multipart/mixed" {
        let first = delimiter_of::<()>(top).ok().and_then(|delimiter| {
            let delimiter = Boundary::new(delimiter);
            let line = Reader::new(raw)
                .delimiter_line::<()>(&delimiter, top.body_start, top.end)
                .ok()??;
            Some((line, delimiter))
        });
        if let Some((line, delimiter)) = first {
            let delimiter = delimiter.delimiter;
            if !line.close && line.next > line.start + delimiter.len() {
                notes.push(format!("{reason}: warning added as a new first text part"));
                let data = [part.as_slice(), eol, &delimiter, eol].concat();
                return Ok(vec![Edit {
                    start: line.next,
                    end: line.next,
                    data,
                }]);
            }
        }
    }
    if body_only {
        notes.push(format!(
            "{reason}: warning not added (only the body may change)"
        ));
        return Ok(Vec::new());
    }
    let boundary = boundary()?;
    let moved: Vec<&Field> = top.fields.iter().filter(|field| field.content).collect();
    let has_version = top.fields.iter().any(|field| !field.content);
    let mut new_fields = Vec::new();
    if !has_version {
        new_fields.extend_from_slice(b"MIME-Version: 1.0");
        new_fields.extend_from_slice(eol);
    }
    new_fields.extend_from_slice(b"Content-Type: multipart/mixed; boundary=\"");
    new_fields.extend_from_slice(&boundary);
    new_fields.push(b'"');
    new_fields.extend_from_slice(eol);
    let inner: Vec<u8> = moved
        .iter()
        .flat_map(|field| &raw[field.start..field.end])
        .copied()
        .collect();
    notes.push(format!(
        "{reason}: warning added as a new first text part, the message wrapped in multipart/mixed"
    ));
    let dashes = [b"--", boundary.as_slice()].concat();
    let opening = [&dashes, eol, &part, eol, &dashes, eol, &inner, eol].concat();
    let closing = [eol, &dashes, b"--", eol].concat();
    let mut edits: Vec<Edit> = moved
        .iter()
        .map(|field| Edit {
            start: field.start,
            end: field.end,
            data: Vec::new(),
        })
        .collect();
    let top_field = header::past_continuations(raw, top.start, top.body_start);
    edits.push(Edit {
        start: top_field,
        end: top_field,
        data: new_fields,
    });
    edits.push(Edit {
        start: top.body_start,
        end: top.body_start,
        data: opening,
    });
    edits.push(Edit {
        start: top.end,
        end: top.end,
        data: closing,
    });
    Ok(edits)
}

/// A text/plain part (header block and body) holding the warning, UTF-8 in
/// quoted-printable.
fn warning_part(warning: Warning<'_>, eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in [
        &b"Content-Type: text/plain; charset=utf-8"[..],
        b"Content-Disposition: inline",
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
    ] {
        out.extend_from_slice(line);
        out.extend_from_slice(eol);
    }
    for line in warning.text.as_bytes().split(|&byte| byte == b'\n') {
        out.extend(qp_line(line, eol));
        out.extend_from_slice(eol);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WARNING: Warning<'static> = Warning {
        text: "Caution: \u{fc}ber",
        ascii_text: "Caution: uber",
    };

    fn rewritten(raw: &[u8], body_only: bool) -> (Vec<u8>, Vec<String>, usize) {
        let rewrite = rewrite(
            raw,
            &[("X-Test", "yes")],
            Some(WARNING),
            body_only,
            &mut || Ok(b"B".to_vec()),
            &mut BuiltinEncoder,
        )
        .unwrap();
        (rewrite.message(raw), rewrite.notes, rewrite.warned)
    }

    #[test]
    fn a_plain_part_gets_the_warning_in_its_charset() {
        let raw = b"From: a@b.example\nContent-Type: text/plain; charset=\"ISO-8859-1\"\nContent-Transfer-Encoding: 8bit\n\nHello\n";
        let (message, notes, warned) = rewritten(raw, false);
        let expected = [
            &b"X-Test: yes\n"[..],
            &raw[..raw.len() - 6],
            b"Caution: \xfcber\n\nHello\n",
        ]
        .concat();
        assert_eq!((message, notes, warned), (expected, vec![], 1));
    }

    #[test]
    fn an_unwritable_part_gets_the_message_wrapped_with_the_boundary_given() {
        let raw = b"From: a@b.example\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nSGVsbG8g!d29ybGQ=\n";
        let (message, notes, warned) = rewritten(raw, false);
        assert_eq!(warned, 1);
        assert_eq!(
            notes,
            [format!(
                "{BAD_BASE64}: warning added as a new first text part, the message wrapped in multipart/mixed"
            )]
        );
        let expected = concat!(
            "X-Test: yes\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n",
            "From: a@b.example\n\n",
            "--B\nContent-Type: text/plain; charset=utf-8\nContent-Disposition: inline\n",
            "Content-Transfer-Encoding: quoted-printable\n\nCaution: =C3=BCber\n\n",
            "--B\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n",
            "SGVsbG8g!d29ybGQ=\n\n--B--\n",
        );
        assert_eq!(String::from_utf8(message).unwrap(), expected);
        let (message, notes, warned) = rewritten(raw, true);
        assert_eq!(
            (message, warned),
            ([&b"X-Test: yes\n"[..], raw].concat(), 0)
        );
        assert!(notes[0].ends_with("warning not added (only the body may change)"));
    }

    #[test]
    fn html_gets_the_block_after_the_body_tag_as_character_references_in_7bit() {
        let raw =
            b"From: a@b.example\nContent-Type: text/html\n\n<html><BODY class='a>b'>Hi</body>\n";
        let (message, _, _) = rewritten(raw, false);
        let block = format!("\n<p style=\"{HTML_STYLE}\">Caution: &#252;ber</p>\n");
        assert!(
            String::from_utf8(message)
                .unwrap()
                .contains(&format!("<BODY class='a>b'>{block}Hi</body>"))
        );
    }
}

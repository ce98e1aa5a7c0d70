//! A MIME entity's header block read as Python's `email` package reads it (the compat32
//! policy of `email.message.Message`): which lines are fields, the values of the few
//! fields the rewrite needs, and their parameters.
//!
//! A value with 8-bit bytes is a `Header` object there, whose text has one U+FFFD per
//! such byte: the values here are that text. Python's `str.strip` and `str.split` strip
//! the C0 separators (0x1C-0x1F) too, so they count as white space here.

/// The names of the fields the rewrite reads (lowercase).
const CONTENT_TYPE: &[u8] = b"content-type";
const TRANSFER_ENCODING: &[u8] = b"content-transfer-encoding";
const DISPOSITION: &[u8] = b"content-disposition";
const CONTENT_ID: &[u8] = b"content-id";

/// A `Content-*` or `MIME-Version` field: `raw[start..end]`, its line end included.
#[derive(Clone, Copy, Debug)]
pub(super) struct Field {
    pub start: usize,
    pub end: usize,
    /// `Content-*` (else `MIME-Version`).
    pub content: bool,
}

/// The values of the fields the rewrite reads (each the first of its name).
#[derive(Clone, Debug, Default)]
pub(super) struct Values {
    pub content_type: Option<String>,
    pub transfer_encoding: Option<String>,
    pub disposition: Option<String>,
    pub content_id: Option<String>,
}

/// Python's `str.isspace` for the characters a header value can hold here.
pub(super) fn is_py_space(c: char) -> bool {
    matches!(c, '\t'..='\r' | '\x1c'..='\x1f' | ' ')
}

pub(super) fn py_strip(text: &str) -> &str {
    text.trim_matches(is_py_space)
}

/// The `Content-*` and `MIME-Version` fields of `raw[start..end]` as the email package
/// reads the header block (`_fields` in the reference), and the values read.
pub(super) fn fields(raw: &[u8], start: usize, end: usize) -> (Vec<Field>, Values) {
    let mut found = Vec::new();
    let mut values = Values::default();
    let mut position = start;
    while position < end {
        if let Some((name_end, field_end)) = field_at(raw, position, end) {
            let name = raw[position..name_end].to_ascii_lowercase();
            let slot = match name.as_slice() {
                CONTENT_TYPE => Some(&mut values.content_type),
                TRANSFER_ENCODING => Some(&mut values.transfer_encoding),
                DISPOSITION => Some(&mut values.disposition),
                CONTENT_ID => Some(&mut values.content_id),
                _ => None,
            };
            if let Some(slot) = slot
                && slot.is_none()
            {
                *slot = Some(field_value(&raw[name_end + 1..field_end]));
            }
            let content = name.starts_with(b"content-");
            if content || name == b"mime-version" {
                found.push(Field {
                    start: position,
                    end: field_end,
                    content,
                });
            }
            position = field_end;
            continue;
        }
        let line_end = line_end(raw, position, end);
        if line_end == position {
            break;
        }
        if raw[position..end].starts_with(b"From ") {
            if position > start && line_end >= end {
                break;
            }
        } else if !matches!(raw[position], b' ' | b'\t') {
            break;
        }
        position = line_end;
    }
    (found, values)
}

/// Where the first line of `raw[start..end]` that starts with neither a space nor a tab
/// starts (the reference's `_past_continuations`): the lines before it continue no
/// field, so the email package skips them, but a field written in front of them would
/// take them in.
pub(super) fn past_continuations(raw: &[u8], start: usize, end: usize) -> usize {
    let mut position = start;
    while position < end && matches!(raw[position], b' ' | b'\t') {
        position = line_end(raw, position, end);
    }
    position
}

/// The end of the line at `position` (after its CRLF, CR or LF), at most `end`.
pub(super) fn line_end(raw: &[u8], position: usize, end: usize) -> usize {
    let text_end =
        position + memchr::memchr2(b'\r', b'\n', &raw[position..end]).unwrap_or(end - position);
    if text_end == end {
        end
    } else if raw[text_end] == b'\r' && text_end + 1 < end && raw[text_end + 1] == b'\n' {
        text_end + 2
    } else {
        text_end + 1
    }
}

/// A field at `position` (the reference's `_FIELD`): a name of printable characters but
/// `:`, a colon, the rest of the line, and every following line that starts with a
/// space or tab. Its name's end and the field's end.
fn field_at(raw: &[u8], position: usize, end: usize) -> Option<(usize, usize)> {
    let name_end = field_name_end(raw, position, end)?;
    let mut field_end = line_end(raw, name_end, end);
    while field_end < end && matches!(raw[field_end], b' ' | b'\t') && ends_line(raw, field_end) {
        field_end = line_end(raw, field_end, end);
    }
    Some((name_end, field_end))
}

/// Where the name of a field at `position` ends (at its colon): the name is printable
/// characters but `:`, possibly none. None if no field starts there.
fn field_name_end(raw: &[u8], position: usize, end: usize) -> Option<usize> {
    let name_end = position
        + raw[position..end]
            .iter()
            .position(|&byte| !(0x21..=0x7e).contains(&byte) || byte == b':')
            .unwrap_or(end - position);
    (name_end < end && raw[name_end] == b':').then_some(name_end)
}

/// Why the email package ends the header block at `start` before `body_start`, where
/// the rewrite ends it, or None if it ends it there too (the reference's `_ended_early`,
/// which says why it matters). It breaks lines at a bare CR
/// as well as at LF, takes lines into the header block up to the first that is not a
/// field, a continuation or a `From ` line, and skips that line if it is empty (a bare
/// CR is one to it); a last line that starts `From ` (not the first) it reads as the
/// body's first.
pub(super) fn ended_early(raw: &[u8], start: usize, body_start: usize) -> Option<&'static str> {
    let is_header_line = |position: usize| {
        raw[position..].starts_with(b"From ")
            || matches!(raw.get(position), Some(b' ' | b'\t'))
            || field_name_end(raw, position, raw.len()).is_some()
    };
    let (mut position, mut last_line) = (start, start);
    while is_header_line(position) {
        last_line = position;
        position = line_end(raw, position, raw.len());
    }
    if last_line > start && raw[last_line..].starts_with(b"From ") {
        Some("a header block other readers end early (a last line starting 'From ')")
    } else if !matches!(raw.get(position), Some(b'\r' | b'\n')) {
        Some("a header block other readers end early (a line that is no field)")
    } else if line_end(raw, position, raw.len()) < body_start {
        Some("a header block other readers end early (a bare CR)")
    } else {
        None
    }
}

/// Whether the position follows a line end (a field's continuation needs one before it).
fn ends_line(raw: &[u8], position: usize) -> bool {
    position > 0 && matches!(raw[position - 1], b'\r' | b'\n')
}

/// A field's value as the compat32 policy keeps it (spaces and tabs stripped in front,
/// line ends at the end), 8-bit bytes as U+FFFD.
fn field_value(value: &[u8]) -> String {
    let start = value
        .iter()
        .position(|&byte| byte != b' ' && byte != b'\t')
        .unwrap_or(value.len());
    let mut end = value.len();
    while end > start && matches!(value[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    value[start..end]
        .iter()
        .map(|&byte| {
            if byte < 0x80 {
                char::from(byte)
            } else {
                '\u{fffd}'
            }
        })
        .collect()
}

/// `Message.get_content_type` with this Content-Type value (`default` without one).
pub(super) fn content_type(value: Option<&str>, default: &str) -> String {
    let Some(value) = value else {
        return default.to_owned();
    };
    let main = py_strip(value.split_once(';').map_or(value, |(main, _)| main)).to_ascii_lowercase();
    if main.bytes().filter(|&byte| byte == b'/').count() == 1 {
        main
    } else {
        "text/plain".to_owned()
    }
}

/// `Message.get_content_disposition` with this Content-Disposition value.
pub(super) fn disposition(value: Option<&str>) -> Option<String> {
    value.map(|value| {
        py_strip(value.split_once(';').map_or(value, |(main, _)| main)).to_ascii_lowercase()
    })
}

/// What reading a parameter gave.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Param {
    Missing,
    Value(String),
    /// RFC 2231 (`name*=`, `name*0=`, ...) could decide the value: the email package
    /// decodes and joins those in ways not worth copying, so the rewrite declines.
    Rfc2231,
}

/// `Message.get_param(name)` on this Content-Type value (unquoted once), the RFC 2231
/// case declined.
pub(super) fn param(value: &str, name: &str) -> Param {
    let params = parse_params(value);
    if params
        .iter()
        .skip(1)
        .any(|(key, _)| rfc2231_name(key).is_some_and(|base| base.eq_ignore_ascii_case(name)))
    {
        return Param::Rfc2231;
    }
    for (index, (key, raw_value)) in params.into_iter().enumerate() {
        if index > 0 && rfc2231_name(key).is_some() {
            continue;
        }
        if key.eq_ignore_ascii_case(name) {
            return Param::Value(unquote(raw_value).into_owned());
        }
    }
    Param::Missing
}

/// The base name of an RFC 2231 parameter name (`email.utils.rfc2231_continuation`:
/// `\w+\*([0-9]+\*?)?`, ASCII), or None.
fn rfc2231_name(key: &str) -> Option<&str> {
    let star = key.find('*')?;
    let (base, rest) = (&key[..star], &key[star + 1..]);
    let word = |text: &str| {
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let digits = rest.strip_suffix('*').unwrap_or(rest);
    let tail_ok =
        rest.is_empty() || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    (word(base) && tail_ok).then_some(base)
}

/// `email.utils.unquote`.
pub(super) fn unquote(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() > 1 {
        if text.starts_with('"') && text.ends_with('"') && text.chars().count() > 1 {
            return text[1..text.len() - 1]
                .replace("\\\\", "\\")
                .replace("\\\"", "\"")
                .into();
        }
        if text.starts_with('<') && text.ends_with('>') {
            return text[1..text.len() - 1].into();
        }
    }
    text.into()
}

/// `email.message._parseparam`: the value split at the semicolons outside quoted
/// strings (a quote counts unless a backslash precedes it), each piece a name and a
/// value split at its first `=` and stripped (the value empty without one; names are
/// compared ignoring ASCII case, as the lowercasing there makes them). Linear: the
/// quotes before a semicolon are counted once; borrowed: no allocation per piece.
fn parse_params(value: &str) -> Vec<(&str, &str)> {
    let bytes = value.as_bytes();
    let mut pieces = Vec::new();
    // Just after a `;` (the first piece: after one before the value).
    let mut position = 0;
    loop {
        // The first `;` with an even count of quotes (less `\"` pairs) since `position`.
        let (mut quotes, mut pairs, mut counted, mut search) = (0usize, 0usize, position, position);
        let end = loop {
            let Some(at) = memchr::memchr(b';', &bytes[search..]).map(|i| search + i) else {
                break bytes.len();
            };
            for i in counted..at {
                quotes += usize::from(bytes[i] == b'"');
                pairs += usize::from(bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'"'));
            }
            counted = at;
            if at > position && (quotes - pairs) % 2 == 1 {
                search = at + 1;
            } else {
                break at;
            }
        };
        let piece = &value[position..end];
        pieces.push(match piece.split_once('=') {
            Some((name, value)) => (py_strip(name), py_strip(value)),
            None => (py_strip(piece), ""),
        });
        if end == bytes.len() {
            return pieces;
        }
        position = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_as_the_email_package_reads_them() {
        let value = "multipart/mixed; BOUNDARY=\"a;b\" ; charset=\"<X>\"";
        assert_eq!(param(value, "boundary"), Param::Value("a;b".into()));
        assert_eq!(param(value, "charset"), Param::Value("<X>".into()));
        assert_eq!(param(value, "start"), Param::Missing);
        assert_eq!(
            param("text/plain; charset*=utf-8''x", "charset"),
            Param::Rfc2231
        );
        assert_eq!(param("boundary=x", "boundary"), Param::Value("x".into()));
        assert_eq!(
            content_type(Some(" Text/HTML ; x"), "text/plain"),
            "text/html"
        );
        assert_eq!(content_type(Some("text"), "message/rfc822"), "text/plain");
    }

    #[test]
    fn header_blocks_the_email_package_ends_early() {
        let why = |raw: &[u8]| {
            ended_early(raw, 0, super::super::body_start(raw))
                .map(|reason| reason.rsplit_once('(').unwrap().1.trim_end_matches(')'))
        };
        for raw in [
            &b"From: a\r\nSubject: s\r\n\r\nbody"[..],
            b"From : a\r\nX: y\r\n\r\n",
            b"From : a\r\n\r\n",
            b"From: a\n\tb\nFrom x\n Y\n\n",
        ] {
            assert_eq!(why(raw), None, "{raw:?}");
        }
        let last_from = "a last line starting 'From '";
        assert_eq!(why(b"From x\r\nFrom : a\r\n\r\n"), Some(last_from));
        assert_eq!(why(b"X: y\nFrom : a\n\n"), Some(last_from));
        assert_eq!(why(b"From: a\rb\r\n\r\n"), Some("a line that is no field"));
        assert_eq!(why(b"From: a\r\n\rX: y\r\n\r\n"), Some("a bare CR"));
        assert_eq!(why(b"From: a\r\r\nX: y\r\n\r\n"), Some("a bare CR"));
    }
}

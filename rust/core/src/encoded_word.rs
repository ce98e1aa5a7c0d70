//! RFC 2047 encoded-words: finding them, and decoding B and Q text in the charsets of
//! `rust/core/data/charsets.tsv`.
//!
//! This module is the twin of `python/fromguard/reference/encoded_word.py`: the same
//! functions under the same names, giving the same results on every input (the case file
//! `tests/cases/encoded_words.jsonl` is run against both). All positions are byte offsets
//! into the input.
//!
//! Matching is purely syntactic: where an encoded-word may appear (RFC 2047 §5) and the
//! 75-character limit (§2, see [`too_long`]) are judged by the caller. Decoding never
//! panics: malformed bytes in the decoded charset become U+FFFD, and only a charset that
//! is not in the table ([`DecodeError::UnknownCharset`]) or B/Q text that does not decode
//! ([`DecodeError::BadEncoding`]) is an error.
//!
//! Every function is linear in its input. A failed match stops at the third `?` after
//! its `=?` at the latest (neither the charset token nor the encoded-text may contain
//! `?`), so [`find_encoded_words`] looks at each byte a bounded number of times.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// RFC 2047 §5(3): what a "Q" encoded-word in a phrase may hold.
pub(crate) fn is_phrase_q_text(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!*+-/=_".contains(&b)
}

/// RFC 2047 §2: "An 'encoded-word' may not be more than 75 characters long, including
/// 'charset', 'encoding', 'encoded-text', and delimiters."
pub const MAX_ENCODED_WORD_LEN: usize = 75;

/// The charset table, shared with the Python reference.
const CHARSETS_TSV: &str = include_str!("../data/charsets.tsv");

/// The longest charset label the table may hold (a label longer than this is unknown).
const MAX_LABEL_LEN: usize = 40;

/// The `encoding` of an encoded-word: "B" (base64) or "Q" (quoted-printable-like),
/// either case in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WordEncoding {
    /// RFC 2047 §4.1, the base64 of RFC 2045 §6.8.
    B,
    /// RFC 2047 §4.2.
    Q,
}

impl WordEncoding {
    /// `"B"` or `"Q"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            WordEncoding::B => "B",
            WordEncoding::Q => "Q",
        }
    }
}

/// One encoded-word found in the input: `data[start..end]` is
/// `"=?" charset ["*" language] "?" encoding "?" encoded-text "?="`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedWord<'a> {
    /// Offset of the opening `=?`.
    pub start: usize,
    /// Offset just past the closing `?=`.
    pub end: usize,
    /// The charset label as written (any case), without an RFC 2231 `*language` suffix.
    pub charset: &'a [u8],
    /// B or Q.
    pub encoding: WordEncoding,
    /// Offset of the first byte of the encoded-text.
    pub text_start: usize,
    /// Offset just past the encoded-text (the `?` of the closing `?=`).
    pub text_end: usize,
}

/// Why an encoded-word does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The charset label is not in `charsets.tsv`.
    UnknownCharset,
    /// The encoded-text is not valid B or Q encoding.
    BadEncoding,
}

impl DecodeError {
    /// `"unknown-charset"` or `"bad-encoding"` (as in the case files).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeError::UnknownCharset => "unknown-charset",
            DecodeError::BadEncoding => "bad-encoding",
        }
    }

    /// The finding code that reports this error.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            DecodeError::UnknownCharset => "encoded-word-unknown-charset",
            DecodeError::BadEncoding => "encoded-word-bad-encoding",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for DecodeError {}

/// RFC 2047 §2 `especials`, which a charset or encoding token may not contain.
const fn is_especial(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')'
            | b'<'
            | b'>'
            | b'@'
            | b','
            | b';'
            | b':'
            | b'"'
            | b'/'
            | b'['
            | b']'
            | b'?'
            | b'.'
            | b'='
    )
}

/// RFC 2047 §2: `token = 1*<Any CHAR except SPACE, CTLs, and especials>`.
const fn is_token_char(b: u8) -> bool {
    b >= 0x21 && b <= 0x7E && !is_especial(b)
}

/// RFC 2047 §2: encoded-text is printable ASCII other than "?" (and SPACE).
const fn is_encoded_text_char(b: u8) -> bool {
    b >= 0x21 && b <= 0x7E && b != b'?'
}

/// `is_token_char` and `is_encoded_text_char` of every byte, looked up rather than
/// computed: every "=?" in a value is tried as an encoded-word.
static TOKEN_CHARS: [bool; 256] = byte_tables().0;
static ENCODED_TEXT_CHARS: [bool; 256] = byte_tables().1;

const fn byte_tables() -> ([bool; 256], [bool; 256]) {
    let (mut token, mut encoded_text) = ([false; 256], [false; 256]);
    let mut b = 0;
    while b < 256 {
        token[b] = is_token_char(b as u8);
        encoded_text[b] = is_encoded_text_char(b as u8);
        b += 1;
    }
    (token, encoded_text)
}

/// How many bytes of `data` from `start` are in `table`.
fn run_of(data: &[u8], start: usize, table: &[bool; 256]) -> usize {
    data.get(start..).map_or(0, |rest| {
        rest.iter().take_while(|&&b| table[usize::from(b)]).count()
    })
}

/// The encoded-word that starts exactly at `pos` and ends at or before `end`, if any.
///
/// RFC 2047 §2, with the language suffix of RFC 2231 §5:
///
/// ```text
/// encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
/// charset = token    ; see section 3
/// encoding = token   ; see section 4
/// token = 1*<Any CHAR except SPACE, CTLs, and especials>
/// especials = "(" / ")" / "<" / ">" / "@" / "," / ";" / ":" / "
///             <"> / "/" / "[" / "]" / "?" / "." / "="
/// encoded-text = 1*<Any printable ASCII character other than "?"
///                   or SPACE>
///                ; (but see "Use of encoded-words in message
///                ; headers", section 5)
///
/// RFC 2231 §5: encoded-word := "=?" charset ["*" language] "?" encoded-text "?="
/// ```
///
/// fromguard reads the charset token as `1*(token-char except "*")`, optionally followed
/// by `"*"` and a non-empty language of the same characters, which is dropped; the
/// encoding must be `B` or `Q` in either case. The match ends at the first `?` after the
/// encoded-text starts, which must be followed by `=`. The 75-character limit is not
/// enforced here (see [`too_long`]).
#[must_use]
pub fn match_encoded_word(data: &[u8], pos: usize, end: usize) -> Option<EncodedWord<'_>> {
    let data = data.get(..end.min(data.len()))?;
    if data.get(pos..pos.checked_add(2)?)? != b"=?" {
        return None;
    }
    let token_start = pos + 2;
    let i = token_start + run_of(data, token_start, &TOKEN_CHARS);
    let token = data.get(token_start..i)?;
    let charset = match token.iter().position(|&b| b == b'*') {
        None => token,
        Some(star) => {
            let language = token.get(star + 1..)?;
            if language.is_empty() || language.contains(&b'*') {
                return None;
            }
            token.get(..star)?
        }
    };
    if charset.is_empty() || data.get(i) != Some(&b'?') {
        return None;
    }
    let encoding = match data.get(i + 1) {
        Some(b'B' | b'b') => WordEncoding::B,
        Some(b'Q' | b'q') => WordEncoding::Q,
        _ => return None,
    };
    if data.get(i + 2) != Some(&b'?') {
        return None;
    }
    let text_start = i + 3;
    let j = text_start + run_of(data, text_start, &ENCODED_TEXT_CHARS);
    if j == text_start || data.get(j..j + 2) != Some(b"?=".as_slice()) {
        return None;
    }
    Some(EncodedWord {
        start: pos,
        end: j + 2,
        charset,
        encoding,
        text_start,
        text_end: j,
    })
}

/// Every encoded-word in `data[start..end]`, left to right, not overlapping: at each `=?`
/// a match is tried; after a match the search goes on at its end, otherwise at the next
/// byte.
#[must_use]
pub fn find_encoded_words(data: &[u8], start: usize, end: usize) -> EncodedWords<'_> {
    let end = end.min(data.len());
    EncodedWords {
        data,
        pos: start,
        end,
    }
}

/// The iterator of [`find_encoded_words`].
#[derive(Clone, Debug)]
pub struct EncodedWords<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Iterator for EncodedWords<'a> {
    type Item = EncodedWord<'a>;

    fn next(&mut self) -> Option<EncodedWord<'a>> {
        let window = self.data.get(..self.end)?;
        while let Some(rest) = window.get(self.pos..) {
            // The next "=?" at or after pos.
            let offset = rest.windows(2).position(|pair| pair == b"=?")?;
            let at = self.pos + offset;
            if let Some(word) = match_encoded_word(window, at, self.end) {
                self.pos = word.end;
                return Some(word);
            }
            self.pos = at + 1;
        }
        None
    }
}

/// Whether the whole encoded-word is longer than the 75 characters RFC 2047 §2 allows.
#[must_use]
pub fn too_long(word: &EncodedWord<'_>) -> bool {
    word.end.saturating_sub(word.start) > MAX_ENCODED_WORD_LEN
}

/// Whether `word` is B text whose length is not a multiple of 4 (RFC 2045 §6.8 pads
/// base64 to groups of 4): missing padding, which [`decode`] accepts as GMime and
/// Thunderbird do while Python's email notes a defect, and a dangling character (a
/// remainder of 1), which does not decode at all. One rule reports both.
#[must_use]
pub fn b_text_misaligned(word: &EncodedWord<'_>) -> bool {
    word.encoding == WordEncoding::B
        && !word
            .text_end
            .saturating_sub(word.text_start)
            .is_multiple_of(4)
}

/// `word` without the last character of its B text when that character dangles (a
/// remainder of 1, which [`decode`] rejects): what GMime and Thunderbird decode, the
/// whole groups before it. `None` for any other word.
#[must_use]
pub fn without_dangling_b_char<'a>(word: &EncodedWord<'a>) -> Option<EncodedWord<'a>> {
    let dangling =
        word.encoding == WordEncoding::B && word.text_end.saturating_sub(word.text_start) % 4 == 1;
    dangling.then(|| EncodedWord {
        text_end: word.text_end - 1,
        ..*word
    })
}

/// The decoded text of `word`, found in `data`.
///
/// The charset is looked up first (an unknown charset is [`DecodeError::UnknownCharset`]
/// whatever the text), then the B or Q text is decoded to bytes
/// ([`DecodeError::BadEncoding`] when it does not decode), then the bytes are decoded in
/// the charset, malformed sequences becoming U+FFFD. The text is returned faithfully:
/// `<`, `@`, controls, line breaks and bidi controls are for the caller to judge.
///
/// # Errors
///
/// [`DecodeError::UnknownCharset`] when the label is not in `charsets.tsv`;
/// [`DecodeError::BadEncoding`] when the text is not valid B or Q (or the word's spans do
/// not lie in `data`).
pub fn decode<'a>(data: &'a [u8], word: &EncodedWord<'_>) -> Result<Cow<'a, str>, DecodeError> {
    let (charset, text) = charset_and_text(data, word)?;
    // Q text without escapes in an ASCII-compatible charset borrows from the input.
    if let (Charset::Whatwg(encoding), WordEncoding::Q) = (charset, word.encoding)
        && !has_q_escapes(text)
    {
        return Ok(encoding.decode_without_bom_handling(text).0);
    }
    let mut buffers = DecodeBuffers::default();
    buffers.decode(charset, word.encoding, text)?;
    Ok(Cow::Owned(buffers.text))
}

/// The two buffers a decoding writes: the bytes of the B or Q text, and the text. Reused
/// from word to word, they spare each word its allocations.
#[derive(Default)]
pub(crate) struct DecodeBuffers {
    bytes: Vec<u8>,
    text: String,
}

impl DecodeBuffers {
    /// The decoded text.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// `text`, B or Q `encoding`, decoded in `charset`.
    fn decode(
        &mut self,
        charset: Charset,
        encoding: WordEncoding,
        text: &[u8],
    ) -> Result<(), DecodeError> {
        let bytes = &mut self.bytes;
        bytes.clear();
        self.text.clear();
        match encoding {
            WordEncoding::B => decode_b(text, bytes)?,
            WordEncoding::Q => decode_q(text, bytes)?,
        }
        match charset {
            Charset::Utf7 => self.text.push_str(&decode_utf7(bytes)),
            Charset::Whatwg(encoding) if encoding == encoding_rs::UTF_8 => {
                // Valid UTF-8 bytes become the text without a copy: the buffers swap.
                match String::from_utf8(std::mem::take(bytes)) {
                    Ok(decoded) => {
                        self.bytes = std::mem::replace(&mut self.text, decoded).into_bytes();
                    }
                    Err(error) => {
                        self.bytes = error.into_bytes();
                        decode_whatwg(encoding, &self.bytes, &mut self.text);
                    }
                }
            }
            Charset::Whatwg(encoding) => decode_whatwg(encoding, bytes, &mut self.text),
        }
        Ok(())
    }
}

/// `bytes` in `encoding` appended to `text`, malformed sequences becoming U+FFFD (as
/// `decode_without_bom_handling` does).
fn decode_whatwg(encoding: &'static encoding_rs::Encoding, bytes: &[u8], text: &mut String) {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let needed = decoder.max_utf8_buffer_length(bytes.len());
    text.reserve(needed.unwrap_or(bytes.len().saturating_mul(3)));
    let _ = decoder.decode_to_string(bytes, text, true);
}

/// [`decode`] into `buffers` (their previous content dropped); read it with
/// [`DecodeBuffers::text`].
pub(crate) fn decode_in(
    data: &[u8],
    word: &EncodedWord<'_>,
    buffers: &mut DecodeBuffers,
) -> Result<(), DecodeError> {
    let (charset, text) = charset_and_text(data, word)?;
    buffers.decode(charset, word.encoding, text)
}

/// The charset of `word` (looked up first: an unknown one is an error whatever the text)
/// and its encoded text in `data`.
fn charset_and_text<'a>(
    data: &'a [u8],
    word: &EncodedWord<'_>,
) -> Result<(Charset, &'a [u8]), DecodeError> {
    let charset = lookup_charset(word.charset).ok_or(DecodeError::UnknownCharset)?;
    let text = data
        .get(word.text_start..word.text_end)
        .ok_or(DecodeError::BadEncoding)?;
    Ok((charset, text))
}

/// The decoder of a charset label: the WHATWG encoding name (as `encoding_rs` spells it)
/// or `"utf-7"`; `None` when the label is not in the table. Case-insensitive.
#[must_use]
pub fn charset_encoding_name(label: &[u8]) -> Option<&'static str> {
    lookup_charset(label).map(|charset| match charset {
        Charset::Utf7 => "utf-7",
        Charset::Whatwg(encoding) => encoding.name(),
    })
}

/// Every label of the charset table, lower case, in the order of the file.
pub fn charset_labels() -> impl Iterator<Item = &'static str> {
    charset_table().labels.iter().copied()
}

// -- the charset table ---------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Charset {
    Whatwg(&'static encoding_rs::Encoding),
    Utf7,
}

/// FNV-1a over a label. The table's keys are fixed, so an input's label can only miss or
/// hit, never degrade the map: SipHash's flood resistance buys nothing here, and it cost
/// more than the rest of a short word's decoding.
struct LabelHasher(u64);

impl Default for LabelHasher {
    fn default() -> Self {
        LabelHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for LabelHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

struct CharsetTable {
    by_label: HashMap<Box<[u8]>, Charset, BuildHasherDefault<LabelHasher>>,
    labels: Vec<&'static str>,
}

/// `charsets.tsv`, parsed once. Lines starting with `#`, blank lines and the header line
/// are skipped; so is (and the tests catch) a line whose encoding `encoding_rs` does not
/// know or whose label is longer than [`MAX_LABEL_LEN`].
fn charset_table() -> &'static CharsetTable {
    static TABLE: OnceLock<CharsetTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = CharsetTable {
            by_label: HashMap::default(),
            labels: Vec::new(),
        };
        for line in CHARSETS_TSV.lines() {
            if line.is_empty() || line.starts_with('#') || line.starts_with("label\t") {
                continue;
            }
            let mut columns = line.split('\t');
            let (Some(label), Some(encoding)) = (columns.next(), columns.next()) else {
                continue;
            };
            let charset = if encoding == "utf-7" {
                Charset::Utf7
            } else {
                match encoding_rs::Encoding::for_label(encoding.as_bytes()) {
                    Some(found) => Charset::Whatwg(found),
                    None => continue,
                }
            };
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                continue;
            }
            let key = label.to_ascii_lowercase().into_bytes().into_boxed_slice();
            table.by_label.insert(key, charset);
            table.labels.push(label);
        }
        table
    })
}

fn lookup_charset(label: &[u8]) -> Option<Charset> {
    if label.len() > MAX_LABEL_LEN {
        return None;
    }
    let mut lower = [0u8; MAX_LABEL_LEN];
    let key = lower.get_mut(..label.len())?;
    key.copy_from_slice(label);
    key.make_ascii_lowercase();
    charset_table().by_label.get(&*key).copied()
}

// -- other decoders' readings --------------------------------------------------------------
//
// other_charsets.tsv (generated from Python's codecs by .ci/gen_other_charsets.py) names
// the charsets that Python's email package and iconv decode where fromguard does not
// (UTF-32, UCS-2, EBCDIC code pages) or reads otherwise ("utf-16": WHATWG little-endian,
// iconv big-endian).

/// The table of other decoders' readings, shared with the Python reference.
const OTHER_CHARSETS_TSV: &str = include_str!("../data/other_charsets.tsv");

/// How another decoder reads the bytes of an encoded-word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// UTF-16 in this byte order, unless a byte-order mark says otherwise.
    Utf16 {
        /// Big-endian without a byte-order mark.
        big_endian: bool,
    },
    /// UTF-32 in this byte order, unless a byte-order mark says otherwise.
    Utf32 {
        /// Big-endian without a byte-order mark.
        big_endian: bool,
    },
    /// A single-byte code page of the file (an EBCDIC one), by its index.
    Table(usize),
}

struct OtherCharsets {
    by_label: HashMap<&'static str, Vec<Reading>, BuildHasherDefault<LabelHasher>>,
    tables: Vec<[char; 256]>,
}

/// `other_charsets.tsv`, parsed once: "label" rows name a label's readings, "table" rows
/// give a code page's 256 characters; other lines are comments.
fn other_charsets() -> &'static OtherCharsets {
    static TABLE: OnceLock<OtherCharsets> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut tables = Vec::new();
        let rows = || OTHER_CHARSETS_TSV.lines().map(|line| line.split('\t'));
        for mut columns in rows() {
            if let (Some("table"), Some(name), Some(points), None) = (
                columns.next(),
                columns.next(),
                columns.next(),
                columns.next(),
            ) {
                let points: Vec<&str> = points.split(' ').collect();
                if points.len() != 256 {
                    continue;
                }
                let mut table = ['\u{FFFD}'; 256];
                for (slot, point) in table.iter_mut().zip(points) {
                    *slot = u32::from_str_radix(point, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .unwrap_or('\u{FFFD}');
                }
                names.insert(name, tables.len());
                tables.push(table);
            }
        }
        let mut by_label = HashMap::default();
        for mut columns in rows() {
            if let (Some("label"), Some(label), Some(readings), None) = (
                columns.next(),
                columns.next(),
                columns.next(),
                columns.next(),
            ) {
                let readings = readings
                    .split(' ')
                    .filter_map(|name| match name {
                        "utf-16be" => Some(Reading::Utf16 { big_endian: true }),
                        "utf-16le" => Some(Reading::Utf16 { big_endian: false }),
                        "utf-32be" => Some(Reading::Utf32 { big_endian: true }),
                        "utf-32le" => Some(Reading::Utf32 { big_endian: false }),
                        _ => names.get(name).copied().map(Reading::Table),
                    })
                    .collect();
                by_label.insert(label, readings);
            }
        }
        OtherCharsets { by_label, tables }
    })
}

/// How other widely deployed decoders read a charset label (case-insensitive) that
/// fromguard decodes otherwise or not at all: none for most labels.
#[must_use]
pub fn other_readings(label: &[u8]) -> &'static [Reading] {
    let mut lower = [0u8; MAX_LABEL_LEN];
    let Some(key) = lower.get_mut(..label.len()) else {
        return &[];
    };
    key.copy_from_slice(label);
    key.make_ascii_lowercase();
    std::str::from_utf8(key)
        .ok()
        .and_then(|key| other_charsets().by_label.get(key))
        .map_or(&[][..], Vec::as_slice)
}

/// The bytes of the word's B or Q text.
fn b_or_q_bytes(data: &[u8], word: &EncodedWord<'_>) -> Result<Vec<u8>, DecodeError> {
    let text = data
        .get(word.text_start..word.text_end)
        .ok_or(DecodeError::BadEncoding)?;
    let mut bytes = Vec::new();
    match word.encoding {
        WordEncoding::B => decode_b(text, &mut bytes)?,
        WordEncoding::Q => decode_q(text, &mut bytes)?,
    }
    Ok(bytes)
}

/// The text of `word` with its charset ignored, its bytes read as UTF-8 (malformed
/// sequences becoming U+FFFD): how the programs that decode a charset they do not know
/// anyway read it (the Ruby mail gem behind GitLab and Zendesk; Python's email reads it
/// as ASCII, which agrees on every ASCII byte).
///
/// # Errors
///
/// [`DecodeError::BadEncoding`] when the B or Q text does not decode.
pub fn decode_ignoring_charset(data: &[u8], word: &EncodedWord<'_>) -> Result<String, DecodeError> {
    Ok(String::from_utf8_lossy(&b_or_q_bytes(data, word)?).into_owned())
}

/// The text of `word` in one of the [`other_readings`], malformed sequences becoming
/// U+FFFD.
///
/// # Errors
///
/// [`DecodeError::BadEncoding`] when the B or Q text does not decode.
pub fn decode_other(
    data: &[u8],
    word: &EncodedWord<'_>,
    reading: Reading,
) -> Result<String, DecodeError> {
    let bytes = b_or_q_bytes(data, word)?;
    Ok(match reading {
        Reading::Utf16 { big_endian } => decode_utf16(&bytes, big_endian),
        Reading::Utf32 { big_endian } => decode_utf32(&bytes, big_endian),
        Reading::Table(index) => match other_charsets().tables.get(index) {
            Some(table) => bytes.iter().map(|&b| table[usize::from(b)]).collect(),
            None => "\u{FFFD}".repeat(bytes.len()),
        },
    })
}

/// UTF-16 in the given byte order, unless a byte-order mark (dropped) says otherwise, as
/// Python's codec and iconv read one. An unpaired surrogate is U+FFFD (as in UTF-7); so
/// is a byte left over at the end.
fn decode_utf16(bytes: &[u8], big_endian: bool) -> String {
    let (big_endian, bytes) = match bytes {
        [0xFE, 0xFF, rest @ ..] => (true, rest),
        [0xFF, 0xFE, rest @ ..] => (false, rest),
        _ => (big_endian, bytes),
    };
    let mut out = String::with_capacity(bytes.len());
    let mut high = None;
    let units = bytes.chunks_exact(2);
    let leftover = !units.remainder().is_empty();
    for pair in units {
        let pair = [pair[0], pair[1]];
        let unit = if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        };
        push_utf16_unit(&mut out, &mut high, u32::from(unit));
    }
    if high.is_some() {
        out.push(char::REPLACEMENT_CHARACTER);
    }
    if leftover {
        out.push(char::REPLACEMENT_CHARACTER);
    }
    out
}

/// UTF-32 in the given byte order unless a byte-order mark (dropped) says otherwise. A
/// unit that is a surrogate or above U+10FFFF is U+FFFD; so are 1-3 bytes left over.
fn decode_utf32(bytes: &[u8], big_endian: bool) -> String {
    let (big_endian, bytes) = match bytes {
        [0x00, 0x00, 0xFE, 0xFF, rest @ ..] => (true, rest),
        [0xFF, 0xFE, 0x00, 0x00, rest @ ..] => (false, rest),
        _ => (big_endian, bytes),
    };
    let units = bytes.chunks_exact(4);
    let leftover = !units.remainder().is_empty();
    let mut out: String = units
        .map(|unit| {
            let unit = [unit[0], unit[1], unit[2], unit[3]];
            let unit = if big_endian {
                u32::from_be_bytes(unit)
            } else {
                u32::from_le_bytes(unit)
            };
            char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER)
        })
        .collect();
    if leftover {
        out.push(char::REPLACEMENT_CHARACTER);
    }
    out
}

/// RFC 3501 §5.1.3: modified BASE64, with "," for "/".
fn is_modified_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b','
}

/// `text` with each IMAP modified UTF-7 sequence (RFC 3501 §5.1.3: "&", modified BASE64
/// of UTF-16, "-"; "&-" is "&") decoded as [`decode_utf7`] decodes UTF-7; `None` when it
/// holds no such sequence. An "&" that starts none stays as it is.
#[must_use]
pub fn decode_modified_utf7(text: &str) -> Option<String> {
    memchr::memchr(b'&', text.as_bytes())?;
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut found = false;
    let mut i = 0;
    while let Some(rest) = text.get(i..) {
        let Some(amp) = rest.find('&') else {
            out.push_str(rest);
            break;
        };
        out.push_str(rest.get(..amp).unwrap_or_default());
        let at = i + amp;
        let run_end = at + 1 + run_of_modified_base64(bytes, at + 1);
        if bytes.get(run_end) == Some(&b'-') {
            if run_end == at + 1 {
                out.push('&');
            } else {
                let mut utf7 = Vec::with_capacity(run_end - at + 1);
                utf7.push(b'+');
                let run = bytes.get(at + 1..run_end).unwrap_or_default();
                utf7.extend(run.iter().map(|&b| if b == b',' { b'/' } else { b }));
                utf7.push(b'-');
                out.push_str(&decode_utf7(&utf7));
                found = true;
            }
            i = run_end + 1;
        } else {
            out.push('&');
            i = at + 1;
        }
    }
    found.then_some(out)
}

fn run_of_modified_base64(bytes: &[u8], start: usize) -> usize {
    bytes.get(start..).map_or(0, |rest| {
        rest.iter().take_while(|&&b| is_modified_base64(b)).count()
    })
}

// -- B and Q -------------------------------------------------------------------------------

/// The value of a character of the standard base64 alphabet (RFC 4648 §4).
fn base64_value(c: u8) -> Option<u32> {
    let value = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

/// RFC 2047 §4.1, "B": base64. Padding `=` only at the end; the length without it must
/// not be 1 more than a multiple of 4; padding, when present, must complete the last
/// group of 4 exactly; missing padding is accepted; any other character is an error;
/// leftover bits are ignored. The bytes are appended to `out`.
fn decode_b(text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let body_len = text.iter().rposition(|&c| c != b'=').map_or(0, |p| p + 1);
    let (body, padding) = text.split_at(body_len);
    let remainder = body.len() % 4;
    if remainder == 1 {
        return Err(DecodeError::BadEncoding);
    }
    if !padding.is_empty() && (remainder == 0 || remainder + padding.len() != 4) {
        return Err(DecodeError::BadEncoding);
    }
    out.reserve(body.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &c in body {
        let value = base64_value(c).ok_or(DecodeError::BadEncoding)?;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xFF) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(())
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// RFC 2047 §4.2, "Q": `_` is a space, `=XX` the byte of two hex digits (either case),
/// any other `=` is an error, every other character stands for itself. The bytes are
/// appended to `out`.
fn decode_q(text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    out.reserve(text.len());
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        match c {
            b'_' => {
                out.push(b' ');
                i += 1;
            }
            b'=' => {
                let high = text.get(i + 1).copied().and_then(hex_value);
                let low = text.get(i + 2).copied().and_then(hex_value);
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(DecodeError::BadEncoding);
                };
                out.push((high << 4) | low);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(())
}

/// Whether Q text holds an escape or an underscore: without, it is its own bytes.
fn has_q_escapes(text: &[u8]) -> bool {
    text.iter().any(|&c| c == b'_' || c == b'=')
}

// -- UTF-7 ---------------------------------------------------------------------------------

/// RFC 2152 UTF-7, which `encoding_rs` lacks. Malformed input becomes U+FFFD:
///
/// - an ASCII byte other than `+` stands for itself; a byte of 0x80 or more is one U+FFFD;
/// - `+-` is `+`;
/// - `+` followed by base64 characters starts a run of UTF-16 code units in modified
///   base64; the run ends before the first other character, and a `-` ending it is
///   dropped; the end of the input ends it too;
/// - `+` followed by neither `-` nor a base64 character is one U+FFFD (the next character
///   is then read normally);
/// - at the end of a run, a high surrogate still waiting is one U+FFFD, and leftover bits
///   (6 or more, or any of them non-zero) are one more U+FFFD;
/// - a low surrogate without a high one, or a high surrogate followed by a unit that is
///   not a low surrogate, is one U+FFFD (the following unit is then read normally).
fn decode_utf7(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if b != b'+' {
            out.push(if b < 0x80 {
                char::from(b)
            } else {
                char::REPLACEMENT_CHARACTER
            });
            continue;
        }
        if bytes.get(i) == Some(&b'-') {
            out.push('+');
            i += 1;
            continue;
        }
        let run_start = i;
        let mut acc: u32 = 0;
        let mut bits: u32 = 0;
        let mut high: Option<u32> = None;
        while let Some(value) = bytes.get(i).and_then(|&c| base64_value(c)) {
            i += 1;
            acc = (acc << 6) | value;
            bits += 6;
            if bits >= 16 {
                bits -= 16;
                let unit = (acc >> bits) & 0xFFFF;
                acc &= (1 << bits) - 1;
                push_utf16_unit(&mut out, &mut high, unit);
            }
        }
        if i == run_start {
            out.push(char::REPLACEMENT_CHARACTER);
            continue;
        }
        if high.is_some() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
        if bits >= 6 || acc != 0 {
            out.push(char::REPLACEMENT_CHARACTER);
        }
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
    }
    out
}

fn push_utf16_unit(out: &mut String, high: &mut Option<u32>, unit: u32) {
    match unit {
        0xD800..=0xDBFF => {
            if high.replace(unit).is_some() {
                out.push(char::REPLACEMENT_CHARACTER);
            }
        }
        0xDC00..=0xDFFF => match high.take() {
            Some(h) => {
                let scalar = 0x10000 + ((h - 0xD800) << 10) + (unit - 0xDC00);
                out.push(char::from_u32(scalar).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            None => out.push(char::REPLACEMENT_CHARACTER),
        },
        _ => {
            if high.take().is_some() {
                out.push(char::REPLACEMENT_CHARACTER);
            }
            out.push(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_str(input: &str) -> Result<String, DecodeError> {
        let data = input.as_bytes();
        let word = match_encoded_word(data, 0, data.len()).expect("an encoded-word");
        decode(data, &word).map(Cow::into_owned)
    }

    #[test]
    fn plain_q_text_is_borrowed() {
        let data = b"=?utf-8?q?Hello?=";
        let word = match_encoded_word(data, 0, data.len()).expect("an encoded-word");
        assert!(matches!(decode(data, &word), Ok(Cow::Borrowed("Hello"))));
        let data = b"=?utf-8?q?caf=C3=A9?=";
        let word = match_encoded_word(data, 0, data.len()).expect("an encoded-word");
        assert!(matches!(decode(data, &word), Ok(Cow::Owned(_))));
    }

    #[test]
    fn every_label_is_a_whatwg_label_of_its_encoding() {
        let mut count = 0;
        for line in CHARSETS_TSV.lines() {
            if line.is_empty() || line.starts_with('#') || line.starts_with("label\t") {
                continue;
            }
            let columns: Vec<&str> = line.split('\t').collect();
            assert_eq!(columns.len(), 3, "three columns: {line:?}");
            let (label, encoding) = (columns[0], columns[1]);
            assert_eq!(
                label,
                label.to_ascii_lowercase(),
                "lower-case label {label}"
            );
            assert!(label.len() <= MAX_LABEL_LEN, "label too long: {label}");
            let name = charset_encoding_name(label.as_bytes()).expect("label in the table");
            assert_eq!(name, encoding, "{label}");
            if encoding == "utf-7" {
                assert!(encoding_rs::Encoding::for_label(label.as_bytes()).is_none());
            } else {
                let by_label = encoding_rs::Encoding::for_label(label.as_bytes())
                    .unwrap_or_else(|| panic!("{label} is not a WHATWG label"));
                assert_eq!(by_label.name(), encoding, "{label}");
            }
            count += 1;
        }
        assert_eq!(count, charset_labels().count());
        assert_eq!(count, charset_table().by_label.len(), "no duplicate labels");
    }

    #[test]
    fn labels_are_case_insensitive() {
        assert_eq!(charset_encoding_name(b"UTF-8"), Some("UTF-8"));
        assert_eq!(charset_encoding_name(b"Iso-8859-1"), Some("windows-1252"));
        assert_eq!(charset_encoding_name(b"UTF-7"), Some("utf-7"));
        assert_eq!(charset_encoding_name(b"x-unknown"), None);
        assert_eq!(charset_encoding_name(&[b'a'; 100]), None);
    }

    #[test]
    fn decodes_q_and_b() {
        assert_eq!(decode_str("=?utf-8?q?caf=C3=a9?="), Ok("café".to_owned()));
        assert_eq!(decode_str("=?UTF-8?B?Y2Fmw6k=?="), Ok("café".to_owned()));
        assert_eq!(decode_str("=?utf-8?b?Y2Fmw6k?="), Ok("café".to_owned()));
        assert_eq!(
            decode_str("=?utf-8?b?Y2Fmw6k==?="),
            Err(DecodeError::BadEncoding)
        );
        assert_eq!(decode_str("=?utf-8?q?a=4?="), Err(DecodeError::BadEncoding));
        assert_eq!(
            decode_str("=?x-foo?q?a=4?="),
            Err(DecodeError::UnknownCharset)
        );
    }

    #[test]
    fn matches_are_bounded_by_end() {
        let data = b"=?utf-8?q?a?=";
        assert!(match_encoded_word(data, 0, data.len()).is_some());
        assert!(match_encoded_word(data, 0, data.len() - 1).is_none());
        assert!(match_encoded_word(data, usize::MAX, usize::MAX).is_none());
        assert_eq!(find_encoded_words(data, 0, data.len() - 1).count(), 0);
        assert_eq!(find_encoded_words(data, 5, 2).count(), 0);
        assert_eq!(find_encoded_words(data, usize::MAX, usize::MAX).count(), 0);
    }

    #[test]
    fn decode_with_foreign_spans_is_an_error_not_a_panic() {
        let word = EncodedWord {
            start: 0,
            end: 100,
            charset: b"utf-8",
            encoding: WordEncoding::Q,
            text_start: 50,
            text_end: 40,
        };
        assert_eq!(decode(b"short", &word), Err(DecodeError::BadEncoding));
    }

    #[test]
    fn other_readings_of_labels() {
        let utf32 = [
            Reading::Utf32 { big_endian: true },
            Reading::Utf32 { big_endian: false },
        ];
        assert_eq!(other_readings(b"UTF-32"), utf32);
        assert_eq!(
            other_readings(b"utf-16"),
            [Reading::Utf16 { big_endian: true }]
        );
        assert!(other_readings(b"utf-16le").is_empty());
        assert!(other_readings(b"utf-8").is_empty());
        assert!(other_readings(&[b'x'; 100]).is_empty());
        assert_eq!(other_readings(b"Ebcdic-Cp-Us"), other_readings(b"ibm037"));
        assert!(matches!(other_readings(b"cp037"), [Reading::Table(_)]));
        // Every row of the file resolves: each reading named is a decoder or a table.
        let charsets = other_charsets();
        assert_eq!(charsets.tables.len(), 7);
        for line in OTHER_CHARSETS_TSV.lines() {
            let columns: Vec<&str> = line.split('\t').collect();
            if let ["label", label, readings] = columns[..] {
                assert!(label.bytes().all(is_token_char), "{label}");
                assert!(charset_encoding_name(label.as_bytes()).is_none() || label == "utf-16");
                let found = other_readings(label.as_bytes()).len();
                assert_eq!(found, readings.split(' ').count(), "{label}");
            }
        }
    }

    fn decode_other_str(input: &str, reading: Reading) -> Result<String, DecodeError> {
        let data = input.as_bytes();
        let word = match_encoded_word(data, 0, data.len()).expect("an encoded-word");
        decode_other(data, &word, reading)
    }

    #[test]
    fn utf16_utf32_and_ebcdic_readings() {
        let be16 = Reading::Utf16 { big_endian: true };
        let le32 = Reading::Utf32 { big_endian: false };
        let be32 = Reading::Utf32 { big_endian: true };
        // "ceo@b" in UTF-16BE and UTF-32LE.
        assert_eq!(
            decode_other_str("=?x?b?AGMAZQBvAEAAYg==?=", be16),
            Ok("ceo@b".to_owned())
        );
        assert_eq!(
            decode_other_str("=?x?b?YwAAAGUAAABvAAAAQAAAAGIAAAA=?=", le32),
            Ok("ceo@b".to_owned())
        );
        // A byte-order mark decides the order and is dropped: FF FE then "a" little-endian.
        assert_eq!(
            decode_other_str("=?x?b?//5hAA==?=", be16),
            Ok("a".to_owned())
        );
        assert_eq!(
            decode_other_str("=?x?b?AAD+/wAAAGE=?=", le32),
            Ok("a".to_owned())
        );
        // A lone high surrogate, "A", a byte left over.
        assert_eq!(
            decode_other_str("=?x?q?=D8=00=00A=00?=", be16),
            Ok("\u{FFFD}A\u{FFFD}".to_owned())
        );
        // Above U+10FFFF, "A", a byte left over; a surrogate.
        assert_eq!(
            decode_other_str("=?x?q?=00=11=00=00=00=00=00A=00?=", be32),
            Ok("\u{FFFD}A\u{FFFD}".to_owned())
        );
        assert_eq!(
            decode_other_str("=?x?q?=00=00=D8=00?=", be32),
            Ok("\u{FFFD}".to_owned())
        );
        assert_eq!(
            decode_other_str("=?x?b?Y?=", be32),
            Err(DecodeError::BadEncoding)
        );
        // IBM037: "<a@b>".
        let [ebcdic] = other_readings(b"ibm037") else {
            panic!("one reading");
        };
        assert_eq!(
            decode_other_str("=?ibm037?q?L=81=7C=82n?=", *ebcdic),
            Ok("<a@b>".to_owned())
        );
    }

    #[test]
    fn ignoring_the_charset() {
        let data = b"=?x?q?a=40b=FF?=";
        let word = match_encoded_word(data, 0, data.len()).expect("an encoded-word");
        assert_eq!(
            decode_ignoring_charset(data, &word),
            Ok("a@b\u{FFFD}".to_owned())
        );
    }

    #[test]
    fn modified_utf7() {
        let decoded = |text| decode_modified_utf7(text);
        assert_eq!(
            decoded("ceo&AEA-bank.example").as_deref(),
            Some("ceo@bank.example")
        );
        assert_eq!(
            decoded("&ZeVnLIqe-").as_deref(),
            Some("\u{65E5}\u{672C}\u{8A9E}")
        );
        assert_eq!(decoded("a&-b&AOk-").as_deref(), Some("a&b\u{E9}"));
        assert_eq!(decoded("x&P,8-").as_deref(), Some("x\u{3FFF}"));
        assert_eq!(decoded("&&AEA-").as_deref(), Some("&@"));
        assert_eq!(decoded("Tom&Jerry"), None);
        assert_eq!(decoded("a&-b"), None);
        assert_eq!(decoded("plain"), None);
    }

    #[test]
    fn b_text_alignment() {
        let misaligned = |text: &str| {
            let data = text.as_bytes();
            b_text_misaligned(&match_encoded_word(data, 0, data.len()).expect("a word"))
        };
        assert!(!misaligned("=?utf-8?b?SmFu?="));
        assert!(misaligned("=?utf-8?b?ey?="));
        assert!(misaligned("=?utf-8?b?Y?="));
        assert!(misaligned("=?utf-8?b?SmFuZQ==Y?="));
        assert!(!misaligned("=?utf-8?q?ey?="));
        let data = b"=?utf-8?b?SmFuZQ==Y?=";
        let word = match_encoded_word(data, 0, data.len()).expect("a word");
        let trimmed = without_dangling_b_char(&word).expect("a dangling character");
        assert_eq!(decode(data, &trimmed).as_deref(), Ok("Jane"));
        let data = b"=?utf-8?b?SmFuZQ?=";
        let word = match_encoded_word(data, 0, data.len()).expect("a word");
        assert_eq!(without_dangling_b_char(&word), None);
    }

    #[test]
    fn utf7() {
        assert_eq!(decode_utf7(b"Hi Mom -+Jjo--!"), "Hi Mom -\u{263A}-!");
        assert_eq!(decode_utf7(b"+ZeVnLIqe-"), "\u{65E5}\u{672C}\u{8A9E}");
        assert_eq!(decode_utf7(b"A+ImIDkQ."), "A\u{2262}\u{391}.");
        assert_eq!(decode_utf7(b"1 +- 1"), "1 + 1");
        assert_eq!(decode_utf7(b"+2D3fAQ-"), "\u{1F701}");
        assert_eq!(decode_utf7(b"+"), "\u{FFFD}");
        assert_eq!(decode_utf7(b"+!"), "\u{FFFD}!");
        assert_eq!(decode_utf7(b"+AGE"), "a");
        assert_eq!(decode_utf7(b"+AGF"), "a\u{FFFD}");
        assert_eq!(decode_utf7(b"+AGEA"), "a\u{FFFD}");
        assert_eq!(decode_utf7(b"+2D0-"), "\u{FFFD}");
        assert_eq!(decode_utf7(b"+3AE-"), "\u{FFFD}");
        assert_eq!(decode_utf7(b"\xe9"), "\u{FFFD}");
    }
}

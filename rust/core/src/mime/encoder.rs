//! The warning in a part's charset. Which charsets exist and how they encode is
//! Python's `codecs` in the Python package (the binding implements [`WarningEncoder`]
//! with them, so both engines write the same bytes); [`Builtin`] covers UTF-8, US-ASCII
//! and ISO-8859-1, exactly as Python's codecs do, for Rust callers and for the binding's
//! common case.

/// What the rewrite needs to know of a known charset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CharsetInfo {
    /// Python's codec is named `utf-8` (a byte-order mark at the start of a part is kept
    /// first).
    pub utf8: bool,
    /// ASCII text keeps its bytes in it (not UTF-16, UTF-32, UTF-7, nor a codec that does
    /// not encode text to bytes): only then are bytes spliced into a part.
    pub ascii_compatible: bool,
}

/// The charsets of text parts, as the caller knows them. `charset` is the part's
/// charset parameter, lowercase ASCII; an implementation may cache per charset.
pub trait WarningEncoder {
    /// An error of the implementation (the binding: a Python exception), passed through.
    type Error;
    /// The charset, or None if it is unknown (Python's `codecs.lookup` fails).
    fn lookup(&mut self, charset: &str) -> Result<Option<CharsetInfo>, Self::Error>;
    /// `text` in the (known) charset, or None if it cannot represent every character.
    fn encode(&mut self, charset: &str, text: &str) -> Result<Option<Vec<u8>>, Self::Error>;
    /// `text` in the (known) charset, each character it cannot represent written as a
    /// decimal character reference (`xmlcharrefreplace`).
    fn encode_html(&mut self, charset: &str, text: &str) -> Result<Vec<u8>, Self::Error>;
}

/// The charsets whose coding is simple enough to be exactly Python's here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Builtin {
    Utf8,
    Ascii,
    Latin1,
}

impl Builtin {
    /// The charset of a name that Python's `codecs.lookup` maps to one of these (the
    /// usual spellings only; others are left to the caller).
    pub fn from_name(charset: &str) -> Option<Builtin> {
        match charset {
            "utf-8" | "utf8" => Some(Builtin::Utf8),
            "us-ascii" | "ascii" => Some(Builtin::Ascii),
            "iso-8859-1" | "iso8859-1" | "latin-1" | "latin1" => Some(Builtin::Latin1),
            _ => None,
        }
    }

    pub fn info(self) -> CharsetInfo {
        CharsetInfo {
            utf8: self == Builtin::Utf8,
            ascii_compatible: true,
        }
    }

    fn limit(self) -> u32 {
        match self {
            Builtin::Utf8 => u32::MAX,
            Builtin::Ascii => 0x7f,
            Builtin::Latin1 => 0xff,
        }
    }

    /// Whether `text` in this charset is its UTF-8 bytes (the common case, copied at once).
    fn keeps_bytes_of(self, text: &str) -> bool {
        self == Builtin::Utf8 || text.is_ascii()
    }

    fn push(self, out: &mut Vec<u8>, c: char) {
        match self {
            Builtin::Utf8 => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            // (a char within the limit: one byte)
            Builtin::Ascii | Builtin::Latin1 => {
                out.push(u8::try_from(u32::from(c)).unwrap_or(b'?'))
            }
        }
    }

    /// Strict encoding: None if a character is past the charset.
    pub fn encode(self, text: &str) -> Option<Vec<u8>> {
        if self.keeps_bytes_of(text) {
            return Some(text.as_bytes().to_vec());
        }
        let limit = self.limit();
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            if u32::from(c) > limit {
                return None;
            }
            self.push(&mut out, c);
        }
        Some(out)
    }

    /// `xmlcharrefreplace` encoding.
    pub fn encode_html(self, text: &str) -> Vec<u8> {
        if self.keeps_bytes_of(text) {
            return text.as_bytes().to_vec();
        }
        let limit = self.limit();
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            if u32::from(c) > limit {
                out.extend_from_slice(format!("&#{};", u32::from(c)).as_bytes());
            } else {
                self.push(&mut out, c);
            }
        }
        out
    }
}

/// The encoder for callers without Python: the [`Builtin`] charsets; any other is
/// unknown (the warning's ASCII form, or character references in HTML).
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinEncoder;

impl WarningEncoder for BuiltinEncoder {
    type Error = std::convert::Infallible;

    fn lookup(&mut self, charset: &str) -> Result<Option<CharsetInfo>, Self::Error> {
        Ok(Builtin::from_name(charset).map(Builtin::info))
    }

    fn encode(&mut self, charset: &str, text: &str) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(Builtin::from_name(charset).and_then(|builtin| builtin.encode(text)))
    }

    fn encode_html(&mut self, charset: &str, text: &str) -> Result<Vec<u8>, Self::Error> {
        Ok(Builtin::from_name(charset)
            .unwrap_or(Builtin::Ascii)
            .encode_html(text))
    }
}

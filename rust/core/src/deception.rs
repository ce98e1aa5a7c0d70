//! Deception analysis: shadow addresses and the `deceptive` findings.
//!
//! A port of `python/fromguard/reference/deception.py`, function for function; both give
//! the same results on every input.
//!
//! A From value can be grammatical and still show the reader a sender who did not send
//! it. This pass runs after the grammar, over what the grammar read (its [`Tree`]: the
//! mailboxes, the display names, the tokens, the encoded-words, the rejected text), and
//! reports into the findings sink; it never reads the findings back (they are capped, so
//! padding could hide a unit from it), and never re-parses decoded text as structure (the
//! mistake behind CVE-2023-27043 and several peers' bugs).
//!
//! A *shadow address* is an address-like string that some mail program could display or
//! use instead of the real addr-spec. Each has the span of the unit it was found in (a
//! display name, a comment, an encoded-word, the local part, a domain literal, text the
//! grammar rejected, an addr-spec up to where a lenient parser ends its domain) and a
//! [`ShadowSource`] naming that unit.
//!
//! A shadow equal to the sender's own address (compared case-insensitively in ASCII, with
//! punycode labels decoded) is harmless; so is one in the display name or a comment at
//! the sender's own organisational domain (`psl.rs`); a different one is `deceptive`.
//!
//! The order in which findings are reported is part of the contract with the reference
//! (it decides which findings a value past the findings limit keeps): several authors;
//! then per mailbox its domain, the addresses cut short in it, its route and local
//! part; display names; comments; encoded-words; rejected text; format characters.
//!
//! Text is searched by character, as the reference searches its `str` by code point;
//! offsets here are byte offsets into the UTF-8 text, always at character boundaries, so
//! the addresses found are the same. Every pass is linear in the text it reads.

use std::borrow::Cow;
use std::ops::Range;

use crate::code::Code;
use crate::encoded_word::{self, DecodeError, EncodedWord, Reading};
use crate::findings::Findings;
use crate::lexer::{C_ATEXT, Kind, class, high_runs, lossy};
use crate::limits::MAX_SHADOWS;
use crate::lookalike::{self, FormatContext, FormatKind, normalize_domain};
use crate::model::{Mailbox, Shadow, ShadowSource};
use crate::psl;
use crate::tree::{SeenWord, Tree};

/// RFC 5322 specials other than "<", ">" and "@": in a decoded display name they are an
/// honest name's punctuation (Outlook and Exchange encode "Müller, Jürgen" so), info.
fn is_name_punctuation(c: char) -> bool {
    matches!(
        c,
        ',' | ';' | ':' | '.' | '(' | ')' | '[' | ']' | '"' | '\\'
    )
}

/// "<", ">", "@", or a character whose UTS #39 skeleton holds one (the fullwidth U+FF20,
/// the small U+FE64, U+2039...): what makes decoded text read as an address or an
/// angle-addr.
fn is_address_special(c: char) -> bool {
    if c.is_ascii() {
        return matches!(c, '<' | '>' | '@');
    }
    if WITHOUT_ADDRESS_SPECIALS
        .iter()
        .any(|range| range.contains(&c))
    {
        return false;
    }
    // The skeleton's characters as they come, without collecting them (lookalike::skeleton).
    let mut buffer = [0; 4];
    unicode_security::skeleton(c.encode_utf8(&mut buffer)).any(|p| matches!(p, '<' | '>' | '@'))
}

/// Where no character's skeleton holds "<", ">" or "@" (a test checks every one): the
/// letters of most names (Latin, Greek, Cyrillic, Arabic, Indic, Thai..., kana, CJK,
/// Hangul, fullwidth letters, emoji) are judged without computing a skeleton.
const WITHOUT_ADDRESS_SPECIALS: [std::ops::RangeInclusive<char>; 6] = [
    '\u{80}'..='\u{2C1}',
    '\u{2C4}'..='\u{1432}',
    '\u{16B3}'..='\u{2038}',
    '\u{2D67}'..='\u{FE63}',
    '\u{FF21}'..='\u{FFFF}',
    '\u{1F000}'..='\u{1FFFF}',
];

/// C0 and C1 controls and DEL.
fn is_control(c: char) -> bool {
    c < '\u{20}' || ('\u{7F}'..'\u{A0}').contains(&c)
}

/// Where an encoded-word stands, for [`Analysis::inspect_word`].
#[derive(Clone, Copy)]
struct WordPlace {
    /// No display text shows its decoding: search it for addresses.
    search: bool,
    /// In a local part or domain, where RFC 2047 §5 forbids it.
    in_address: bool,
}

/// What the readings of an encoded-word show.
#[derive(Clone, Copy, Default)]
struct Shows {
    /// [`is_address_special`].
    specials: bool,
    /// [`is_name_punctuation`].
    punctuation: bool,
    control: bool,
    /// Anything that changes an address's structure when put into it: an address
    /// special, punctuation but ".", a control.
    address_structure: bool,
    bidi: bool,
    invisible: bool,
}

impl Shows {
    fn of(text: &str) -> Shows {
        let mut shows = Shows::default();
        for c in text.chars() {
            // Most characters of a name are letters and spaces.
            if c.is_ascii_alphanumeric() || c == ' ' {
                continue;
            }
            let special = is_address_special(c);
            let punctuation = is_name_punctuation(c);
            let control = is_control(c);
            shows.specials |= special;
            shows.punctuation |= punctuation;
            shows.control |= control;
            shows.address_structure |= special || control || (punctuation && c != '.');
        }
        for span in lookalike::format_characters(text) {
            match span.kind {
                FormatKind::Bidi => shows.bidi = true,
                FormatKind::Invisible => shows.invisible = true,
            }
        }
        shows
    }

    fn add(&mut self, other: Shows) {
        self.specials |= other.specials;
        self.punctuation |= other.punctuation;
        self.control |= other.control;
        self.address_structure |= other.address_structure;
        self.bidi |= other.bidi;
        self.invisible |= other.invisible;
    }

    /// Each code once, at the span of the word. Punctuation is named only where no
    /// address special is (it adds nothing then).
    fn report(self, findings: &mut Findings, start: usize, end: usize, in_address: bool) {
        let codes = [
            (self.specials, Code::EncodedWordSpecials),
            (
                self.punctuation && !self.specials,
                Code::EncodedWordPunctuation,
            ),
            (self.control, Code::EncodedWordControl),
            (
                in_address && self.address_structure,
                Code::EncodedWordInAddressSpecials,
            ),
            (self.bidi, Code::BidiControl),
            (self.invisible, Code::InvisibleCharacter),
        ];
        for (shown, code) in codes {
            if shown {
                findings.report(code, start, end);
            }
        }
    }
}

/// The code naming the decoder of another reading that shows address structure.
fn other_decoder_code(reading: Reading) -> Code {
    match reading {
        Reading::Utf16 { .. } => Code::EncodedWordAsUtf16,
        Reading::Utf32 { .. } => Code::EncodedWordAsUtf32,
        // Every table of other_charsets.tsv is an EBCDIC code page.
        Reading::Table(_) => Code::EncodedWordAsEbcdic,
    }
}

/// Where a shadow found in each kind of unit is reported when it differs from the sender
/// (`None` for the sources `compare` never sees).
fn deceptive_code(source: ShadowSource) -> Option<Code> {
    match source {
        ShadowSource::DisplayName => Some(Code::AddressInDisplayName),
        ShadowSource::Comment => Some(Code::AddressInComment),
        ShadowSource::EncodedWord => Some(Code::AddressInEncodedWord),
        ShadowSource::QuotedLocalPart => Some(Code::AddressInQuotedLocalPart),
        // Already reported for the literal.
        ShadowSource::DomainLiteral => Some(Code::DomainLiteralNotIp),
        ShadowSource::RejectedText => Some(Code::AddressInRejectedText),
        ShadowSource::CutAddress => Some(Code::AddressCutShort),
        ShadowSource::PercentHack | ShadowSource::BangPath => None,
    }
}

/// White space outside ASCII, which ends an address-like run like ASCII white space does.
fn is_unicode_space(c: char) -> bool {
    let single = [
        '\u{00A0}', '\u{1680}', '\u{2028}', '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}',
    ];
    single.contains(&c) || ('\u{2000}'..='\u{200A}').contains(&c)
}

/// A character that can be part of an address-like run: for the local part atext and
/// "."; for the domain letters, digits, "-" and "."; on both sides any non-ASCII
/// character but white space (RFC 6532 text, and look-alike letters; a look-alike of a
/// special is read as that special first, see [`plain`]).
fn is_word_char(c: char, in_domain: bool) -> bool {
    if !c.is_ascii() {
        return !is_unicode_space(c);
    }
    if c == '.' {
        return true;
    }
    if in_domain {
        return c.is_ascii_alphanumeric() || c == '-';
    }
    // ASCII, so the cast keeps the character.
    class(c as u8) == C_ATEXT
}

/// What may stand around an "@": RFC 5322 §4.4 (obs-local-part, obs-domain) allows CFWS
/// there, so `ceo @ corp.example` is the addr-spec ceo@corp.example to any parser that
/// reads the text as one (fromguard reports it as `cfws-around-at`), and to a reader.
const GAP: [char; 2] = [' ', '\t'];

/// The character a reader or a normalising program sees: a look-alike of "@", ".", "<"
/// or ">" (`data/lookalike_specials.tsv`) as that ASCII character, else itself.
fn plain(c: char) -> char {
    lookalike::lookalike_special(c).unwrap_or(c)
}

/// Whether `text` holds an "@" or a look-alike of one (the start of any address).
fn has_at(text: &str) -> bool {
    memchr::memchr(b'@', text.as_bytes()).is_some()
        || (!text.is_ascii() && text.chars().any(|c| plain(c) == '@'))
}

/// A character of the local part of an address-like run. A double quote too: a quoted
/// display name `"admin\"@legitimate.example"` shows `admin"@legitimate.example`.
fn is_local_char(c: char) -> bool {
    c == '"' || is_word_char(plain(c), false)
}

/// dtext (RFC 5322 §3.4.1) without white space: the content of `ceo@[10.0.0.1]`.
fn is_literal_char(c: char) -> bool {
    c > ' ' && !matches!(c, '[' | ']' | '\\' | '\u{7F}') && !is_unicode_space(c)
}

/// An address-like run in a text.
struct FoundAddress {
    /// Its byte range in the text.
    range: Range<usize>,
    /// The address a lenient or normalising reader takes it for (the gaps around "@"
    /// closed, look-alike specials made ASCII), when that is not the text of `range`.
    rewritten: Option<String>,
    /// Look-alikes of "@" or "." make it, or of "<" and ">" enclose it.
    lookalike: bool,
}

/// Every address-like `local@domain` in `text`, left to right, not overlapping, read with
/// look-alike specials as the ASCII ones ([`plain`]).
///
/// The domain needs at least two non-empty labels, so that "Jane @ home" and "Team @
/// Example" are not addresses, or is a domain literal (`ceo@[10.0.0.1]`, RFC 5322
/// §3.4.1); spaces or tabs may stand around the "@" then (`ceo @ corp.example`). A
/// single-label domain (`ceo@corp`: RFC 5322 allows it, and nodemailer takes any unquoted
/// `x@y` word for the address, lib/addressparser/index.js) counts only when the whole
/// text is that address, in ASCII but for the "@". Where a look-alike of "@" or "." makes
/// the address, its last label must be ASCII letters, digits and "-" with a letter: honest
/// Japanese names write the fullwidth at sign (U+FF20) for "at" and the ideographic full
/// stop (U+3002) as a full stop (`田中＠営業部。東京`, "Tanaka at Sales. Tokyo"),
/// impersonations imitate an ASCII domain.
fn find_addresses(text: &str) -> Vec<FoundAddress> {
    let mut found = Vec::new();
    if !has_at(text) {
        return found;
    }
    // Byte offsets, always at character boundaries: the reference's character indices.
    let char_after = |i: usize| text.get(i..).and_then(|rest| rest.chars().next());
    let char_before = |i: usize| text.get(..i).and_then(|head| head.chars().next_back());
    let plain_text = |range: Range<usize>| -> String {
        text.get(range)
            .unwrap_or_default()
            .chars()
            .map(plain)
            .collect()
    };
    let is_lookalike_bracket =
        |c: Option<char>| c.is_some_and(|c| matches!(plain(c), '<' | '>') && plain(c) != c);
    // Where an address must start and end to be the whole text (spaces and tabs around).
    let whole_start = text.len() - text.trim_start_matches(GAP).len();
    let whole_end = whole_start + text.trim_matches(GAP).len();
    let mut floor = 0;
    for (at, c) in text.char_indices() {
        if plain(c) != '@' {
            continue;
        }
        let past_at = at + c.len_utf8();
        // A space or tab is one byte.
        let mut before = at;
        while before > floor && char_before(before).is_some_and(|g| GAP.contains(&g)) {
            before -= 1;
        }
        let mut start = before;
        while start > floor {
            match char_before(start) {
                Some(l) if is_local_char(l) => start -= l.len_utf8(),
                _ => break,
            }
        }
        while start < before {
            match char_after(start) {
                Some(l) if plain(l) == '.' || l == '"' => start += l.len_utf8(),
                _ => break,
            }
        }
        let mut after = past_at;
        while char_after(after).is_some_and(|g| GAP.contains(&g)) {
            after += 1;
        }
        let literal = char_after(after) == Some('[');
        let end = if literal {
            let mut close = after + 1;
            while let Some(d) = char_after(close).filter(|&d| is_literal_char(d)) {
                close += d.len_utf8();
            }
            if char_after(close) != Some(']') || close == after + 1 {
                continue;
            }
            close + 1
        } else {
            let mut end = after;
            while let Some(d) = char_after(end).filter(|&d| is_word_char(plain(d), true)) {
                end += d.len_utf8();
            }
            while end > after {
                match char_before(end) {
                    Some(d) if plain(d) == '.' => end -= d.len_utf8(),
                    _ => break,
                }
            }
            end
        };
        if start == before || end == after {
            continue;
        }
        let local = plain_text(start..before);
        let domain = plain_text(after..end);
        let written = text.get(start..end).unwrap_or_default();
        let written_alike = written.chars().any(|c| plain(c) != c);
        let dotted = domain.contains('.') && domain.split('.').all(|label| !label.is_empty());
        let shaped = if literal || dotted {
            // A look-alike "@" or "." must make an ASCII-looking domain.
            let last = domain.rsplit('.').next().unwrap_or_default();
            let imitates_ascii = last.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && last.bytes().any(|b| b.is_ascii_alphabetic());
            literal || imitates_ascii || !written_alike
        } else {
            // One label: the whole text, without gaps around the "@", in ASCII.
            !domain.contains('.')
                && before == at
                && after == past_at
                && (start, end) == (whole_start, whole_end)
                && local.is_ascii()
                && domain.is_ascii()
        };
        if !shaped {
            continue;
        }
        let enclosed =
            is_lookalike_bracket(char_before(start)) || is_lookalike_bracket(char_after(end));
        let address = format!("{local}@{domain}");
        let rewritten = (written != address).then_some(address);
        found.push(FoundAddress {
            range: start..end,
            rewritten,
            lookalike: written_alike || enclosed,
        });
        floor = end;
    }
    found
}

/// A host in a percent hack or bang path: labels of letters, digits and "-" (or any
/// non-ASCII character), separated by single periods. UUCP hosts need no period.
fn is_host_name(text: &str) -> bool {
    text.split('.')
        .all(|label| !label.is_empty() && label.chars().all(|c| is_word_char(c, true) && c != '.'))
}

pub(crate) fn normalize_address(address: &str) -> String {
    let (local, domain) = match address.rfind('@') {
        Some(at) => (
            address.get(..at).unwrap_or_default(),
            address.get(at + 1..).unwrap_or_default(),
        ),
        None => ("", address),
    };
    // Only A-labels make the domain more than lower-cased and trimmed: without one,
    // the address is built in one allocation (the common case, compared per shadow).
    if !lookalike::has_a_label(domain) {
        let domain = domain.trim_end_matches('.');
        let mut normalized = String::with_capacity(local.len() + 1 + domain.len());
        normalized.push_str(local);
        normalized.push('@');
        normalized.push_str(domain);
        normalized.make_ascii_lowercase();
        return normalized;
    }
    let mut normalized = ascii_lower(local);
    normalized.push('@');
    normalized.push_str(&normalize_domain(domain));
    normalized
}

/// Lower case for ASCII letters only: the same in every Unicode version.
fn ascii_lower(text: &str) -> String {
    text.to_ascii_lowercase()
}

/// IPv4-address-literal = Snum 3("." Snum) (RFC 5321 §4.1.3), Snum 0-255.
fn is_ipv4(text: &str) -> bool {
    let mut parts = 0;
    for part in text.split('.') {
        parts += 1;
        let snum = !part.is_empty()
            && part.len() <= 3
            && part.bytes().all(|b| b.is_ascii_digit())
            && part.parse::<u16>().is_ok_and(|n| n <= 255);
        if parts > 4 || !snum {
            return false;
        }
    }
    parts == 4
}

/// IPv6-addr (RFC 5321 §4.1.3, RFC 4291 §2.2): eight groups of 1-4 hex digits, "::"
/// once for one or more zero groups, the last two groups possibly written as IPv4.
fn is_ipv6(text: &str) -> bool {
    let with_ipv4;
    let mut text = text;
    if text.contains('.') {
        let Some((head, tail)) = text.rsplit_once(':') else {
            return false;
        };
        if !is_ipv4(tail) {
            return false;
        }
        // The IPv4 part stands for two groups.
        with_ipv4 = format!("{head}:0:0");
        text = &with_ipv4;
    }
    if text.matches("::").count() > 1 {
        return false;
    }
    if let Some((left, right)) = text.split_once("::") {
        return match (hex_groups(left), hex_groups(right)) {
            (Some(left), Some(right)) => left + right <= 7,
            _ => false,
        };
    }
    hex_groups(text) == Some(8)
}

/// How many ":"-separated groups of 1-4 hex digits `text` is, or `None`.
fn hex_groups(text: &str) -> Option<usize> {
    if text.is_empty() {
        return Some(0);
    }
    let mut groups = 0;
    for group in text.split(':') {
        if group.is_empty() || group.len() > 4 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        groups += 1;
    }
    Some(groups)
}

fn is_ip_literal(content: &str) -> bool {
    if is_ipv4(content) {
        return true;
    }
    // Only ASCII characters lower-case to "ipv6:" (the reference lowers in Unicode).
    let prefix = content.as_bytes().get(..5);
    prefix.is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"ipv6:"))
        && content.get(5..).is_some_and(is_ipv6)
}

/// `text[range]`, borrowed from the input when `text` is.
fn slice_cow<'a>(text: &Cow<'a, str>, range: Range<usize>) -> Cow<'a, str> {
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(text.get(range).unwrap_or_default()),
        Cow::Owned(text) => Cow::Owned(text.get(range).unwrap_or_default().to_owned()),
    }
}

/// `data[start..end]` clamped to the data, as a Python slice is.
fn byte_slice(data: &[u8], start: usize, end: usize) -> &[u8] {
    let end = end.min(data.len());
    data.get(start.min(end)..end).unwrap_or_default()
}

/// The normalized address of mailbox `k`, computed once.
fn own_address<'c>(
    cache: &'c mut Vec<Option<String>>,
    mailboxes: &[Mailbox<'_>],
    k: usize,
) -> &'c str {
    if cache.is_empty() {
        cache.resize(mailboxes.len(), None);
    }
    let Some(slot) = cache.get_mut(k) else {
        return "";
    };
    slot.get_or_insert_with(|| {
        let mailbox = mailboxes.get(k);
        let local = mailbox.map_or("", |m| &m.local_part);
        let domain = mailbox.map_or("", |m| &m.domain);
        normalize_address(&format!("{local}@{domain}"))
    })
}

/// Every deception pass over what the grammar read, reporting into `findings`; returns
/// the shadows sorted by `(start, end, source name, address)`, the first MAX_SHADOWS of
/// them.
pub(crate) fn analyse<'a>(tree: &Tree<'a>, findings: &mut Findings) -> Vec<Shadow<'a>> {
    Analysis {
        tree,
        findings,
        shadows: Vec::new(),
        own: Vec::new(),
    }
    .run()
}

/// One deception pass over a finished parse.
struct Analysis<'t, 'a> {
    tree: &'t Tree<'a>,
    findings: &'t mut Findings,
    shadows: Vec<Shadow<'a>>,
    /// The normalized address of each mailbox, once a unit has been compared with it
    /// (grown on first use: most values compare nothing).
    own: Vec<Option<String>>,
}

impl<'a> Analysis<'_, 'a> {
    /// The mailbox a unit at `start` belongs to: the one whose list element holds it,
    /// else the last one before it, else the first.
    ///
    /// The list elements follow one another without overlapping (each ends at the comma
    /// or semicolon the next one starts after), so the last one starting at or before
    /// `start` is the one the reference's forward walk stops at; it is found by binary
    /// search, so that many units over many mailboxes stay linear.
    fn real_mailbox(&self, start: usize) -> Option<usize> {
        let count = self.tree.mailboxes.len();
        if count == 0 {
            return None;
        }
        let elements = self.tree.elements.get(..count).unwrap_or(&[]);
        let before = elements.partition_point(|&(element_start, _)| element_start <= start);
        Some(before.saturating_sub(1))
    }

    fn shadow(&mut self, address: Cow<'a, str>, source: ShadowSource, start: usize, end: usize) {
        self.shadows.push(Shadow {
            address,
            source,
            start,
            end,
        });
    }

    /// Record each address in `text` as a shadow, and report the unit once per kind:
    /// `deceptive` if an address differs from the sender's (`lookalike-address` when
    /// look-alike specials make it); in display names and comments, `info` where each is
    /// the sender's own address or at the sender's own organisational domain (Public
    /// Suffix List; at a shared mailbox provider such as `gmail.com`, only the sender's own
    /// address is).
    #[allow(
        clippy::ptr_arg,
        reason = "the Cow says whether the shadows can borrow from the input"
    )]
    fn compare(&mut self, text: &Cow<'a, str>, source: ShadowSource, start: usize, end: usize) {
        self.compare_found(text, find_addresses(text), source, start, end);
    }

    /// A display name is compared as read and, where that is not how it is written, as
    /// written too: MimeKit and GMime read an element whose phrase meets an "@" as an
    /// addr-spec from its first byte (InternetAddress.cs, TryParse, "rewind back to the
    /// beginning of the local-part"; gmime/internet-address.c `address_parse`), so
    /// `ceo@bank.example"x" <m@mallory.example>` holds the mailbox ceo@bank.example for
    /// them, where the name reads `ceo@bank.examplex`.
    #[allow(
        clippy::ptr_arg,
        reason = "the Cow says whether the shadows can borrow from the input"
    )]
    fn compare_phrase(&mut self, text: &Cow<'a, str>, start: usize, end: usize) {
        // Most names hold no "@": nothing to compare then.
        if !has_at(text) {
            return;
        }
        let mut addresses = find_addresses(text);
        let written = lossy(byte_slice(self.tree.data, start, end));
        // A quoted name that reads as written but for its quotes shows nothing more.
        let quoted = written
            .strip_prefix('"')
            .and_then(|inner| inner.strip_suffix('"'));
        if written != *text && quoted != Some(&**text) {
            for found in find_addresses(&written) {
                let address = found
                    .rewritten
                    .unwrap_or_else(|| written.get(found.range).unwrap_or_default().to_owned());
                let known = addresses.iter().any(|read| {
                    read.rewritten
                        .as_deref()
                        .unwrap_or_else(|| text.get(read.range.clone()).unwrap_or_default())
                        == address
                });
                if !known {
                    addresses.push(FoundAddress {
                        range: 0..0,
                        rewritten: Some(address),
                        lookalike: found.lookalike,
                    });
                }
            }
        }
        self.compare_found(text, addresses, ShadowSource::DisplayName, start, end);
    }

    /// [`Analysis::compare`] of the addresses found in `text`.
    #[allow(
        clippy::ptr_arg,
        reason = "the Cow says whether the shadows can borrow from the input"
    )]
    fn compare_found(
        &mut self,
        text: &Cow<'a, str>,
        addresses: Vec<FoundAddress>,
        source: ShadowSource,
        start: usize,
        end: usize,
    ) {
        if addresses.is_empty() {
            return;
        }
        let real = self.real_mailbox(start);
        let own = real.map(|k| own_address(&mut self.own, &self.tree.mailboxes, k));
        // In the sender's name (display names, comments) an address at the sender's own
        // organisational domain is the organisation naming itself ("support@mail.bank"
        // for noreply@bank), as DMARC's relaxed alignment accepts it (RFC 7489 §3.2); one
        // written with look-alike specials is not.
        let names_sender = matches!(source, ShadowSource::DisplayName | ShadowSource::Comment);
        let own_mailbox = real.and_then(|k| self.tree.mailboxes.get(k));
        let mut own_organisation: Option<String> = None;
        let (mut differs, mut lookalike_differs) = (false, false);
        let mut same_organisation = false;
        for found in addresses {
            let address = match found.rewritten {
                Some(rewritten) => Cow::Owned(rewritten),
                None => slice_cow(text, found.range),
            };
            if own != Some(normalize_address(&address).as_str()) {
                if found.lookalike {
                    lookalike_differs = true;
                } else if let Some(mailbox) = own_mailbox.filter(|_| names_sender && !differs) {
                    let own_organisation = own_organisation.get_or_insert_with(|| {
                        psl::organisation(&mailbox.local_part, &mailbox.domain)
                    });
                    let (local, domain) = address.rsplit_once('@').unwrap_or(("", &address));
                    if psl::organisation(local, domain) == *own_organisation {
                        same_organisation = true;
                    } else {
                        differs = true;
                    }
                } else {
                    differs = true;
                }
            }
            self.shadows.push(Shadow {
                address,
                source,
                start,
                end,
            });
        }
        // The literal is reported as not an IP already.
        if source == ShadowSource::DomainLiteral {
            return;
        }
        if differs && let Some(code) = deceptive_code(source) {
            self.findings.report(code, start, end);
        }
        if lookalike_differs {
            self.findings.report(Code::LookalikeAddress, start, end);
        }
        if !(differs || lookalike_differs) && names_sender {
            let code = if same_organisation {
                Code::DisplayNameOwnOrganisation
            } else {
                Code::DisplayNameIsAddress
            };
            self.findings.report(code, start, end);
        }
    }

    // -- the passes, in reporting order ---------------------------------------------------

    /// Runs every pass; returns the shadows sorted by `(start, end, source name,
    /// address)`, the first MAX_SHADOWS of them.
    fn run(mut self) -> Vec<Shadow<'a>> {
        let tree = self.tree;
        let count = tree.mailboxes.len();
        if count > 1 {
            let start = tree.mailboxes.get(1).map_or(0, |m| m.span.0);
            let end = tree.mailboxes.last().map_or(0, |m| m.span.1);
            self.findings.report(Code::SeveralAuthors, start, end);
        }
        for mailbox in &tree.mailboxes {
            self.domain(mailbox);
            self.cut_addresses(mailbox);
            self.route(mailbox);
            self.local_part(mailbox);
        }
        for (start, end, text) in &tree.phrases {
            self.compare_phrase(text, *start, *end);
        }
        for token in tree
            .tokens
            .iter()
            .filter(|token| token.kind == Kind::Comment)
        {
            if let Some(text) = tree.texts.get(token.text) {
                self.compare(text, ShadowSource::Comment, token.start, token.end);
            }
        }
        self.encoded_words();
        self.rejected_text();
        self.format_characters();
        let mut shadows = self.shadows;
        shadows.sort_by(|a, b| {
            (a.start, a.end, a.source.as_str(), &*a.address).cmp(&(
                b.start,
                b.end,
                b.source.as_str(),
                &*b.address,
            ))
        });
        if let Some(first_dropped) = shadows.get(MAX_SHADOWS) {
            let (start, end) = (first_dropped.start, first_dropped.end);
            self.findings.report(Code::TooManyShadows, start, end);
            shadows.truncate(MAX_SHADOWS);
        }
        shadows
    }

    fn domain(&mut self, mailbox: &Mailbox<'a>) {
        let (start, end) = mailbox.domain_span;
        let domain = &mailbox.domain;
        if domain.starts_with('[') {
            let content_end = if domain.len() >= 2 && domain.ends_with(']') {
                domain.len() - 1
            } else {
                domain.len()
            };
            let content = slice_cow(domain, 1..content_end);
            if !is_ip_literal(&content) {
                self.findings.report(Code::DomainLiteralNotIp, start, end);
                self.compare(&content, ShadowSource::DomainLiteral, start, end);
            }
            return;
        }
        let analysis = lookalike::analyze_domain(domain);
        if analysis.punycode {
            self.findings.report(Code::PunycodeDomain, start, end);
        }
        if analysis.bad_punycode {
            self.findings.report(Code::BadPunycode, start, end);
        }
        if analysis.mixed_script {
            self.findings.report(Code::MixedScriptDomain, start, end);
        }
        if analysis.ascii_lookalike.is_some() {
            self.findings.report(Code::ConfusableDomain, start, end);
        }
        // Punycode can hide format characters too.
        if let Some(unicode) = &analysis.unicode {
            self.report_format_kinds(unicode, FormatContext::Domain, start, end);
        }
    }

    /// The addr-spec up to where a lenient parser ends its domain, searched like the other
    /// units, when that leaves a domain of its own (two labels at least): obs-domain (RFC
    /// 5322 §4.4: `obs-domain = atom *("." atom)`, an atom with CFWS around its atext)
    /// lets a comment stand between the labels, and the grammar keeps a backslash there
    /// (`backslash-outside-quotes`).
    ///
    /// JavaMail ends an address at its first comment (InternetAddress.java, `parse`, `case
    /// '('`: `end = index`), so `parseHeader(s, false)` and `parse(s)` read
    /// `ceo@bank.example(x).mallory.example` as ceo@bank.example (inside angle brackets it
    /// shows the comment in place, and a reader takes the text before it for the address).
    /// MimeKit and GMime read the whole domain then, as RFC 5322 does, but end a dot-atom
    /// at a backslash after an atom (ParseUtils.TryParseDotAtom, gmime/internet-address.c
    /// `dotatom_parse`: it is no atext) and keep the mailbox, so
    /// `ceo@bank.example\.mallory.example` is ceo@bank.example to them; after a period it
    /// fails the mailbox instead. A cut after the first label only leaves no other sender
    /// (`jdoe@machine(comment).  example`, RFC 5322 A.6.3).
    fn cut_addresses(&mut self, mailbox: &Mailbox<'a>) {
        let tree = self.tree;
        let (domain_start, domain_end) = mailbox.domain_span;
        // A domain read without CFWS is as long as its text, so holds no comment; and most
        // values have no backslash outside quotes at all.
        let with_cfws = domain_end.saturating_sub(domain_start) > mailbox.domain.len();
        if !with_cfws && tree.backslashes.is_empty() {
            return;
        }
        let (start, _) = mailbox.local_part_span;
        if with_cfws {
            // Tokens are in input order: the first comment from the local part on.
            let first = tree.tokens.partition_point(|token| token.start < start);
            let comment = tree
                .tokens
                .get(first..)
                .unwrap_or_default()
                .iter()
                .take_while(|token| token.start < domain_end)
                .find(|token| token.kind == Kind::Comment);
            if let Some(comment) = comment.filter(|comment| comment.start > domain_start) {
                self.cut_address(start, domain_start, comment.start);
            }
        }
        // The first backslash outside quotes in the domain (comments' quoted-pairs are not
        // among them): the grammar keeps them in input order.
        let backslashes = &tree.backslashes;
        let k = backslashes.partition_point(|&backslash| backslash < domain_start);
        let Some(&backslash) = backslashes.get(k).filter(|&&b| b < domain_end) else {
            return;
        };
        let after_atom = backslash
            .checked_sub(1)
            .and_then(|before| tree.data.get(before))
            .is_some_and(|&b| !matches!(b, b'.' | b')' | b' ' | b'\t' | b'\r' | b'\n'));
        if backslash > domain_start && after_atom {
            self.cut_address(start, domain_start, backslash);
        }
    }

    /// The address from `start` to `cut` (white space before the cut trimmed, as JavaMail
    /// trims it), compared when its domain, from `domain_start`, has two labels at least.
    fn cut_address(&mut self, start: usize, domain_start: usize, cut: usize) {
        let data = self.tree.data;
        let end = start + byte_slice(data, start, cut).trim_ascii_end().len();
        let labels = byte_slice(data, domain_start, end)
            .split(|&b| b == b'.')
            .filter(|label| !label.is_empty())
            .count();
        if labels >= 2 {
            let text = lossy(byte_slice(data, start, end));
            self.compare(&text, ShadowSource::CutAddress, start, end);
        }
    }

    fn route(&mut self, mailbox: &Mailbox<'a>) {
        if mailbox.route.is_empty() {
            return;
        }
        let own = normalize_domain(&mailbox.domain);
        if !mailbox
            .route
            .iter()
            .any(|domain| normalize_domain(domain) != own)
        {
            return;
        }
        // The grammar reports routes in input order: the first one in the mailbox is
        // found by binary search, so many routes and mailboxes cost no quadratic time.
        let (start, end) = mailbox.span;
        let routes = &self.tree.routes;
        let first = routes.partition_point(|&(route, _)| route < start);
        let route = routes.get(first).filter(|&&(route, _)| route < end);
        let (start, end) = route.copied().unwrap_or(mailbox.span);
        self.findings.report(Code::RouteOtherDomain, start, end);
    }

    /// A quoted local part holding an address; user%host and host!user routing.
    fn local_part(&mut self, mailbox: &Mailbox<'a>) {
        let local = &mailbox.local_part;
        let (start, end) = mailbox.local_part_span;
        if has_at(local) {
            self.compare(local, ShadowSource::QuotedLocalPart, start, end);
            return;
        }
        // Most local parts route nowhere: no domain to normalize then.
        if !local.contains(['%', '!']) {
            return;
        }
        let own = normalize_domain(&mailbox.domain);
        if let Some((user, host)) = local.rsplit_once('%')
            && !user.is_empty()
            && is_host_name(host)
        {
            let address = Cow::Owned(format!("{user}@{host}"));
            self.shadow(address, ShadowSource::PercentHack, start, end);
            let code = if normalize_domain(host) == own {
                Code::PercentHack
            } else {
                Code::PercentHackOtherDomain
            };
            self.findings.report(code, start, end);
        }
        let mut hops = local.rsplit('!');
        let (Some(user), Some(host)) = (hops.next(), hops.next()) else {
            return;
        };
        if !user.is_empty() && is_host_name(host) {
            let address = Cow::Owned(format!("{user}@{host}"));
            self.shadow(address, ShadowSource::BangPath, start, end);
            let code = if normalize_domain(host) == own {
                Code::BangPath
            } else {
                Code::BangPathOtherDomain
            };
            self.findings.report(code, start, end);
        }
    }

    /// Every encoded-word, decoded or not: what its text would show, in fromguard's
    /// reading and in other decoders'. Those the grammar does not decode (RFC 2047 forbids
    /// their place, or the charset is not fromguard's) are searched for addresses too.
    /// Then IMAP modified UTF-7 in the addresses.
    fn encoded_words(&mut self) {
        let tree = self.tree;
        // Stable, as the reference's sort of the words in the order reported.
        let mut words = tree.words.clone();
        words.sort_by_key(|seen| (seen.word.start, seen.word.end));
        // The comments' words were decoded by the lexer, before the phrases' words.
        let mut decoded: Vec<_> = tree.decoded.iter().collect();
        decoded.sort_by_key(|&&(start, end, _)| (start, end));
        for SeenWord { word, code } in words {
            let known = decoded
                .binary_search_by_key(&(word.start, word.end), |&&(start, end, _)| (start, end))
                .ok()
                .and_then(|k| decoded.get(k))
                .map(|(_, _, text)| text);
            let place = WordPlace {
                search: code != Code::EncodedWord,
                in_address: code == Code::EncodedWordInAddress,
            };
            self.inspect_word(&word, known, place);
        }
        self.modified_utf7();
    }

    /// Judge what an encoded-word shows, in every reading (fromguard's decoding, given
    /// as `known` when the grammar made it, and other decoders'): address specials,
    /// punctuation, controls, format characters, each reported once; with
    /// `place.search`, the addresses of every reading; for an other decoder's reading
    /// that shows structure, the code naming that decoder. B text out of groups of 4 is
    /// reported here, wherever the word stands (decoders disagree on it).
    fn inspect_word(
        &mut self,
        word: &EncodedWord<'_>,
        known: Option<&Cow<'a, str>>,
        place: WordPlace,
    ) {
        let (start, end) = (word.start, word.end);
        if encoded_word::b_text_misaligned(word) {
            self.findings.report(Code::EncodedWordBLength, start, end);
        }
        let mut shows = Shows::default();
        match known {
            Some(text) => shows.add(self.read(text, start, end, place.search)),
            None => match encoded_word::decode(self.tree.data, word) {
                Ok(text) => shows.add(self.read(&text, start, end, place.search)),
                // RFC 2047 §5 forbids the word here; the programs that decode it anyway
                // ignore a charset they do not know and take its bytes (Heyes 2024).
                Err(DecodeError::UnknownCharset) if place.in_address => {
                    if let Ok(text) = encoded_word::decode_ignoring_charset(self.tree.data, word) {
                        shows.add(self.read(&Cow::Owned(text), start, end, true));
                    }
                }
                // Not decoded here, but GMime and Thunderbird decode the whole groups.
                Err(DecodeError::BadEncoding) => {
                    let trimmed = encoded_word::without_dangling_b_char(word);
                    let data = self.tree.data;
                    if let Some(Ok(text)) = trimmed.map(|w| encoded_word::decode(data, &w)) {
                        shows.add(self.read(&text, start, end, true));
                    }
                }
                Err(DecodeError::UnknownCharset) => {}
            },
        }
        // A label has at most two readings; a byte-order mark makes them one text.
        let mut read: Vec<String> = Vec::new();
        let mut named: Vec<Code> = Vec::new();
        for &reading in encoded_word::other_readings(word.charset) {
            let Ok(text) = encoded_word::decode_other(self.tree.data, word, reading) else {
                continue;
            };
            if read.contains(&text) {
                continue;
            }
            let text = Cow::Owned(text);
            let other = self.read(&text, start, end, true);
            let code = other_decoder_code(reading);
            if (other.specials || other.control) && !named.contains(&code) {
                self.findings.report(code, start, end);
                named.push(code);
            }
            shows.add(other);
            read.push(text.into_owned());
        }
        shows.report(self.findings, start, end, place.in_address);
    }

    /// What one reading of an encoded-word shows; with `search`, its addresses are
    /// compared with the sender's.
    #[allow(
        clippy::ptr_arg,
        reason = "the Cow says whether the shadows can borrow from the input"
    )]
    fn read(&mut self, text: &Cow<'a, str>, start: usize, end: usize, search: bool) -> Shows {
        if search {
            self.compare(text, ShadowSource::EncodedWord, start, end);
        }
        Shows::of(text)
    }

    /// IMAP modified UTF-7 (RFC 3501 §5.1.3) in a local part or domain that decodes to
    /// address structure: `ceo&AEA-bank.example@relay` is `ceo@bank.example@relay` to a
    /// program that decodes it.
    fn modified_utf7(&mut self) {
        let tree = self.tree;
        for mailbox in &tree.mailboxes {
            let parts = [
                (&mailbox.local_part, mailbox.local_part_span),
                (&mailbox.domain, mailbox.domain_span),
            ];
            for (text, (start, end)) in parts {
                let Some(decoded) = encoded_word::decode_modified_utf7(text) else {
                    continue;
                };
                if Shows::of(&decoded).address_structure {
                    self.findings
                        .report(Code::ModifiedUtf7InAddress, start, end);
                    self.compare(&Cow::Owned(decoded), ShadowSource::EncodedWord, start, end);
                }
            }
        }
    }

    /// Bidi controls and invisible characters in decoded text that are not honest in
    /// `context`, once per kind, at the span of the unit that decodes to it.
    fn report_format_kinds(
        &mut self,
        text: &str,
        context: FormatContext,
        start: usize,
        end: usize,
    ) {
        let spans = lookalike::format_characters_in(text, context);
        if spans.iter().any(|span| span.kind == FormatKind::Bidi) {
            self.findings.report(Code::BidiControl, start, end);
        }
        if spans.iter().any(|span| span.kind == FormatKind::Invisible) {
            self.findings.report(Code::InvisibleCharacter, start, end);
        }
    }

    /// Text the grammar skipped (after an address, or an element without one), and the
    /// decoded text of the encoded-words in it.
    fn rejected_text(&mut self) {
        let tree = self.tree;
        let mut spans = tree.rejected.clone();
        spans.sort_unstable();
        let mut inspected: Vec<(usize, usize)> = tree
            .words
            .iter()
            .map(|seen| (seen.word.start, seen.word.end))
            .collect();
        inspected.sort_unstable();
        for (start, end) in spans {
            let text = lossy(byte_slice(tree.data, start, end));
            self.compare(&text, ShadowSource::RejectedText, start, end);
            for word in encoded_word::find_encoded_words(tree.data, start, end) {
                // Skip words inspected already, e.g. decoded in a comment there.
                if inspected.binary_search(&(word.start, word.end)).is_err() {
                    let place = WordPlace {
                        search: true,
                        in_address: false,
                    };
                    self.inspect_word(&word, None, place);
                }
            }
        }
    }

    /// Bidi controls and invisible characters in the raw text (each valid UTF-8 run),
    /// but for those honest there. A run holds a joiner's context whole (its neighbours
    /// outside the run are ASCII, which no context rule accepts); a bidi mark is judged by
    /// the whole value: right-to-left text when some run holds a right-to-left letter.
    fn format_characters(&mut self) {
        let data = self.tree.data;
        // Most text holds no format character: answered a block at a time (see
        // lookalike::is_plain) before the context, every character's bidi class.
        let plain = high_runs(data, 0, data.len())
            .all(|(_, _, text)| lookalike::is_plain_text(text.unwrap_or_default()));
        if plain {
            return;
        }
        let right_to_left = high_runs(data, 0, data.len()).any(|(_, _, text)| {
            text.unwrap_or_default()
                .chars()
                .any(lookalike::is_right_to_left)
        });
        let context = if right_to_left {
            FormatContext::RightToLeftText
        } else {
            FormatContext::Text
        };
        for (i, _, text) in high_runs(data, 0, data.len()) {
            for span in lookalike::format_characters_in(text.unwrap_or_default(), context) {
                let code = match span.kind {
                    FormatKind::Bidi => Code::BidiControl,
                    FormatKind::Invisible => Code::InvisibleCharacter,
                };
                self.findings.report(code, i + span.start, i + span.end);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::parse;
    use crate::model::Profile;

    fn addresses(text: &str) -> Vec<String> {
        find_addresses(text)
            .into_iter()
            .map(|found| {
                found
                    .rewritten
                    .unwrap_or_else(|| text[found.range].to_owned())
            })
            .collect()
    }

    #[test]
    fn addresses_are_found_by_character() {
        let none = Vec::<String>::new();
        assert_eq!(addresses("ceo@bank.example"), ["ceo@bank.example"]);
        assert_eq!(addresses("Jane @ home"), none);
        assert_eq!(addresses("a@b"), ["a@b"]);
        assert_eq!(addresses("x a@b"), none);
        assert_eq!(addresses("..a@b.c.."), ["a@b.c"]);
        assert_eq!(addresses("a@b.c@d.e"), ["a@b.c"]);
        assert_eq!(addresses("x a@b.c, d@e.f"), ["a@b.c", "d@e.f"]);
        assert_eq!(addresses("jörg@bü.example"), ["jörg@bü.example"]);
        // Non-ASCII white space ends a run; other non-ASCII characters do not.
        assert_eq!(addresses("x\u{3000}a@b.c\u{00A0}y"), ["a@b.c"]);
        assert_eq!(addresses("a@b..c"), none);
        assert_eq!(addresses("@@@"), none);
        assert_eq!(addresses(""), none);
    }

    #[test]
    fn odd_shapes_are_read_as_lenient_readers_read_them() {
        let none = Vec::<String>::new();
        assert_eq!(addresses("ceo @ corp.example"), ["ceo@corp.example"]);
        assert_eq!(addresses("ceo\t@corp.example"), ["ceo@corp.example"]);
        assert_eq!(addresses("Team @ Example"), none);
        assert_eq!(addresses("ceo@[10.0.0.1]"), ["ceo@[10.0.0.1]"]);
        assert_eq!(addresses("x ceo @ [IPv6:::1] y"), ["ceo@[IPv6:::1]"]);
        assert_eq!(addresses("ceo@[]"), none);
        assert_eq!(addresses("ceo@[a b]"), none);
        assert_eq!(addresses(" ceo@corp "), ["ceo@corp"]);
        assert_eq!(addresses("ceo @ corp"), none);
        assert_eq!(addresses("jörg@corp"), none);
        assert_eq!(
            addresses("admin\"@legitimate.example"),
            ["admin\"@legitimate.example"]
        );
        assert_eq!(addresses("\"ceo@bank.example\""), ["ceo@bank.example"]);
    }

    #[test]
    fn lookalike_specials_are_read_as_ascii() {
        let found = find_addresses("ceo\u{FF20}bank\u{FF0E}example");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rewritten.as_deref(), Some("ceo@bank.example"));
        assert_eq!(found[0].range, 0..20);
        assert!(found[0].lookalike);
        assert_eq!(addresses("a\u{FE6B}b\u{3002}example"), ["a@b.example"]);
        assert_eq!(addresses("a@b\u{2024}example"), ["a@b.example"]);
        assert_eq!(addresses("a\u{FF20}corp"), ["a@corp"]);
        // Enclosed in look-alike brackets: plain inside, but flagged.
        let found = find_addresses("\u{FF1C}ceo@bank.example\u{FF1E}");
        assert_eq!(found[0].rewritten, None);
        assert!(found[0].lookalike);
        assert!(!find_addresses("<ceo@bank.example>")[0].lookalike);
        // Honest CJK: a full stop is no address, nor a department after "＠".
        assert_eq!(addresses("東京\u{3002}大阪"), Vec::<String>::new());
        assert_eq!(addresses("田中\u{FF20}営業部"), Vec::<String>::new());
        assert_eq!(
            addresses("田中\u{FF20}営業部\u{3002}東京"),
            Vec::<String>::new()
        );
        assert_eq!(addresses("田中@営業部.東京"), ["田中@営業部.東京"]);
    }

    #[test]
    fn address_specials_and_their_look_alikes() {
        for c in [
            '<', '>', '@', '\u{FF20}', '\u{FE6B}', '\u{FF1C}', '\u{FF1E}', '\u{FE64}',
        ] {
            assert!(is_address_special(c), "{c:?}");
        }
        for c in ['a', ',', '.', '\u{FC}', '\u{4E00}', '\u{3000}'] {
            assert!(!is_address_special(c), "{c:?}");
        }
        // The ranges skipped hold no character whose skeleton has "<", ">" or "@".
        for range in WITHOUT_ADDRESS_SPECIALS {
            for c in range {
                let mut buffer = [0; 4];
                let skeleton = lookalike::skeleton(c.encode_utf8(&mut buffer));
                assert!(!skeleton.contains(['<', '>', '@']), "{c:?}");
            }
        }
    }

    #[test]
    fn ip_literals() {
        assert!(is_ip_literal("192.0.2.1"));
        assert!(!is_ip_literal("192.0.2.256"));
        assert!(!is_ip_literal("192.0.2"));
        assert!(!is_ip_literal("1.2.3.4.5"));
        assert!(!is_ip_literal("01234.0.0.1"));
        assert!(is_ip_literal("IPv6:::1"));
        assert!(is_ip_literal("ipv6:2001:db8::1"));
        assert!(is_ip_literal("IPv6:1:2:3:4:5:6:7:8"));
        assert!(!is_ip_literal("IPv6:1:2:3:4:5:6:7:8:9"));
        assert!(is_ip_literal("IPv6:::ffff:192.0.2.1"));
        assert!(is_ip_literal("IPv6:1:2:3:4:5:6:192.0.2.1"));
        assert!(!is_ip_literal("IPv6:1:2:3:4:5:6:7:192.0.2.1"));
        assert!(!is_ip_literal("IPv6:1::2::3"));
        assert!(!is_ip_literal("IPv6::::"));
        assert!(!is_ip_literal("IPv6:"));
        assert!(!is_ip_literal("bank.example"));
        assert!(!is_ip_literal("İPv6:::1"));
        assert!(!is_ip_literal("IPv6:ü"));
    }

    #[test]
    fn normalization_is_ascii_case_and_punycode() {
        assert_eq!(normalize_address("CEO@Bank.Example."), "ceo@bank.example");
        assert_eq!(
            normalize_address("a@XN--MNCHEN-3YA.example"),
            "a@münchen.example"
        );
        assert_eq!(normalize_address("nobody"), "@nobody");
        assert_eq!(ascii_lower("ÄB"), "Äb");
    }

    #[test]
    fn shadows_are_sorted_and_reported() {
        let parsed = parse(
            b"\"ceo@bank.example\" (x@y.example) <m@mallory.example>",
            Profile::default(),
        );
        let shadows: Vec<_> = parsed
            .shadows
            .iter()
            .map(|s| (&*s.address, s.source.as_str(), s.start, s.end))
            .collect();
        assert_eq!(
            shadows,
            [
                ("ceo@bank.example", "display-name", 0, 18),
                ("x@y.example", "comment", 19, 32)
            ]
        );
        // Borrowed from the input: no copy for a verbatim address.
        assert!(matches!(parsed.shadows[0].address, Cow::Borrowed(_)));
        let codes: Vec<_> = parsed.findings.iter().map(|f| f.code).collect();
        assert!(codes.contains(&Code::AddressInDisplayName));
        assert!(codes.contains(&Code::AddressInComment));
    }

    #[test]
    fn own_address_is_only_info() {
        let parsed = parse(
            b"\"M@Mallory.Example\" <m@mallory.example>",
            Profile::default(),
        );
        let codes: Vec<_> = parsed.findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, [Code::DisplayNameIsAddress]);
        assert_eq!(parsed.shadows.len(), 1);
    }

    /// Pieces of values the deception pass looks into.
    const PIECES: &[&[u8]] = &[
        b"a",
        b"ceo@bank.example",
        b"CEO@BANK.EXAMPLE.",
        b"u%bank.example",
        b"h!u",
        b"xn--bnk-6cd.example",
        b"xn--zz",
        b"b\xd0\xb0nk",
        b"\xe2\x80\xae",
        b"\xe2\x80\x8b",
        b"\xe3\x80\x80",
        b"\xff",
        b"@",
        b".",
        b"<",
        b">",
        b",",
        b":",
        b";",
        b"\"",
        b"(",
        b")",
        b"[",
        b"]",
        b"[IPv6:::1]",
        b" ",
        b"\r\n ",
        b"=?utf-8?q?a=40b.example?=",
        b"=?utf-8?q?x=E2=80=AE?=",
        b"=?utf-8?b?PGNlb0BiYW5rLmV4YW1wbGU+?=",
        b"=?utf-8?q?a.b?=",
        b"=?utf-32?b?AAAAYwAAAEAAAABiAAAALgAAAGM=?=",
        b"=?ucs-2?b?//5AAA==?=",
        b"=?ibm037?q?L=81=7C=82n?=",
        b"=?x?q?a=40b=2Ec?=",
        b"=?iso-8859-1?b?ey?=",
        b"ceo&AEA-bank.example",
    ];

    proptest::proptest! {
        #[test]
        fn any_soup_gives_sorted_shadows_inside_the_input(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..40),
            groups in proptest::bool::ANY,
        ) {
            let input = pieces.concat();
            let parsed = parse(&input, Profile { utf8: true, groups });
            let keys: Vec<_> = parsed
                .shadows
                .iter()
                .map(|s| (s.start, s.end, s.source.as_str(), &*s.address))
                .collect();
            let mut sorted = keys.clone();
            sorted.sort();
            proptest::prop_assert_eq!(&keys, &sorted);
            for shadow in &parsed.shadows {
                proptest::prop_assert!(shadow.start <= shadow.end && shadow.end <= input.len());
                proptest::prop_assert!(shadow.address.contains('@'));
                if let Cow::Borrowed(address) = shadow.address {
                    let range = input.as_ptr_range();
                    proptest::prop_assert!(range.contains(&address.as_ptr()));
                }
            }
        }
    }

    #[test]
    fn routing_hacks() {
        let parsed = parse(b"user%bank.example@relay.example", Profile::default());
        assert_eq!(parsed.shadows[0].address, "user@bank.example");
        assert_eq!(parsed.shadows[0].source, ShadowSource::PercentHack);
        assert!(
            parsed
                .findings
                .iter()
                .any(|f| f.code == Code::PercentHackOtherDomain)
        );
        let parsed = parse(b"relay.example!user@relay.example", Profile::default());
        assert_eq!(parsed.shadows[0].address, "user@relay.example");
        assert!(parsed.findings.iter().any(|f| f.code == Code::BangPath));
    }
}

//! The From field grammar, RFC 5322 §3.4 and §4.4.
//!
//! A port of `python/fromguard/reference/parser.py`, function for function; both give
//! the same results on every input.
//!
//! ```text
//! from            = "From:" mailbox-list CRLF          (obs-from: "From" *WSP ":")
//! mailbox-list    = (mailbox *("," mailbox)) / obs-mbox-list
//! obs-mbox-list   = *([CFWS] ",") mailbox *("," [mailbox / CFWS])
//! mailbox         = name-addr / addr-spec
//! name-addr       = [display-name] angle-addr
//! angle-addr      = [CFWS] "<" addr-spec ">" [CFWS] / obs-angle-addr
//! obs-angle-addr  = [CFWS] "<" obs-route addr-spec ">" [CFWS]
//! display-name    = phrase;  phrase = 1*word / obs-phrase
//! addr-spec       = local-part "@" domain
//! group           = display-name ":" [group-list] ";" [CFWS]     (RFC 6854 allows it in From)
//! ```
//!
//! The parser runs in three steps, each linear in the input:
//!
//! 1. the line scan ([`Parser::scan_lines`]): lines over 998 octets;
//! 2. the lexer (`lexer.rs`): tokens and the findings that need no context (NUL, line
//!    breaks, what is inside comments, quoted strings and literals);
//! 3. the grammar over the tokens: each list element is first classified by one forward
//!    look at its tokens (is there a top-level "<"? a ":" before any "@"?), then parsed as
//!    a name-addr, an addr-spec or a group. What the grammar rejects is reported and
//!    skipped up to the next top-level ",", so one bad element never hides the others.

use std::borrow::Cow;

use crate::code::Code;
use crate::encoded_word::{self, EncodedWord, is_phrase_q_text};
use crate::findings::Findings;
use crate::lexer::{
    C_ATEXT, Kind, Lexer, QuotedPairs, Report, TextBuilder, Token, class, high_runs, is_cfws,
    line_spans, lossy, unescape,
};
use crate::limits::{MAX_INPUT_BYTES, MAX_LINE_OCTETS, MAX_MAILBOXES};
use crate::model::{Mailbox, Profile, Span};
use crate::tree::{SeenWord, Tree};

/// Element shapes, decided by one look ahead at the element's tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    AddrSpec,
    NameAddr,
    Group,
}

/// A parsed local part or domain: its value and its span. `src` is where the value is
/// the input verbatim, when it is; `malformed` says that the grammar found its periods
/// out of place (or, for a domain literal, no closing bracket).
struct Part<'a> {
    value: Cow<'a, str>,
    src: Option<Span>,
    start: usize,
    end: usize,
    malformed: bool,
}

/// A parsed addr-spec (with the route of an obs-angle-addr).
struct Address<'a> {
    local: Part<'a>,
    domain: Part<'a>,
    route: Vec<Cow<'a, str>>,
}

/// Read `input` with the grammar: the tree of what was read, and every finding into
/// `findings`. The deception analysis runs after it (`entry.rs`).
pub(crate) fn read<'a>(input: &'a [u8], profile: Profile, findings: &mut Findings) -> Tree<'a> {
    let mut parser = Parser::new(input, profile, findings);
    parser.run();
    parser.tree
}

/// One parse of one value: the grammar's state, the tree it fills and the sink it
/// reports to.
struct Parser<'a, 'f> {
    tree: Tree<'a>,
    findings: &'f mut Findings,
    /// The length of the whole input.
    input_len: usize,
    profile: Profile,
    /// The end of the part of the input parsed (`tree.data.len()`).
    end: usize,
    mailbox_count: usize,
    element_failed: bool,
    group_seen: bool,
    /// The next token.
    i: usize,
    /// End of the last non-white-space token consumed.
    last_end: usize,
    /// Comments of the element being parsed.
    comments: Vec<Cow<'a, str>>,
}

impl<'a> Report<'a> for Parser<'a, '_> {
    /// The lexer's findings; where a backslash stands outside quotes is kept for the
    /// analysis too (MimeKit and GMime end a domain there: deception.rs, `cut_addresses`).
    fn report(&mut self, code: Code, start: usize, end: usize) {
        if code == Code::BackslashOutsideQuotes {
            self.tree.backslashes.push(start);
        }
        Parser::report(self, code, start, end);
    }

    fn report_word(&mut self, code: Code, word: &EncodedWord<'a>) {
        Parser::report_word(self, code, word);
    }

    fn scan_8bit(&mut self, start: usize, end: usize, in_address: bool) {
        Parser::scan_8bit(self, start, end, in_address);
    }

    fn decode_exact_word(&mut self, start: usize, end: usize) -> Option<Cow<'a, str>> {
        Parser::decode_exact_word(self, start, end)
    }

    fn settled(&self) -> bool {
        self.findings.settled()
    }
}

impl<'a, 'f> Parser<'a, 'f> {
    fn new(input: &'a [u8], profile: Profile, findings: &'f mut Findings) -> Self {
        let end = input.len().min(MAX_INPUT_BYTES);
        Parser {
            tree: Tree::new(input.get(..end).unwrap_or(input)),
            findings,
            input_len: input.len(),
            profile,
            end,
            mailbox_count: 0,
            element_failed: false,
            group_seen: false,
            i: 0,
            last_end: 0,
            comments: Vec::new(),
        }
    }

    // -- findings -------------------------------------------------------------------------

    fn report(&mut self, code: Code, start: usize, end: usize) {
        self.findings.report(code, start, end);
    }

    /// Report an encoded-word (`encoded-word`, a code for a place RFC 2047 forbids, or
    /// a decoding error), and keep its span and code for the analysis.
    fn report_word(&mut self, code: Code, word: &EncodedWord<'a>) {
        self.report(code, word.start, word.end);
        self.tree.words.push(SeenWord { word: *word, code });
    }

    /// Report text the grammar skips (`text-after-address`, `no-address`), and keep its
    /// span for the analysis.
    fn reject(&mut self, code: Code, start: usize, end: usize) {
        self.report(code, start, end);
        self.tree.rejected.push((start, end));
    }

    fn settled(&self) -> bool {
        self.findings.settled()
    }

    // -- the whole value -------------------------------------------------------------------

    fn run(&mut self) {
        if self.input_len > MAX_INPUT_BYTES {
            self.report(Code::InputTooLong, MAX_INPUT_BYTES, self.input_len);
        }
        self.scan_lines();
        let (data, end) = (self.tree.data, self.end);
        let lexed = Lexer::new(data, end, self).tokens();
        self.tree.tokens = lexed.tokens;
        self.tree.texts = lexed.texts;
        self.parse_list(None);
        if self.settled() {
            return;
        }
        if self.mailbox_count == 0 && !self.element_failed {
            if self.tree.tokens.iter().all(is_cfws) {
                self.report(Code::Empty, 0, self.end);
            } else if self.profile.groups && self.group_seen {
                self.report(Code::GroupWithoutMailbox, 0, self.end);
            } else {
                self.report(Code::NoMailbox, 0, self.end);
            }
        }
    }

    /// RFC 5322 §2.1.1: a line MUST be no more than 998 octets, excluding the CRLF.
    fn scan_lines(&mut self) {
        for (start, end) in line_spans(self.tree.data) {
            if end - start > MAX_LINE_OCTETS {
                self.report(Code::LineTooLong, start + MAX_LINE_OCTETS, end);
            }
        }
    }

    // -- checks shared by several productions ---------------------------------------------

    /// Report each run of bytes >= 0x80 in `data[start..end]`: UTF-8 is RFC 6532 text
    /// (`utf8`, when the profile allows it); anything else is an old client's raw
    /// charset, tolerable in display text, not in an address.
    fn scan_8bit(&mut self, start: usize, end: usize, in_address: bool) {
        for (i, j, text) in high_runs(self.tree.data, start, end) {
            let valid = text.is_some();
            let code = if in_address {
                if valid && self.profile.utf8 {
                    Code::Utf8
                } else {
                    Code::EightBitInAddress
                }
            } else if valid {
                if self.profile.utf8 {
                    Code::Utf8
                } else {
                    Code::Utf8NotEnabled
                }
            } else {
                Code::EightBitText
            };
            self.report(code, i, j);
        }
    }

    /// The encoded-word that is exactly `data[start..end]`, if there is one.
    fn exact_encoded_word(
        &self,
        start: usize,
        end: usize,
    ) -> Option<encoded_word::EncodedWord<'a>> {
        encoded_word::match_encoded_word(self.tree.data, start, end).filter(|word| word.end == end)
    }

    /// If `data[start..end]` is exactly one encoded-word, report on it and return its
    /// decoded text (None when it does not decode: the raw text is shown instead).
    fn decode_exact_word(&mut self, start: usize, end: usize) -> Option<Cow<'a, str>> {
        let word = self.exact_encoded_word(start, end)?;
        self.decode_word(&word)
    }

    fn decode_word(&mut self, word: &EncodedWord<'a>) -> Option<Cow<'a, str>> {
        if encoded_word::too_long(word) {
            self.report(Code::EncodedWordTooLong, word.start, word.end);
        }
        match encoded_word::decode(self.tree.data, word) {
            Err(error) => {
                let code = match error {
                    encoded_word::DecodeError::UnknownCharset => Code::EncodedWordUnknownCharset,
                    encoded_word::DecodeError::BadEncoding => Code::EncodedWordBadEncoding,
                };
                // Kept for the analysis: other decoders may read what this one does not.
                self.report_word(code, word);
                None
            }
            Ok(text) => {
                self.report_word(Code::EncodedWord, word);
                if has_replacement_character(&text) {
                    self.report(Code::EncodedWordReplacedBytes, word.start, word.end);
                }
                self.tree.decoded.push((word.start, word.end, text.clone()));
                Some(text)
            }
        }
    }

    // -- token cursor --------------------------------------------------------------------------

    #[inline]
    fn peek(&self) -> Option<Token> {
        self.tree.tokens.get(self.i).copied()
    }

    #[inline]
    fn peek_special(&self, char: u8) -> bool {
        self.peek().is_some_and(|token| token.is_special(char))
    }

    /// Consume the next token. Every caller has checked that there is one; past the end
    /// an empty white-space token at the end of the input is returned.
    fn advance(&mut self) -> Token {
        let Some(token) = self.peek() else {
            return Token::new(Kind::Ws, self.end, self.end);
        };
        self.i += 1;
        if token.kind != Kind::Ws {
            self.last_end = token.end;
        }
        token
    }

    /// The decoded text of a comment token. The texts stay in `texts` (for the analysis
    /// after the grammar, which reads every comment).
    fn comment_text(&self, token: &Token) -> Cow<'a, str> {
        self.tree.texts.get(token.text).cloned().unwrap_or_default()
    }

    /// Skip white space and comments, keeping the comments' text for the mailbox.
    /// Returns whether anything was skipped.
    fn skip_cfws(&mut self) -> bool {
        let mut skipped = false;
        while let Some(token) = self.peek() {
            if token.kind == Kind::Comment {
                let text = self.comment_text(&token);
                self.comments.push(text);
            } else if token.kind != Kind::Ws {
                break;
            }
            self.advance();
            skipped = true;
        }
        skipped
    }

    fn at_terminator(&self, in_group: bool) -> bool {
        match self.peek() {
            None => true,
            Some(token) => token.is_special(b',') || (in_group && token.is_special(b';')),
        }
    }

    /// Skip the rest of a bad element; returns the end of its last non-blank token.
    fn skip_to_terminator(&mut self, in_group: bool) -> usize {
        let mut end = self.last_end;
        while !self.at_terminator(in_group) {
            let token = self.advance();
            if token.kind != Kind::Ws {
                end = token.end;
            }
        }
        end
    }

    fn next_start(&self) -> usize {
        self.peek().map_or(self.end, |token| token.start)
    }

    // -- mailbox-list ------------------------------------------------------------------------

    /// mailbox-list (or, inside a group, group-list up to ";"). Empty elements are
    /// obs-mbox-list (§4.4): each is reported with its own span, blank or empty.
    ///
    /// ```text
    /// mailbox-list    = (mailbox *("," mailbox)) / obs-mbox-list
    /// obs-mbox-list   = *([CFWS] ",") mailbox *("," [mailbox / CFWS])
    /// group-list      = mailbox-list / CFWS / obs-group-list
    /// ```
    fn parse_list(&mut self, group: Option<&Cow<'a, str>>) {
        let in_group = group.is_some();
        let mut first = true;
        while !self.settled() {
            let element_start = self.next_start();
            self.comments.clear();
            self.skip_cfws();
            if self.at_terminator(in_group) {
                let empty_list = first && !self.peek_special(b',');
                if !empty_list {
                    let next = self.next_start();
                    self.report(Code::EmptyListElement, element_start, next);
                }
            } else {
                self.parse_address(group, element_start);
            }
            if !self.peek_special(b',') {
                return;
            }
            self.advance();
            first = false;
        }
    }

    /// Look ahead over the element's tokens (quoted strings, comments and literals are
    /// single tokens, so their content never misleads): a top-level "<" makes a
    /// name-addr; a ":" before any "@" or "<" makes a group (not inside a group);
    /// anything else is tried as an addr-spec.
    fn scan_shape(&self, in_group: bool) -> (Shape, usize) {
        let mut seen_at = false;
        let mut j = self.i;
        while let Some(token) = self.tree.tokens.get(j) {
            if token.kind == Kind::Special {
                let char = token.char;
                if char == b',' || (char == b';' && in_group) {
                    break;
                }
                if char == b'<' {
                    return (Shape::NameAddr, j);
                }
                if char == b'@' {
                    seen_at = true;
                } else if char == b':' && !seen_at && !in_group {
                    return (Shape::Group, j);
                }
            }
            j += 1;
        }
        (Shape::AddrSpec, j)
    }

    /// address = mailbox / group, from the element's first non-blank token.
    ///
    /// ```text
    /// address         = mailbox / group
    /// mailbox         = name-addr / addr-spec
    /// name-addr       = [display-name] angle-addr
    /// ```
    fn parse_address(&mut self, group: Option<&Cow<'a, str>>, list_element_start: usize) {
        let in_group = group.is_some();
        let element_start = self.next_start();
        let (shape, at) = self.scan_shape(in_group);
        if shape == Shape::Group {
            self.parse_group(at, element_start);
            self.finish_element(in_group);
            return;
        }
        let mut display_name: Option<Cow<'a, str>> = None;
        let mut display_span: Option<Span> = None;
        let address;
        let mailbox_end;
        if shape == Shape::NameAddr {
            (display_name, display_span) = self.parse_phrase(at);
            address = self.parse_angle_addr(in_group);
            mailbox_end = self.last_end;
        } else {
            address = self.parse_addr_spec(false, in_group);
            mailbox_end = address.as_ref().map_or(0, |address| address.domain.end);
        }
        self.finish_element(in_group);
        match address {
            None => {
                self.element_failed = true;
                // The grammar read no mailbox here, a lenient parser may still read one:
                // RFC 7103 §7.1.2 reads `<<user@example.com>>` as user@example.com;
                // nodemailer's addressparser reads andris@tr.ee from `reinman > andris <
                // test <andris@tr.ee>` (test/addressparser/addressparser-test.js, "should
                // handle unexpected <"), as "Apple Mail truncates everything between an
                // unexpected < and an address" (lib/addressparser/index.js). The element
                // from its "<" on (the display name is searched as one) is rejected text,
                // in place of what was rejected inside it.
                let start = match shape {
                    Shape::NameAddr => self.tree.tokens.get(at).map_or(element_start, |t| t.start),
                    _ => element_start,
                };
                let rejected = &mut self.tree.rejected;
                while rejected.last().is_some_and(|&(inside, _)| inside >= start) {
                    rejected.pop();
                }
                rejected.push((start, self.last_end.max(start)));
            }
            Some(address) => {
                let span = (element_start, mailbox_end);
                let element = (list_element_start, self.next_start());
                self.add_mailbox(address, display_name, display_span, group, span, element);
            }
        }
    }

    /// After a mailbox or group: only [CFWS] then "," (";" in a group) or the end.
    fn finish_element(&mut self, in_group: bool) {
        self.skip_cfws();
        if !self.at_terminator(in_group) {
            let start = self.next_start();
            let end = self.skip_to_terminator(in_group);
            self.reject(Code::TextAfterAddress, start, end);
        }
    }

    fn add_mailbox(
        &mut self,
        address: Address<'a>,
        display_name: Option<Cow<'a, str>>,
        display_span: Option<Span>,
        group: Option<&Cow<'a, str>>,
        span: Span,
        element: Span,
    ) {
        self.mailbox_count += 1;
        if self.mailbox_count > MAX_MAILBOXES {
            if self.mailbox_count == MAX_MAILBOXES + 1 {
                self.report(Code::TooManyMailboxes, span.0, span.1);
            }
            return;
        }
        let Address {
            local,
            domain,
            route,
        } = address;
        let addr_spec = addr_spec_text(self.tree.data, &local, &domain);
        self.tree.elements.push(element);
        self.tree.mailboxes.push(Mailbox {
            display_name,
            local_part: local.value,
            domain: domain.value,
            addr_spec,
            route,
            // The comments are not read again before the next element clears them.
            comments: std::mem::take(&mut self.comments),
            group: group.cloned(),
            span,
            display_name_span: display_span,
            local_part_span: (local.start, local.end),
            domain_span: (domain.start, domain.end),
        });
    }

    // -- display-name ------------------------------------------------------------------------

    /// display-name = phrase = 1*word / obs-phrase, over the tokens before `stop`.
    ///
    /// ```text
    /// display-name    = phrase
    /// phrase          = 1*word / obs-phrase
    /// word            = atom / quoted-string
    /// obs-phrase      = word *(word / "." / CFWS)
    /// ```
    ///
    /// Each "." of an obs-phrase is reported. Specials the phrase may not hold (an
    /// unquoted "@" of an address posing as a name, say) are reported and kept in the
    /// text, so that the name reads as a client would show it. Words are joined by one
    /// space where CFWS separated them; white space between two encoded-words is dropped
    /// (RFC 2047 §6.2).
    fn parse_phrase(&mut self, stop: usize) -> (Option<Cow<'a, str>>, Option<Span>) {
        let data = self.tree.data;
        let mut pieces = TextBuilder::new(data);
        let mut have_word = false;
        let mut separated = false;
        let mut last_was_encoded = false;
        let mut first_start: Option<usize> = None;
        let mut last_end = 0;
        while self.i < stop {
            let Some(token) = self.peek() else { break };
            if is_cfws(&token) {
                if token.kind == Kind::Comment {
                    let text = self.comment_text(&token);
                    self.comments.push(text);
                }
                separated = separated || have_word;
                self.advance();
                continue;
            }
            if first_start.is_none() {
                first_start = Some(token.start);
            }
            last_end = token.end;
            let mut is_encoded = false;
            // The piece: decoded text, or the span of the input it is taken from.
            let piece: Piece<'a>;
            if token.kind == Kind::Atom {
                match self.phrase_atom(self.i) {
                    Some(decoded) => {
                        is_encoded = true;
                        piece = Piece::Text(decoded);
                    }
                    None => {
                        piece = Piece::Cow(
                            unescape(data, token.start, token.end, QuotedPairs::Unescape),
                            token.start,
                            token.end,
                        );
                        self.scan_8bit(token.start, token.end, false);
                    }
                }
            } else if token.kind == Kind::QStr {
                let (value, start, end) = quoted_string_value(data, &token, QuotedPairs::Unescape);
                piece = Piece::Cow(value, start, end);
                self.scan_8bit(token.start, token.end, false);
            } else if token.kind == Kind::Literal {
                self.report(Code::SpecialInDisplayName, token.start, token.start + 1);
                let text = lossy(data.get(token.start..token.end).unwrap_or(&[]));
                piece = Piece::Cow(text, token.start, token.end);
            } else if token.is_special(b'.') && have_word {
                self.report(Code::ObsPhrase, token.start, token.end);
                piece = Piece::Ascii(b'.');
            } else {
                self.report(Code::SpecialInDisplayName, token.start, token.end);
                piece = Piece::Ascii(token.char);
            }
            if is_encoded && last_was_encoded {
                separated = false;
            }
            if separated {
                pieces.push_ascii(b' ');
            }
            match piece {
                Piece::Text(text) => pieces.push_str(&text),
                Piece::Cow(text, start, end) => pieces.push_cow(text, start, end),
                Piece::Ascii(char) => pieces.push_ascii(char),
            }
            have_word = true;
            separated = false;
            last_was_encoded = is_encoded;
            self.advance();
        }
        match first_start {
            Some(first_start) if have_word => {
                let text = pieces.finish();
                self.tree
                    .phrases
                    .push((first_start, last_end, text.clone()));
                (Some(text), Some((first_start, last_end)))
            }
            _ => (None, None),
        }
    }

    /// An atom of a phrase that is one encoded-word delimited by white space (RFC 2047
    /// §5(3)) is decoded; encoded-words glued to anything are reported and not decoded.
    fn phrase_atom(&mut self, index: usize) -> Option<Cow<'a, str>> {
        let token = self.tree.tokens.get(index).copied()?;
        if token.escaped {
            return None;
        }
        if let Some(exact) = self.exact_encoded_word(token.start, token.end) {
            let before = index.checked_sub(1).and_then(|k| self.tree.tokens.get(k));
            let after = self.tree.tokens.get(index + 1);
            if before.is_none_or(|t| t.kind == Kind::Ws) && after.is_none_or(|t| t.kind == Kind::Ws)
            {
                let text = self
                    .tree
                    .data
                    .get(exact.text_start..exact.text_end)
                    .unwrap_or(&[]);
                if exact.encoding == encoded_word::WordEncoding::Q
                    && !text.iter().all(|&b| is_phrase_q_text(b))
                {
                    self.report(Code::EncodedWordPhraseText, exact.start, exact.end);
                }
                return self.decode_word(&exact);
            }
        }
        for word in encoded_word::find_encoded_words(self.tree.data, token.start, token.end) {
            self.report_word(Code::EncodedWordNotDelimited, &word);
        }
        None
    }

    // -- angle-addr ------------------------------------------------------------------------

    /// angle-addr = [CFWS] "<" addr-spec ">" [CFWS] / obs-angle-addr, at the "<".
    ///
    /// ```text
    /// angle-addr      = [CFWS] "<" addr-spec ">" [CFWS] / obs-angle-addr
    /// obs-angle-addr  = [CFWS] "<" obs-route addr-spec ">" [CFWS]
    /// ```
    fn parse_angle_addr(&mut self, in_group: bool) -> Option<Address<'a>> {
        let opening = self.advance();
        self.skip_cfws();
        let mut route: Vec<Cow<'a, str>> = Vec::new();
        if self.peek_special(b'@') {
            route = self.parse_obs_route();
        }
        if self.peek_special(b'>') {
            let closing = self.advance();
            self.report(Code::EmptyAngleAddr, opening.start, closing.end);
            return None;
        }
        let mut address = self.parse_addr_spec(true, in_group);
        if let Some(address) = address.as_mut() {
            address.route = route;
        }
        let Some(token) = self.peek() else {
            self.report(Code::UnterminatedAngleAddr, opening.start, self.last_end);
            return address;
        };
        if token.is_special(b'>') {
            self.advance();
            return address;
        }
        // Something else before ">": report it and look for the ">" within the element.
        let mut j = self.i;
        let mut found = false;
        while let Some(candidate) = self.tree.tokens.get(j) {
            if candidate.is_special(b'>') {
                found = true;
                break;
            }
            if candidate.is_special(b',') || (in_group && candidate.is_special(b';')) {
                break;
            }
            j += 1;
        }
        // The text skipped is rejected text for the analysis: after an addr-spec that
        // stops short of the ">", MimeKit's and GMime's loose parsers read it as the next
        // address (InternetAddress.cs TryParseMailbox and gmime/internet-address.c
        // mailbox_parse accept a mailbox without its ">", then InternetAddressList.TryParse
        // and address_list_parse take what follows for "the start of a new address"), so
        // `<m@mallory.example ceo@bank.example>` and `<m@mallory.example<ceo@bank.example>>`
        // hold a second author; JavaMail's parseHeader shows the whole text as the address.
        if found {
            self.report(Code::UnexpectedCharacter, token.start, token.end);
            let closing = self.tree.tokens.get(j).map_or(token.end, |t| t.start);
            self.tree.rejected.push((token.start, closing));
            while self.i <= j {
                self.advance();
            }
        } else {
            let end = self.skip_to_terminator(in_group);
            self.report(Code::UnterminatedAngleAddr, opening.start, end);
            self.tree.rejected.push((token.start, end));
        }
        address
    }

    /// obs-route = obs-domain-list ":"
    ///
    /// ```text
    /// obs-route       = obs-domain-list ":"
    /// obs-domain-list = *(CFWS / ",") "@" domain *("," [CFWS] ["@" domain])
    /// ```
    ///
    /// The route is reported and returned, never used as the address.
    fn parse_obs_route(&mut self) -> Vec<Cow<'a, str>> {
        let start = self.next_start();
        let mut domains: Vec<Cow<'a, str>> = Vec::new();
        loop {
            if self.peek_special(b'@') {
                let at = self.advance();
                if let Some(domain) = self.parse_domain(&at) {
                    domains.push(domain.value);
                }
            }
            self.skip_cfws();
            if self.peek_special(b',') {
                self.advance();
                self.skip_cfws();
                continue;
            }
            if self.peek_special(b':') {
                let colon = self.advance();
                self.report(Code::ObsRoute, start, colon.end);
                self.tree.routes.push((start, colon.end));
                self.skip_cfws();
            } else {
                match self.peek() {
                    Some(token) => self.report(Code::UnexpectedCharacter, token.start, token.end),
                    None => self.report(Code::UnexpectedCharacter, self.end, self.end),
                }
            }
            return domains;
        }
    }

    // -- addr-spec -------------------------------------------------------------------------

    /// addr-spec = local-part "@" domain
    ///
    /// ```text
    /// addr-spec       = local-part "@" domain
    /// local-part      = dot-atom / quoted-string / obs-local-part
    /// obs-local-part  = word *("." word)
    /// ```
    ///
    /// Returns None when there is no "@" (inside angle brackets `missing-at`; a bare
    /// element without one is a display name alone, `no-address`, skipped to its end),
    /// and when the address cannot be recovered: no local part, no domain, or a domain
    /// with periods out of place or without its closing bracket. A local part keeps its
    /// faults visible in its canonical quoted form (`"ceo."@bank.example`), a domain
    /// cannot be quoted, so `""@host` or `me@a.` would show an address that is not
    /// there: its text is left to the analysis as rejected text instead.
    fn parse_addr_spec(&mut self, in_angle: bool, in_group: bool) -> Option<Address<'a>> {
        self.skip_cfws();
        let mut items: Vec<Token> = Vec::with_capacity(8);
        // gaps[k]: CFWS between items[k] and items[k + 1]
        let mut gaps: Vec<bool> = Vec::with_capacity(8);
        while let Some(token) = self.peek() {
            if !(token.kind == Kind::Atom || token.kind == Kind::QStr || token.is_special(b'.')) {
                break;
            }
            items.push(self.advance());
            gaps.push(self.skip_cfws());
        }
        let token = self.peek().filter(|token| token.is_special(b'@'));
        let Some(_) = token else {
            let position = self.next_start();
            let start = items.first().map_or(position, |item| item.start);
            if in_angle {
                let end = items.last().map_or(position, |item| item.end);
                self.report(Code::MissingAt, start, end);
            } else {
                let end = self.skip_to_terminator(in_group);
                self.reject(Code::NoAddress, start, end);
            }
            return None;
        };
        let at = self.advance();
        // Two words without a period between (space-in-local-part): lenient parsers take
        // the last for the local part and the rest for a display name (nodemailer reads
        // `andris andris@tr.ee` as andris@tr.ee, and `"Firstname ..." test@example.com` as
        // test@example.com: addressparser-test.js, "should handle unquoted name, unquoted
        // address correctly", "should handle escapes"), so the mailbox is rejected text too.
        let spaced = items
            .windows(2)
            .any(|pair| pair.iter().all(|item| !item.is_special(b'.')));
        let local = if let (Some(last), Some(&last_gap)) = (items.last().copied(), gaps.last()) {
            let local =
                self.dotted_part(&items, &gaps, Code::ObsLocalPart, QuotedPairs::UnescapeAll);
            if last_gap {
                self.report(Code::CfwsAroundAt, last.end, at.start);
            }
            Some(local)
        } else {
            self.report(Code::MissingLocalPart, at.start, at.end);
            None
        };
        let mut j = self.i;
        while self.tree.tokens.get(j).is_some_and(is_cfws) {
            j += 1;
        }
        if j > self.i {
            let end = self
                .tree
                .tokens
                .get(j)
                .map_or(self.end, |token| token.start);
            self.report(Code::CfwsAroundAt, at.end, end);
        }
        let domain = self.parse_domain(&at);
        match (local, domain) {
            (Some(local), Some(domain)) if !domain.malformed => {
                if spaced {
                    self.tree.rejected.push((local.start, domain.end));
                }
                Some(Address {
                    local,
                    domain,
                    route: Vec::new(),
                })
            }
            (_, domain) => {
                let start = items.first().map_or(at.start, |item| item.start);
                let end = domain.map_or(at.end, |domain| domain.end);
                self.tree.rejected.push((start, end));
                None
            }
        }
    }

    /// Judge the words and periods of a local part or a domain.
    ///
    /// ```text
    /// dot-atom        = [CFWS] dot-atom-text [CFWS]  (and, for a local part, quoted-string)
    /// obs-local-part  = word *("." word)
    /// obs-domain      = atom *("." atom)
    /// ```
    ///
    /// A period out of place or two words without one between are invalid; CFWS between
    /// the items, or a quoted word among atoms, is `obsolete_code`. Each word is checked
    /// as address text (raw 8-bit bytes, encoded-words); its quoted-pairs are read as
    /// `pairs` says.
    fn dotted_part(
        &mut self,
        items: &[Token],
        gaps: &[bool],
        obsolete_code: Code,
        pairs: QuotedPairs,
    ) -> Part<'a> {
        let data = self.tree.data;
        let mut invalid = false;
        let mut pieces = TextBuilder::new(data);
        let last = items.len().saturating_sub(1);
        for (k, token) in items.iter().enumerate() {
            let previous = k.checked_sub(1).and_then(|p| items.get(p));
            if token.is_special(b'.') {
                if k == 0 || k == last || previous.is_some_and(|p| p.is_special(b'.')) {
                    self.report(Code::MisplacedDot, token.start, token.end);
                    invalid = true;
                }
                pieces.push_ascii(b'.');
                continue;
            }
            if let Some(previous) = previous
                && !previous.is_special(b'.')
            {
                self.report(Code::SpaceInLocalPart, previous.start, token.end);
                invalid = true;
                if gaps.get(k - 1).copied().unwrap_or(false) {
                    pieces.push_ascii(b' ');
                }
            }
            if token.kind == Kind::QStr {
                let (value, start, end) = quoted_string_value(data, token, pairs);
                pieces.push_cow(value, start, end);
            } else {
                pieces.push_cow(
                    unescape(data, token.start, token.end, pairs),
                    token.start,
                    token.end,
                );
                for word in encoded_word::find_encoded_words(data, token.start, token.end) {
                    self.report_word(Code::EncodedWordInAddress, &word);
                }
            }
            self.scan_8bit(token.start, token.end, true);
        }
        let start = items.first().map_or(0, |t| t.start);
        let end = items.last().map_or(0, |t| t.end);
        if !invalid {
            let single_quoted =
                items.len() == 1 && items.first().is_some_and(|t| t.kind == Kind::QStr);
            let atoms_only = items
                .iter()
                .all(|t| t.kind == Kind::Atom || t.is_special(b'.'));
            let inner_gaps = gaps.get(..gaps.len().saturating_sub(1)).unwrap_or(&[]);
            let strict = single_quoted || (atoms_only && !inner_gaps.iter().any(|&gap| gap));
            if !strict {
                self.report(obsolete_code, start, end);
            }
        }
        let (value, src) = pieces.finish_with_src();
        Part {
            value,
            src,
            start,
            end,
            malformed: invalid,
        }
    }

    /// domain = dot-atom / domain-literal / obs-domain;  obs-domain = atom *("." atom)
    ///
    /// `at` is the "@" before it, the span of `missing-domain`.
    fn parse_domain(&mut self, at: &Token) -> Option<Part<'a>> {
        self.skip_cfws();
        if let Some(token) = self.peek().filter(|token| token.kind == Kind::Literal) {
            self.advance();
            self.report(Code::DomainLiteral, token.start, token.end);
            self.skip_cfws();
            let (value, src) = literal_value(self.tree.data, &token);
            return Some(Part {
                value,
                src,
                start: token.start,
                end: token.end,
                malformed: !token.closed,
            });
        }
        let mut items: Vec<Token> = Vec::with_capacity(8);
        // gaps[k]: CFWS between items[k] and items[k + 1]
        let mut gaps: Vec<bool> = Vec::with_capacity(8);
        while let Some(token) = self.peek() {
            if token.kind == Kind::Atom {
                if items.last().is_some_and(|last| !last.is_special(b'.')) {
                    break; // a second word: not part of the domain
                }
            } else if !token.is_special(b'.') {
                break;
            }
            items.push(self.advance());
            gaps.push(self.skip_cfws());
        }
        if items.is_empty() {
            self.report(Code::MissingDomain, at.start, at.end);
            return None;
        }
        Some(self.dotted_part(&items, &gaps, Code::ObsDomain, QuotedPairs::Keep))
    }

    // -- group (RFC 6854) ------------------------------------------------------------------

    /// group = display-name ":" [group-list] ";" [CFWS]
    ///
    /// Its mailboxes are kept either way, so that a gateway sees every address; outside
    /// the groups profile the group itself is reported as invalid.
    fn parse_group(&mut self, colon_index: usize, start: usize) {
        self.group_seen = true;
        let (name, _) = self.parse_phrase(colon_index);
        let colon = self.advance();
        if name.is_none() {
            self.report(Code::UnexpectedCharacter, colon.start, colon.end);
        }
        let name = name.unwrap_or(Cow::Borrowed(""));
        self.parse_list(Some(&name));
        let end = if self.peek_special(b';') {
            self.advance().end
        } else {
            let end = self.last_end;
            self.report(Code::UnterminatedGroup, start, end);
            end
        };
        let code = if self.profile.groups {
            Code::Group
        } else {
            Code::GroupNotAllowed
        };
        self.report(code, start, end);
        self.comments.clear();
    }
}

/// One piece of a display name.
enum Piece<'a> {
    /// Decoded text (an encoded-word).
    Text(Cow<'a, str>),
    /// Text that is `data[start..end]` when it is borrowed.
    Cow(Cow<'a, str>, usize, usize),
    /// One ASCII character.
    Ascii(u8),
}

// -- values ----------------------------------------------------------------------------------

/// The content of a quoted string: quotes dropped, quoted-pairs read as `pairs` says,
/// unfolded. Returns the text and the span it was taken from.
fn quoted_string_value<'a>(
    data: &'a [u8],
    token: &Token,
    pairs: QuotedPairs,
) -> (Cow<'a, str>, usize, usize) {
    let content_end = if token.closed {
        token.end.saturating_sub(1)
    } else {
        token.end
    };
    let start = token.start + 1;
    (
        unescape(data, start, content_end, pairs),
        start,
        content_end,
    )
}

/// A domain literal as written, brackets and quoted-pairs (obs-dtext) included, unfolded:
/// unescaping `[1.2.3.4\\]]` would show the literal `[1.2.3.4]]`, which is not there.
fn literal_value<'a>(data: &'a [u8], token: &Token) -> (Cow<'a, str>, Option<Span>) {
    let text = unescape(data, token.start, token.end, QuotedPairs::Keep);
    let src = matches!(text, Cow::Borrowed(_)).then_some((token.start, token.end));
    (text, src)
}

/// dot-atom-text = 1*atext *("." 1*atext), atext including UTF8-non-ascii.
fn is_dot_atom_text(text: &str) -> bool {
    if text.is_empty() {
        return false;
    }
    // On bytes: every byte of a non-ASCII character is 0x80 or more.
    text.as_bytes().split(|&b| b == b'.').all(|label| {
        !label.is_empty() && label.iter().all(|&b| !b.is_ascii() || class(b) == C_ATEXT)
    })
}

/// The local part as it is written in an addr-spec: as is when it is a dot-atom, else
/// quoted with backslash escapes for what a quoted string cannot hold bare (RFC 5322
/// §3.2.4, §4.1: a backslash, a quote, and the NUL, CR and LF only obs-qp carries), so
/// that an escaped line break stays visible (`"a\\<CR>b"@x`, never `ab@x`).
fn canonical_local_part(local: &str) -> Cow<'_, str> {
    if is_dot_atom_text(local) {
        return Cow::Borrowed(local);
    }
    let mut out = String::with_capacity(local.len() + 2);
    out.push('"');
    for char in local.chars() {
        if matches!(char, '\\' | '"' | '\0' | '\r' | '\n') {
            out.push('\\');
        }
        out.push(char);
    }
    out.push('"');
    Cow::Owned(out)
}

/// `canonical_local_part(local) + "@" + domain`, borrowed from the input when it is the
/// input verbatim.
fn addr_spec_text<'a>(data: &'a [u8], local: &Part<'a>, domain: &Part<'a>) -> Cow<'a, str> {
    let mut text = TextBuilder::new(data);
    match (canonical_local_part(&local.value), local.src) {
        (Cow::Borrowed(_), Some((start, end))) => text.push_src(start, end),
        (canonical, _) => text.push_str(&canonical),
    }
    text.push_ascii(b'@');
    match domain.src {
        Some((start, end)) => text.push_src(start, end),
        None => text.push_str(&domain.value),
    }
    text.finish()
}

/// Whether `text` holds U+FFFD (UTF-8 `EF BF BD`): a search for its first byte, which
/// text in most scripts does not hold, before the whole sequence.
fn has_replacement_character(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr_iter(0xEF, bytes).any(|i| bytes.get(i + 1..i + 3) == Some(&[0xBF, 0xBD][..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::{Severity, Verdict};
    use crate::entry::{assess, parse, parse_full};
    use crate::limits::MAX_FINDINGS;
    use crate::model::Parsed;

    #[test]
    fn replacement_character_among_other_ef_sequences() {
        assert!(has_replacement_character("J\u{FFFD}rg"));
        assert!(has_replacement_character("\u{FF61}\u{FFFD}"));
        // U+FF61 (EF BD A1) and U+FFFC (EF BF BC) start as U+FFFD does.
        assert!(!has_replacement_character("\u{FF61}\u{FFFC}"));
        assert!(!has_replacement_character("\u{EF}\u{BF}"));
        assert!(!has_replacement_character("Jörg"));
        assert!(!has_replacement_character(""));
    }

    fn utf8() -> Profile {
        Profile {
            utf8: true,
            groups: false,
        }
    }

    fn codes(parsed: &Parsed<'_>) -> Vec<(Code, usize, usize)> {
        parsed
            .findings
            .iter()
            .map(|f| (f.code, f.start, f.end))
            .collect()
    }

    #[test]
    fn plain_values_are_borrowed() {
        let parsed = parse(b"John Doe <jdoe@example.org>", utf8());
        assert!(parsed.findings.is_empty());
        let mailbox = &parsed.mailboxes[0];
        assert!(matches!(
            mailbox.display_name,
            Some(Cow::Borrowed("John Doe"))
        ));
        assert!(matches!(mailbox.local_part, Cow::Borrowed("jdoe")));
        assert!(matches!(mailbox.domain, Cow::Borrowed("example.org")));
        assert!(matches!(
            mailbox.addr_spec,
            Cow::Borrowed("jdoe@example.org")
        ));

        let parsed = parse(b"\"Doe, John\" <j.doe@[192.0.2.1]> (work place)", utf8());
        let mailbox = &parsed.mailboxes[0];
        assert!(matches!(
            mailbox.display_name,
            Some(Cow::Borrowed("Doe, John"))
        ));
        assert!(matches!(mailbox.domain, Cow::Borrowed("[192.0.2.1]")));
        assert!(matches!(
            mailbox.addr_spec,
            Cow::Borrowed("j.doe@[192.0.2.1]")
        ));
        assert!(matches!(
            mailbox.comments.as_slice(),
            [Cow::Borrowed("work place")]
        ));
    }

    #[test]
    fn unescaping_and_decoding_copy() {
        let parsed = parse(b"\"a\\\"b\" <\"x y\"@example.org>", utf8());
        let mailbox = &parsed.mailboxes[0];
        assert_eq!(mailbox.display_name.as_deref(), Some("a\"b"));
        assert_eq!(mailbox.local_part, "x y");
        assert_eq!(mailbox.addr_spec, "\"x y\"@example.org");

        let parsed = parse(
            b"=?utf-8?q?J=C3=B6rg?= =?utf-8?q?_M?= <j@x.example>",
            utf8(),
        );
        assert_eq!(
            parsed.mailboxes[0].display_name.as_deref(),
            Some("J\u{f6}rg M")
        );

        // Words joined by one space whatever separated them; a quoted dot-atom local
        // part is written bare in the addr-spec.
        let parsed = parse(b"John\r\n\t (c) Doe <\"john\"@x.example>", utf8());
        let mailbox = &parsed.mailboxes[0];
        assert_eq!(mailbox.display_name.as_deref(), Some("John Doe"));
        assert_eq!(mailbox.addr_spec, "john@x.example");
        assert_eq!(mailbox.comments, vec![Cow::Borrowed("c")]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let parsed = parse(b"J\xf6rg \xed\xa0\x80 <j@x.example>", utf8());
        let mailbox = &parsed.mailboxes[0];
        assert_eq!(
            mailbox.display_name.as_deref(),
            Some("J\u{fffd}rg \u{fffd}\u{fffd}\u{fffd}")
        );
        assert_eq!(
            codes(&parsed),
            vec![(Code::EightBitText, 1, 2), (Code::EightBitText, 5, 8)]
        );
    }

    /// `assess` stops where the verdict and syntax are invalid, in the lexer (a comment
    /// too deep, a line too long), before a list element or before the deception
    /// passes; whatever follows, it judges as the whole parse does.
    #[test]
    fn assess_settles_as_the_whole_parse_judges() {
        let deep = |depth: usize, after: &str| {
            format!(
                "{}c@d.example{} {after}",
                "( ".repeat(depth),
                ")".repeat(depth)
            )
        };
        let values = [
            deep(crate::limits::MAX_COMMENT_DEPTH, "a@b.example"),
            deep(crate::limits::MAX_COMMENT_DEPTH + 1, "a@b.example"),
            deep(
                crate::limits::MAX_COMMENT_DEPTH + 1,
                "\"ceo@bank.example\" <m@x.example>",
            ),
            format!("a@b.example, {}", deep(300, "")),
            format!("{} <a@b.example>", "x".repeat(MAX_LINE_OCTETS + 1)),
            "a@b.example, <<, \"ceo@bank.example\" <m@x.example>".to_owned(),
            "<<<, ceo@bank.example <m@x.example>, \u{202e}".to_owned(),
            "@, a@b.example (ceo@bank.example)".to_owned(),
            "a@b.example, ceo@bank.example".to_owned(),
            "m@x.example (unterminated".to_owned(),
            // Invalid but strict (an escaped NUL), then invalid syntax; invalid syntax
            // but legacy (8-bit text without the utf8 profile), then deceptive.
            "\"a\\\u{0}b\" <m@x.example>, <<".to_owned(),
            "J\u{f6}rg <j@x.example>, ceo@bank.example".to_owned(),
        ];
        for value in &values {
            for groups in [false, true] {
                for utf8 in [false, true] {
                    let profile = Profile { utf8, groups };
                    let full = parse_full(value.as_bytes(), profile);
                    let assessed = assess(value.as_bytes(), profile);
                    assert_eq!(
                        (assessed.verdict, assessed.syntax),
                        (full.verdict, full.syntax),
                        "{value:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn deep_comments_are_counted_not_recursed() {
        let mut input = vec![b'('; 200_000];
        input.extend_from_slice(b"a@b.example");
        let parsed = parse(&input, utf8());
        let deep: Vec<_> = parsed
            .findings
            .iter()
            .filter(|f| f.code == Code::CommentTooDeep)
            .collect();
        assert_eq!(deep.len(), 1);
        assert_eq!(
            (deep[0].start, deep[0].end),
            (MAX_COMMENT_DEPTH_INDEX, MAX_COMMENT_DEPTH_INDEX + 1)
        );
        assert_eq!(parsed.verdict, Verdict::from_severity(Severity::Invalid));
    }

    const MAX_COMMENT_DEPTH_INDEX: usize = crate::limits::MAX_COMMENT_DEPTH;

    #[test]
    fn limits_are_reported() {
        let input = b"a,".repeat(2000);
        let parsed = parse(&input, utf8());
        assert_eq!(parsed.mailboxes.len(), 0);
        assert_eq!(parsed.findings.len(), MAX_FINDINGS + 1);
        assert!(
            parsed
                .findings
                .iter()
                .any(|f| f.code == Code::TooManyFindings)
        );

        let input = b"a@b,".repeat(MAX_MAILBOXES + 5);
        let parsed = parse(&input, utf8());
        assert_eq!(parsed.mailboxes.len(), MAX_MAILBOXES);
        assert!(codes(&parsed).contains(&(Code::TooManyMailboxes, 4000, 4003)));

        let mut input = b"a@b.example ".to_vec();
        input.resize(MAX_INPUT_BYTES + 10, b' ');
        let parsed = parse(&input, utf8());
        assert!(codes(&parsed).contains(&(
            Code::InputTooLong,
            MAX_INPUT_BYTES,
            MAX_INPUT_BYTES + 10
        )));
        assert_eq!(parsed.mailboxes.len(), 1);
    }

    #[test]
    fn edges_do_not_panic() {
        for input in [
            &b""[..],
            b"\\",
            b"\"\\",
            b"(\\",
            b"[\\",
            b"\r",
            b"\n",
            b"<",
            b"<@",
            b"<@,",
            b"@",
            b":",
            b";",
            b"g:;",
            b"g:a@b",
            b"=?",
            b"=?a?q?b?=",
            b"a@",
            b"a.@.b",
            b"<a@b",
            b"a <b@c d>",
            b"\x00",
            b"\xff",
        ] {
            for groups in [false, true] {
                let parsed = parse(input, Profile { utf8: true, groups });
                for finding in &parsed.findings {
                    assert!(finding.start <= finding.end && finding.end <= input.len());
                }
            }
        }
    }

    #[test]
    fn findings_are_sorted_by_span_then_catalogue() {
        let parsed = parse(b"(c) a . b @ x", utf8());
        let keys: Vec<_> = parsed
            .findings
            .iter()
            .map(|f| (f.start, f.end, f.code.index()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn dot_atom_text_and_canonical_local_parts() {
        assert!(is_dot_atom_text("a.b"));
        assert!(is_dot_atom_text("j\u{f6}rg"));
        assert!(!is_dot_atom_text(""));
        assert!(!is_dot_atom_text("a..b"));
        assert!(!is_dot_atom_text("a b"));
        assert_eq!(canonical_local_part("a b"), "\"a b\"");
        assert_eq!(canonical_local_part("a\"\\b"), "\"a\\\"\\\\b\"");
        assert_eq!(canonical_local_part(""), "\"\"");
        assert_eq!(canonical_local_part("a\rb\0"), "\"a\\\rb\\\0\"");
    }
}

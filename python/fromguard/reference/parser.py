"""The From field grammar, RFC 5322 §3.4 and §4.4, for the pure-Python reference.

    from            = "From:" mailbox-list CRLF          (obs-from: "From" *WSP ":")
    mailbox-list    = (mailbox *("," mailbox)) / obs-mbox-list
    obs-mbox-list   = *([CFWS] ",") mailbox *("," [mailbox / CFWS])
    mailbox         = name-addr / addr-spec
    name-addr       = [display-name] angle-addr
    angle-addr      = [CFWS] "<" addr-spec ">" [CFWS] / obs-angle-addr
    obs-angle-addr  = [CFWS] "<" obs-route addr-spec ">" [CFWS]
    display-name    = phrase;  phrase = 1*word / obs-phrase
    addr-spec       = local-part "@" domain
    group           = display-name ":" [group-list] ";" [CFWS]     (RFC 6854 allows it in From)

``parse_tree`` runs the grammar: it fills a ``Tree`` (``tree.py``), what the deception
analysis reads, and reports findings to a ``Findings`` sink (``findings.py``). It runs in
three steps, each linear in the input:

1. the line scan (``_scan_lines``): lines over 998 octets;
2. the lexer (``lexer.py``): tokens and the findings that need no context (NUL, line
   breaks, what is inside comments, quoted strings and literals);
3. the grammar over the tokens: each list element is first classified by one forward look
   at its tokens (is there a top-level "<"? a ":" before any "@"?), then parsed as a
   name-addr, an addr-spec or a group. What the grammar rejects is reported and skipped up
   to the next top-level ",", so one bad element never hides the others.

The Rust core (``rust/core/src/parser.rs``) is a port of this file, function for function,
and must give the same results on every input.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from .._model import Mailbox
from . import encoded_word
from .findings import Findings
from .lexer import (
    ATOM,
    BYTE_CLASS,
    C_ATEXT,
    COMMENT,
    LITERAL,
    PAIRS_KEEP,
    PAIRS_UNESCAPE,
    PAIRS_UNESCAPE_ALL,
    QSTR,
    SPECIAL,
    WS,
    Lexer,
    Token,
    high_runs,
    unescape,
)
from .limits import MAX_INPUT_BYTES, MAX_LINE_OCTETS, MAX_MAILBOXES
from .tree import Span, Tree

# RFC 2047 §5(3): what a "Q" encoded-word in a phrase may hold.
PHRASE_Q_TEXT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/=_")

# What a quoted local part cannot hold bare: its canonical form escapes them.
QUOTED_PAIR_ONLY = frozenset('\\"\x00\r\n')

# Element shapes, decided by one look ahead at the element's tokens.
SHAPE_ADDR_SPEC = 0
SHAPE_NAME_ADDR = 1
SHAPE_GROUP = 2


class _Part:
    """A parsed local part or domain: its value and its span; ``malformed`` says that the
    grammar found its periods out of place (or, for a domain literal, no closing
    bracket)."""

    __slots__ = ("end", "malformed", "start", "value")

    def __init__(self, value: str, start: int, end: int, malformed: bool) -> None:
        self.value = value
        self.start = start
        self.end = end
        self.malformed = malformed


class _Address:
    """A parsed addr-spec (with the route of an obs-angle-addr)."""

    __slots__ = ("domain", "local", "route")

    def __init__(self, local: _Part, domain: _Part, route: List[str]) -> None:
        self.local = local
        self.domain = domain
        self.route = route


def parse_tree(data: bytes, utf8: bool, groups: bool, findings: Findings) -> Tree:
    """The grammar over one value: what it read, its findings reported to ``findings``."""
    parser = Parser(data, utf8, groups, findings)
    parser.run()
    return parser.tree


class Parser:
    """One parse of one value. ``run()`` fills ``tree`` and reports to ``findings``."""

    def __init__(self, data: bytes, utf8: bool, groups: bool, findings: Findings) -> None:
        self.data = data
        self.utf8 = utf8
        self.groups = groups
        self.end = min(len(data), MAX_INPUT_BYTES)
        self.report = findings.report
        self.tree = Tree(data, self.end)
        self.tokens: List[Token] = []
        self.mailbox_count = 0
        self.element_failed = False
        self.group_seen = False
        self.i = 0  # the next token
        self.last_end = 0  # end of the last non-white-space token consumed
        self.comments: List[str] = []  # comments of the element being parsed

    def report_encoded_word(self, code: str, start: int, end: int) -> None:
        """Report an encoded-word (``encoded-word``, one of the codes of a word placed
        where RFC 2047 forbids it, or a decoding error) and keep it, with its code, for
        the deception analysis."""
        self.report(code, start, end)
        self.tree.encoded_words.append((start, end, code))

    def report_lexed(self, code: str, start: int, end: int) -> None:
        """The lexer's findings; where a backslash stands outside quotes is kept for the
        analysis too (MimeKit and GMime end a domain there: deception.py, ``cut_addresses``)."""
        if code == "backslash-outside-quotes":
            self.tree.backslashes.append(start)
        self.report(code, start, end)

    def reject(self, code: str, start: int, end: int) -> None:
        """Report text the grammar skips (``text-after-address``, ``no-address``) and keep
        its span for the deception analysis."""
        self.report(code, start, end)
        self.tree.rejected.append((start, end))

    # -- the whole value -----------------------------------------------------------------

    def run(self) -> None:
        if len(self.data) > MAX_INPUT_BYTES:
            self.report("input-too-long", MAX_INPUT_BYTES, len(self.data))
        self._scan_lines()
        lexer = Lexer(
            self.data,
            self.end,
            self.report_lexed,
            self.report_encoded_word,
            self.scan_8bit,
            self.decode_exact_word,
        )
        self.tokens = self.tree.tokens = lexer.tokens()
        self.parse_list(None)
        if self.mailbox_count == 0 and not self.element_failed:
            if all(t.kind == WS or t.kind == COMMENT for t in self.tokens):
                self.report("empty", 0, self.end)
            elif self.groups and self.group_seen:
                self.report("group-without-mailbox", 0, self.end)
            else:
                self.report("no-mailbox", 0, self.end)

    def _scan_lines(self) -> None:
        """RFC 5322 §2.1.1: a line MUST be no more than 998 octets, excluding the CRLF.
        Lines are physical here, split at every LF (a CR before it is not counted)."""
        data, end = self.data, self.end
        line_start = 0
        while line_start <= end:
            line_end = data.find(b"\n", line_start, end)
            if line_end < 0:
                line_end = end
            content_end = (
                line_end - 1 if line_end > line_start and data[line_end - 1] == 0x0D else line_end
            )
            if content_end - line_start > MAX_LINE_OCTETS:
                self.report("line-too-long", line_start + MAX_LINE_OCTETS, content_end)
            line_start = line_end + 1

    # -- checks shared by several productions -------------------------------------------

    def scan_8bit(self, start: int, end: int, in_address: bool) -> None:
        """Report each run of bytes >= 0x80 in ``data[start:end]``: UTF-8 is RFC 6532 text
        (``utf8``, when the profile allows it); anything else is an old client's raw
        charset, tolerable in display text, not in an address."""
        for i, j, text in high_runs(self.data, start, end):
            valid = text is not None
            if in_address:
                code = "utf8" if valid and self.utf8 else "8bit-in-address"
            elif valid:
                code = "utf8" if self.utf8 else "utf8-not-enabled"
            else:
                code = "8bit-text"
            self.report(code, i, j)

    def exact_encoded_word(self, start: int, end: int) -> Optional[encoded_word.EncodedWord]:
        """The encoded-word that is exactly ``data[start:end]``, if there is one."""
        word = encoded_word.match_encoded_word(self.data, start, end)
        return word if word is not None and word.end == end else None

    def decode_exact_word(self, start: int, end: int) -> Optional[str]:
        """If ``data[start:end]`` is exactly one encoded-word, report on it and return its
        decoded text (None when it does not decode: the raw text is shown instead)."""
        word = self.exact_encoded_word(start, end)
        return None if word is None else self.decode_word(word)

    def decode_word(self, word: encoded_word.EncodedWord) -> Optional[str]:
        if encoded_word.too_long(word):
            self.report("encoded-word-too-long", word.start, word.end)
        result = encoded_word.decode(self.data, word)
        if isinstance(result, encoded_word.DecodeError):
            # Kept for the analysis: other decoders may read what this one does not.
            self.report_encoded_word(result.code, word.start, word.end)
            return None
        self.report_encoded_word("encoded-word", word.start, word.end)
        self.tree.decoded[(word.start, word.end)] = result
        if "\ufffd" in result:
            self.report("encoded-word-replaced-bytes", word.start, word.end)
        return result

    # -- token cursor -----------------------------------------------------------------------

    def peek(self) -> Optional[Token]:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def peek_special(self, char: str) -> bool:
        token = self.peek()
        return token is not None and token.is_special(char)

    def advance(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        if token.kind != WS:
            self.last_end = token.end
        return token

    def skip_cfws(self) -> bool:
        """Skip white space and comments, keeping the comments' text for the mailbox.
        Returns whether anything was skipped."""
        skipped = False
        while self.i < len(self.tokens):
            token = self.tokens[self.i]
            if token.kind == COMMENT:
                self.comments.append(token.text)
            elif token.kind != WS:
                break
            self.advance()
            skipped = True
        return skipped

    def at_terminator(self, in_group: bool) -> bool:
        token = self.peek()
        return token is None or token.is_special(",") or (in_group and token.is_special(";"))

    def skip_to_terminator(self, in_group: bool) -> int:
        """Skip the rest of a bad element; returns the end of its last non-blank token."""
        end = self.last_end
        while not self.at_terminator(in_group):
            token = self.advance()
            if token.kind != WS:
                end = token.end
        return end

    def next_start(self) -> int:
        token = self.peek()
        return token.start if token is not None else self.end

    # -- mailbox-list ---------------------------------------------------------------------

    def parse_list(self, group: Optional[str]) -> None:
        """mailbox-list (or, inside a group, group-list up to ";"). Empty elements are
        obs-mbox-list (§4.4): each is reported with its own span, blank or empty."""
        in_group = group is not None
        first = True
        while True:
            element_start = self.next_start()
            self.comments = []
            self.skip_cfws()
            if self.at_terminator(in_group):
                token = self.peek()
                empty_list = first and (token is None or not token.is_special(","))
                if not empty_list:
                    self.report("empty-list-element", element_start, self.next_start())
            else:
                self.parse_address(group, element_start)
            if not self.peek_special(","):
                return
            self.advance()
            first = False

    def scan_shape(self, in_group: bool) -> Tuple[int, int]:
        """Look ahead over the element's tokens (quoted strings, comments and literals are
        single tokens, so their content never misleads): a top-level "<" makes a
        name-addr; a ":" before any "@" or "<" makes a group (not inside a group);
        anything else is tried as an addr-spec."""
        seen_at = False
        j = self.i
        while j < len(self.tokens):
            token = self.tokens[j]
            if token.kind == SPECIAL:
                char = chr(token.char)
                if char == "," or (char == ";" and in_group):
                    break
                if char == "<":
                    return SHAPE_NAME_ADDR, j
                if char == "@":
                    seen_at = True
                elif char == ":" and not seen_at and not in_group:
                    return SHAPE_GROUP, j
            j += 1
        return SHAPE_ADDR_SPEC, j

    def parse_address(self, group: Optional[str], list_element_start: int) -> None:
        """address = mailbox / group, from the element's first non-blank token."""
        in_group = group is not None
        element_start = self.next_start()
        shape, at = self.scan_shape(in_group)
        if shape == SHAPE_GROUP:
            self.parse_group(at, element_start)
            self.finish_element(in_group)
            return
        display_name: Optional[str] = None
        display_span: Optional[Span] = None
        if shape == SHAPE_NAME_ADDR:
            display_name, display_span = self.parse_phrase(at)
            address = self.parse_angle_addr(in_group)
            mailbox_end = self.last_end
        else:
            address = self.parse_addr_spec(False, in_group)
            mailbox_end = address.domain.end if address is not None else 0
        self.finish_element(in_group)
        if address is None:
            self.element_failed = True
            # The grammar read no mailbox here, a lenient parser may still read one: RFC
            # 7103 §7.1.2 reads `<<user@example.com>>` as user@example.com; nodemailer's
            # addressparser reads andris@tr.ee from `reinman > andris < test <andris@tr.ee>`
            # (test/addressparser/addressparser-test.js, "should handle unexpected <"), as
            # "Apple Mail truncates everything between an unexpected < and an address"
            # (lib/addressparser/index.js). The element from its "<" on (the display name
            # is searched as one) is rejected text, in place of what was rejected inside it.
            start = self.tokens[at].start if shape == SHAPE_NAME_ADDR else element_start
            rejected = self.tree.rejected
            while rejected and rejected[-1][0] >= start:
                rejected.pop()
            rejected.append((start, max(start, self.last_end)))
        else:
            span = (element_start, mailbox_end)
            element = (list_element_start, self.next_start())
            self.add_mailbox(address, display_name, display_span, group, span, element)

    def finish_element(self, in_group: bool) -> None:
        """After a mailbox or group: only [CFWS] then "," (";" in a group) or the end."""
        self.skip_cfws()
        if not self.at_terminator(in_group):
            token = self.peek()
            assert token is not None
            start = token.start
            self.reject("text-after-address", start, self.skip_to_terminator(in_group))

    def add_mailbox(
        self,
        address: _Address,
        display_name: Optional[str],
        display_span: Optional[Span],
        group: Optional[str],
        span: Span,
        element: Span,
    ) -> None:
        self.mailbox_count += 1
        if self.mailbox_count > MAX_MAILBOXES:
            if self.mailbox_count == MAX_MAILBOXES + 1:
                self.report("too-many-mailboxes", span[0], span[1])
            return
        local, domain = address.local, address.domain
        self.tree.elements.append(element)
        self.tree.mailboxes.append(
            Mailbox(
                display_name=display_name,
                local_part=local.value,
                domain=domain.value,
                addr_spec=canonical_local_part(local.value) + "@" + domain.value,
                route=tuple(address.route),
                comments=tuple(self.comments),
                group=group,
                span=span,
                display_name_span=display_span,
                local_part_span=(local.start, local.end),
                domain_span=(domain.start, domain.end),
            )
        )

    # -- display-name -------------------------------------------------------------------

    def parse_phrase(self, stop: int) -> Tuple[Optional[str], Optional[Span]]:
        """display-name = phrase = 1*word / obs-phrase, over the tokens before ``stop``.

        obs-phrase = word *(word / "." / CFWS): each "." is reported. Specials the phrase
        may not hold (an unquoted "@" of an address posing as a name, say) are reported and
        kept in the text, so that the name reads as a client would show it. Words are
        joined by one space where CFWS separated them; white space between two
        encoded-words is dropped (RFC 2047 §6.2).
        """
        pieces: List[str] = []
        have_word = False
        separated = False
        last_was_encoded = False
        first_start = -1
        last_end = -1
        while self.i < stop:
            token = self.tokens[self.i]
            if token.kind == WS or token.kind == COMMENT:
                if token.kind == COMMENT:
                    self.comments.append(token.text)
                separated = separated or have_word
                self.advance()
                continue
            if first_start < 0:
                first_start = token.start
            last_end = token.end
            is_encoded = False
            if token.kind == ATOM:
                piece = self.phrase_atom(self.i)
                is_encoded = piece is not None
                if piece is None:
                    piece = unescape(self.data, token.start, token.end, PAIRS_UNESCAPE)
                    self.scan_8bit(token.start, token.end, False)
            elif token.kind == QSTR:
                piece = quoted_string_value(self.data, token, PAIRS_UNESCAPE)
                self.scan_8bit(token.start, token.end, False)
            elif token.kind == LITERAL:
                self.report("special-in-display-name", token.start, token.start + 1)
                piece = self.data[token.start : token.end].decode("utf-8", "replace")
            elif token.is_special(".") and have_word:
                self.report("obs-phrase", token.start, token.end)
                piece = "."
            else:
                self.report("special-in-display-name", token.start, token.end)
                piece = chr(token.char)
            if is_encoded and last_was_encoded:
                separated = False
            if separated:
                pieces.append(" ")
            pieces.append(piece)
            have_word = True
            separated = False
            last_was_encoded = is_encoded
            self.advance()
        if not have_word:
            return None, None
        text = "".join(pieces)
        self.tree.phrases.append((first_start, last_end, text))
        return text, (first_start, last_end)

    def phrase_atom(self, index: int) -> Optional[str]:
        """An atom of a phrase that is one encoded-word delimited by white space (RFC 2047
        §5(3)) is decoded; encoded-words glued to anything are reported and not decoded."""
        token = self.tokens[index]
        if token.escaped:
            return None
        exact = self.exact_encoded_word(token.start, token.end)
        if exact is not None:
            before = self.tokens[index - 1] if index > 0 else None
            after = self.tokens[index + 1] if index + 1 < len(self.tokens) else None
            if (before is None or before.kind == WS) and (after is None or after.kind == WS):
                text = self.data[exact.text_start : exact.text_end]
                if exact.encoding == encoded_word.WordEncoding.Q and any(
                    b not in PHRASE_Q_TEXT for b in text
                ):
                    self.report("encoded-word-phrase-text", exact.start, exact.end)
                return self.decode_word(exact)
        for word in encoded_word.find_encoded_words(self.data, token.start, token.end):
            self.report_encoded_word("encoded-word-not-delimited", word.start, word.end)
        return None

    # -- angle-addr ---------------------------------------------------------------------

    def parse_angle_addr(self, in_group: bool) -> Optional[_Address]:
        """angle-addr = [CFWS] "<" addr-spec ">" [CFWS] / obs-angle-addr, at the "<"."""
        opening = self.advance()
        self.skip_cfws()
        route: List[str] = []
        if self.peek_special("@"):
            route = self.parse_obs_route()
        if self.peek_special(">"):
            closing = self.advance()
            self.report("empty-angle-addr", opening.start, closing.end)
            return None
        address = self.parse_addr_spec(True, in_group)
        if address is not None:
            address.route = route
        token = self.peek()
        if token is not None and token.is_special(">"):
            self.advance()
            return address
        if token is None:
            self.report("unterminated-angle-addr", opening.start, self.last_end)
            return address
        # Something else before ">": report it and look for the ">" within the element.
        j = self.i
        while j < len(self.tokens):
            candidate = self.tokens[j]
            if candidate.is_special(">"):
                break
            if candidate.is_special(",") or (in_group and candidate.is_special(";")):
                j = len(self.tokens)
                break
            j += 1
        # The text skipped is rejected text for the analysis: after an addr-spec that
        # stops short of the ">", MimeKit's and GMime's loose parsers read it as the next
        # address (InternetAddress.cs TryParseMailbox and gmime/internet-address.c
        # mailbox_parse accept a mailbox without its ">", then InternetAddressList.TryParse
        # and address_list_parse take what follows for "the start of a new address"), so
        # `<m@mallory.example ceo@bank.example>` and `<m@mallory.example<ceo@bank.example>>`
        # hold a second author; JavaMail's parseHeader shows the whole text as the address.
        if j < len(self.tokens):
            self.report("unexpected-character", token.start, token.end)
            self.tree.rejected.append((token.start, self.tokens[j].start))
            while self.i <= j:
                self.advance()
        else:
            end = self.skip_to_terminator(in_group)
            self.report("unterminated-angle-addr", opening.start, end)
            self.tree.rejected.append((token.start, end))
        return address

    def parse_obs_route(self) -> List[str]:
        """obs-route = obs-domain-list ":"
        obs-domain-list = *(CFWS / ",") "@" domain *("," [CFWS] ["@" domain])

        The route is reported and returned, never used as the address."""
        start = self.next_start()
        domains: List[str] = []
        while True:
            if self.peek_special("@"):
                at = self.advance()
                domain = self.parse_domain(at)
                if domain is not None:
                    domains.append(domain.value)
            self.skip_cfws()
            if self.peek_special(","):
                self.advance()
                self.skip_cfws()
                continue
            if self.peek_special(":"):
                colon = self.advance()
                self.report("obs-route", start, colon.end)
                self.tree.routes.append((start, colon.end))
                self.skip_cfws()
            else:
                token = self.peek()
                if token is not None:
                    self.report("unexpected-character", token.start, token.end)
                else:
                    self.report("unexpected-character", self.end, self.end)
            return domains

    # -- addr-spec ----------------------------------------------------------------------

    def parse_addr_spec(self, in_angle: bool, in_group: bool) -> Optional[_Address]:
        """addr-spec = local-part "@" domain

        local-part = dot-atom / quoted-string / obs-local-part
        obs-local-part = word *("." word)

        Returns None when there is no "@" (inside angle brackets ``missing-at``; a bare
        element without one is a display name alone, ``no-address``, skipped to its end),
        and when the address cannot be recovered: no local part, no domain, or a domain
        with periods out of place or without its closing bracket. A local part keeps its
        faults visible in its canonical quoted form (``"ceo."@bank.example``), a domain
        cannot be quoted, so ``""@host`` or ``me@a.`` would show an address that is not
        there: its text is left to the analysis as rejected text instead.
        """
        self.skip_cfws()
        items: List[Token] = []
        gaps: List[bool] = []  # gaps[k]: CFWS between items[k] and items[k + 1]
        while True:
            token = self.peek()
            if token is None or not (
                token.kind == ATOM or token.kind == QSTR or token.is_special(".")
            ):
                break
            items.append(self.advance())
            gaps.append(self.skip_cfws())
        token = self.peek()
        if token is None or not token.is_special("@"):
            position = token.start if token is not None else self.end
            start = items[0].start if items else position
            if in_angle:
                self.report("missing-at", start, items[-1].end if items else position)
            else:
                self.reject("no-address", start, self.skip_to_terminator(in_group))
            return None
        at = self.advance()
        # Two words without a period between (space-in-local-part): lenient parsers take
        # the last for the local part and the rest for a display name (nodemailer reads
        # `andris andris@tr.ee` as andris@tr.ee, and `"Firstname ..." test@example.com` as
        # test@example.com: addressparser-test.js, "should handle unquoted name, unquoted
        # address correctly", "should handle escapes"), so the mailbox is rejected text too.
        spaced = any(
            not a.is_special(".") and not b.is_special(".") for a, b in zip(items, items[1:])
        )
        local: Optional[_Part] = None
        if items:
            local = self.dotted_part(items, gaps, "obs-local-part", PAIRS_UNESCAPE_ALL)
            if gaps[-1]:
                self.report("cfws-around-at", items[-1].end, at.start)
        else:
            self.report("missing-local-part", at.start, at.end)
        j = self.i
        while j < len(self.tokens) and (
            self.tokens[j].kind == WS or self.tokens[j].kind == COMMENT
        ):
            j += 1
        if j > self.i:
            self.report(
                "cfws-around-at", at.end, self.tokens[j].start if j < len(self.tokens) else self.end
            )
        domain = self.parse_domain(at)
        if local is None or domain is None or domain.malformed:
            start = items[0].start if items else at.start
            self.tree.rejected.append((start, at.end if domain is None else domain.end))
            return None
        if spaced:
            self.tree.rejected.append((local.start, domain.end))
        return _Address(local, domain, [])

    def dotted_part(
        self, items: List[Token], gaps: List[bool], obsolete_code: str, pairs: int
    ) -> _Part:
        """Judge the words and periods of a local part or a domain.

        dot-atom = [CFWS] dot-atom-text [CFWS]  (and, for a local part, quoted-string)
        obs-local-part = word *("." word);  obs-domain = atom *("." atom)

        A period out of place or two words without one between are invalid; CFWS between
        the items, or a quoted word among atoms, is ``obsolete_code``. Each word is checked
        as address text (raw 8-bit bytes, encoded-words); its quoted-pairs are read as
        ``pairs`` says.
        """
        data = self.data
        invalid = False
        pieces: List[str] = []
        for k, token in enumerate(items):
            if token.is_special("."):
                if k == 0 or k == len(items) - 1 or items[k - 1].is_special("."):
                    self.report("misplaced-dot", token.start, token.end)
                    invalid = True
                pieces.append(".")
                continue
            if k > 0 and not items[k - 1].is_special("."):
                self.report("space-in-local-part", items[k - 1].start, token.end)
                invalid = True
                if gaps[k - 1]:
                    pieces.append(" ")
            if token.kind == QSTR:
                pieces.append(quoted_string_value(data, token, pairs))
            else:
                pieces.append(unescape(data, token.start, token.end, pairs))
                for word in encoded_word.find_encoded_words(data, token.start, token.end):
                    self.report_encoded_word("encoded-word-in-address", word.start, word.end)
            self.scan_8bit(token.start, token.end, True)
        start, end = items[0].start, items[-1].end
        if not invalid:
            single_quoted = len(items) == 1 and items[0].kind == QSTR
            atoms_only = all(t.kind == ATOM or t.is_special(".") for t in items)
            if not single_quoted and not (atoms_only and not any(gaps[:-1])):
                self.report(obsolete_code, start, end)
        return _Part("".join(pieces), start, end, invalid)

    def parse_domain(self, at: Token) -> Optional[_Part]:
        """domain = dot-atom / domain-literal / obs-domain;  obs-domain = atom *("." atom)

        ``at`` is the "@" before it, the span of ``missing-domain``."""
        self.skip_cfws()
        token = self.peek()
        if token is not None and token.kind == LITERAL:
            self.advance()
            self.report("domain-literal", token.start, token.end)
            self.skip_cfws()
            return _Part(literal_value(self.data, token), token.start, token.end, not token.closed)
        items: List[Token] = []
        gaps: List[bool] = []  # gaps[k]: CFWS between items[k] and items[k + 1]
        while True:
            token = self.peek()
            if token is None:
                break
            if token.kind == ATOM:
                if items and not items[-1].is_special("."):
                    break  # a second word: not part of the domain
            elif not token.is_special("."):
                break
            items.append(self.advance())
            gaps.append(self.skip_cfws())
        if not items:
            self.report("missing-domain", at.start, at.end)
            return None
        return self.dotted_part(items, gaps, "obs-domain", PAIRS_KEEP)

    # -- group (RFC 6854) ---------------------------------------------------------------

    def parse_group(self, colon_index: int, start: int) -> None:
        """group = display-name ":" [group-list] ";" [CFWS]

        Its mailboxes are kept either way, so that a gateway sees every address; outside
        the groups profile the group itself is reported as invalid."""
        self.group_seen = True
        name, _ = self.parse_phrase(colon_index)
        colon = self.advance()
        if name is None:
            self.report("unexpected-character", colon.start, colon.end)
        self.parse_list(name if name is not None else "")
        if self.peek_special(";"):
            end = self.advance().end
        else:
            end = self.last_end
            self.report("unterminated-group", start, end)
        self.report("group" if self.groups else "group-not-allowed", start, end)
        self.comments = []


# -- values ---------------------------------------------------------------------------------


def quoted_string_value(data: bytes, token: Token, pairs: int) -> str:
    """The content of a quoted string: quotes dropped, quoted-pairs read as ``pairs``
    says, unfolded."""
    content_end = token.end - 1 if token.closed else token.end
    return unescape(data, token.start + 1, content_end, pairs)


def literal_value(data: bytes, token: Token) -> str:
    """A domain literal as written, brackets and quoted-pairs (obs-dtext) included,
    unfolded: unescaping ``[1.2.3.4\\]]`` would show the literal ``[1.2.3.4]]``, which
    is not there."""
    return unescape(data, token.start, token.end, PAIRS_KEEP)


def is_dot_atom_text(text: str) -> bool:
    """dot-atom-text = 1*atext *("." 1*atext), atext including UTF8-non-ascii."""
    if not text:
        return False
    for label in text.split("."):
        if not label:
            return False
        for char in label:
            code = ord(char)
            if code < 0x80 and BYTE_CLASS[code] != C_ATEXT:
                return False
    return True


def canonical_local_part(local: str) -> str:
    """The local part as it is written in an addr-spec: as is when it is a dot-atom,
    else quoted with backslash escapes for what a quoted string cannot hold bare (RFC
    5322 §3.2.4, §4.1: a backslash, a quote, and the NUL, CR and LF only obs-qp carries),
    so that an escaped line break stays visible (``"a\\<CR>b"@x``, never ``ab@x``)."""
    if is_dot_atom_text(local):
        return local
    return '"' + "".join("\\" + c if c in QUOTED_PAIR_ONLY else c for c in local) + '"'

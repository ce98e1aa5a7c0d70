"""Deception analysis: shadow addresses and the ``deceptive`` findings.

A From value can be grammatical and still show the reader a sender who did not send it.
This pass runs after the grammar, over the grammar's output (``tree.py``: its mailboxes,
the display names it read, its tokens, the encoded-words, rejected text and routes it
reported), and reports to the same findings sink (``findings.py``). It never reads the
findings back, so the findings cap hides nothing from it, and it never re-parses decoded
text as structure (the mistake behind CVE-2023-27043 and several peers' bugs).

A *shadow address* is an address-like string that some mail program could display or use
instead of the real addr-spec. Each has the span of the unit it was found in (a display
name, a comment, an encoded-word, the local part, a domain literal, text the grammar
rejected, an addr-spec up to where a lenient parser ends its domain) and a source naming
that unit:

    display-name, comment, encoded-word, quoted-local-part, percent-hack, bang-path,
    domain-literal, rejected-text, cut-address

A shadow equal to the sender's own address (compared case-insensitively in ASCII, with
punycode labels decoded) is harmless; so is one in the display name or a comment at the
sender's own organisational domain (``psl.py``); a different one is ``deceptive``.

The order in which findings are reported is part of the contract with the Rust port
(``rust/core/src/deception.rs``): several authors; then per mailbox its domain, the addresses
cut short in it, its route and local part; display names; comments; encoded-words;
rejected text; format characters.
"""

from __future__ import annotations

import bisect
import functools
import re
from typing import Callable, List, NamedTuple, Optional, Tuple

from .._model import Mailbox, Shadow
from . import encoded_word, lookalike, psl
from .findings import Findings
from .lexer import BYTE_CLASS, C_ATEXT, COMMENT, high_runs
from .limits import MAX_SHADOWS
from .lookalike import ascii_lower, normalize_domain
from .tree import Tree

# RFC 5322 specials other than "<", ">" and "@": in a decoded display name they are an
# honest name's punctuation (Outlook and Exchange encode "Müller, Jürgen" so), info.
NAME_PUNCTUATION = frozenset(',;:.()[]"\\')


def is_address_special(char: str) -> bool:
    """ "<", ">", "@", or a character whose UTS #39 skeleton holds one (the fullwidth
    U+FF20, the small U+FE64, U+2039...): what makes decoded text read as an address or an
    angle-addr."""
    if char < "\x80":
        return char in "<>@"
    skeleton = lookalike.skeleton(char)
    return "<" in skeleton or ">" in skeleton or "@" in skeleton


def is_control(char: str) -> bool:
    """C0 and C1 controls and DEL."""
    return char < "\x20" or "\x7f" <= char < "\xa0"


class Shows:
    """What the readings of an encoded-word show."""

    __slots__ = ("address_structure", "bidi", "control", "invisible", "punctuation", "specials")

    def __init__(self) -> None:
        self.specials = False  # is_address_special
        self.punctuation = False  # NAME_PUNCTUATION
        self.control = False
        # Anything that changes an address's structure when put into it: an address
        # special, punctuation but ".", a control.
        self.address_structure = False
        self.bidi = False
        self.invisible = False

    @classmethod
    def of(cls, text: str) -> "Shows":
        shows = cls()
        for char in text:
            special = is_address_special(char)
            punctuation = char in NAME_PUNCTUATION
            control = is_control(char)
            shows.specials |= special
            shows.punctuation |= punctuation
            shows.control |= control
            shows.address_structure |= special or control or (punctuation and char != ".")
        for span in lookalike.format_characters(text):
            if span.kind == lookalike.FormatKind.BIDI:
                shows.bidi = True
            else:
                shows.invisible = True
        return shows

    def add(self, other: "Shows") -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) or getattr(other, name))

    def report(
        self, report: Callable[[str, int, int], None], start: int, end: int, in_address: bool
    ) -> None:
        """Each code once, at the span of the word. Punctuation is named only where no
        address special is (it adds nothing then)."""
        codes = (
            (self.specials, "encoded-word-specials"),
            (self.punctuation and not self.specials, "encoded-word-punctuation"),
            (self.control, "encoded-word-control"),
            (in_address and self.address_structure, "encoded-word-in-address-specials"),
            (self.bidi, "bidi-control"),
            (self.invisible, "invisible-character"),
        )
        for shown, code in codes:
            if shown:
                report(code, start, end)


def other_decoder_code(reading: str) -> str:
    """The code naming the decoder of another reading that shows address structure."""
    if reading.startswith("utf-16"):
        return "encoded-word-as-utf16"
    if reading.startswith("utf-32"):
        return "encoded-word-as-utf32"
    return "encoded-word-as-ebcdic"  # every table of other_charsets.tsv is an EBCDIC one


# Where a shadow found in each kind of unit is reported when it differs from the sender.
DECEPTIVE_CODE = {
    "display-name": "address-in-display-name",
    "comment": "address-in-comment",
    "encoded-word": "address-in-encoded-word",
    "quoted-local-part": "address-in-quoted-local-part",
    "domain-literal": "domain-literal-not-ip",  # already reported for the literal
    "rejected-text": "address-in-rejected-text",
    "cut-address": "address-cut-short",
}

# White space outside ASCII, which ends an address-like run like ASCII white space does.
UNICODE_SPACES = frozenset(
    [0x00A0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, *range(0x2000, 0x200B)]
)


def is_word_char(char: str, in_domain: bool) -> bool:
    """A character that can be part of an address-like run: for the local part atext and
    "."; for the domain letters, digits, "-" and "."; on both sides any non-ASCII
    character but white space (RFC 6532 text, and look-alike letters; a look-alike of a
    special is read as that special first, see ``plain``)."""
    code = ord(char)
    if code >= 0x80:
        return code not in UNICODE_SPACES
    if char == ".":
        return True
    if in_domain:
        return char.isalnum() or char == "-"
    return BYTE_CLASS[code] == C_ATEXT


# What may stand around an "@": RFC 5322 §4.4 (obs-local-part, obs-domain) allows CFWS
# there, so `ceo @ corp.example` is the addr-spec ceo@corp.example to any parser that reads
# the text as one (fromguard reports it as ``cfws-around-at``), and to a reader.
GAP = " \t"

ASCII_LABEL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def plain(char: str) -> str:
    """The character a reader or a normalising program sees: a look-alike of "@", ".",
    "<" or ">" (``data/lookalike_specials.tsv``) as that ASCII character, else itself."""
    return lookalike.lookalike_special(char) or char


@functools.lru_cache(maxsize=None)
def at_signs() -> "re.Pattern[str]":
    """ "@" and its look-alikes: where an address can be."""
    looks = [char for char, special in lookalike.lookalike_specials().items() if special == "@"]
    return re.compile("[" + re.escape("@" + "".join(looks)) + "]")


def has_at(text: str) -> bool:
    """Whether ``text`` holds an "@" or a look-alike of one (the start of any address)."""
    return at_signs().search(text) is not None


def is_local_char(char: str) -> bool:
    """A character of the local part of an address-like run. A double quote too: a quoted
    display name ``"admin\\"@legitimate.example"`` shows ``admin"@legitimate.example``."""
    return char == '"' or is_word_char(plain(char), False)


def is_literal_char(char: str) -> bool:
    """dtext (RFC 5322 §3.4.1) without white space: the content of ``ceo@[10.0.0.1]``."""
    return " " < char and char not in "[]\\\x7f" and ord(char) not in UNICODE_SPACES


class FoundAddress(NamedTuple):
    """An address-like run: the address a lenient or normalising reader takes it for (the
    gaps around "@" closed, look-alike specials made ASCII), and whether look-alikes of
    "@" or "." make it (or of "<" and ">" enclose it)."""

    address: str
    lookalike: bool


def find_addresses(text: str) -> List[FoundAddress]:
    """Every address-like ``local@domain`` in ``text``, left to right, not overlapping,
    read with look-alike specials as the ASCII ones (``plain``).

    The domain needs at least two non-empty labels, so that "Jane @ home" and "Team @
    Example" are not addresses, or is a domain literal (``ceo@[10.0.0.1]``, RFC 5322
    §3.4.1); spaces or tabs may stand around the "@" then (``ceo @ corp.example``). A
    single-label domain (``ceo@corp``: RFC 5322 allows it, and nodemailer takes any unquoted
    ``x@y`` word for the address, lib/addressparser/index.js) counts only when the whole
    text is that address, in ASCII but for the "@". Where a look-alike of "@" or "." makes
    the address, its last label must be ASCII letters, digits and "-" with a letter: honest
    Japanese names write the fullwidth at sign (U+FF20) for "at" and the ideographic full
    stop (U+3002) as a full stop ("Tanaka U+FF20 Sales U+3002 Tokyo" in kanji),
    impersonations imitate an ASCII domain."""
    found: List[FoundAddress] = []
    if not has_at(text):
        return found
    floor = 0  # where the previous address ended: the next local part starts no earlier
    size = len(text)
    # Where an address must start and end to be the whole text (spaces and tabs around).
    whole_start = size - len(text.lstrip(GAP))
    whole_end = whole_start + len(text.strip(GAP))
    for match in at_signs().finditer(text):
        at = match.start()
        before = at
        while before > floor and text[before - 1] in GAP:
            before -= 1
        start = before
        while start > floor and is_local_char(text[start - 1]):
            start -= 1
        while start < before and (plain(text[start]) == "." or text[start] == '"'):
            start += 1
        after = at + 1
        while after < size and text[after] in GAP:
            after += 1
        literal = after < size and text[after] == "["
        if literal:
            end = after + 1
            while end < size and is_literal_char(text[end]):
                end += 1
            if end == size or text[end] != "]" or end == after + 1:
                continue
            end += 1
        else:
            end = after
            while end < size and is_word_char(plain(text[end]), True):
                end += 1
            while end > after and plain(text[end - 1]) == ".":
                end -= 1
        if start == before or end == after:
            continue
        local = "".join(plain(c) for c in text[start:before])
        domain = "".join(plain(c) for c in text[after:end])
        labels = domain.split(".")
        written_alike = any(plain(c) != c for c in text[start:end])
        if literal or (len(labels) >= 2 and all(labels)):
            # A look-alike "@" or "." must make an ASCII-looking domain.
            last = labels[-1]
            imitates_ascii = all(c in ASCII_LABEL for c in last) and any(c.isalpha() for c in last)
            shaped = literal or imitates_ascii or not written_alike
        else:
            # One label: the whole text, without gaps around the "@", in ASCII.
            shaped = (
                len(labels) == 1
                and before == at
                and after == at + 1
                and (start, end) == (whole_start, whole_end)
                and (local + domain).isascii()
            )
        if not shaped:
            continue
        enclosed = any(
            0 <= k < size and plain(text[k]) in "<>" and plain(text[k]) != text[k]
            for k in (start - 1, end)
        )
        found.append(FoundAddress(local + "@" + domain, written_alike or enclosed))
        floor = end
    return found


def is_host_name(text: str) -> bool:
    """A host in a percent hack or bang path: labels of letters, digits and "-" (or any
    non-ASCII character), separated by single periods. UUCP hosts need no period."""
    labels = text.split(".")
    return all(label and all(is_word_char(c, True) and c != "." for c in label) for label in labels)


def normalize_address(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return ascii_lower(local) + "@" + normalize_domain(domain)


def is_ipv4(text: str) -> bool:
    """IPv4-address-literal = Snum 3("." Snum) (RFC 5321 §4.1.3), Snum 0-255."""
    parts = text.split(".")
    return len(parts) == 4 and all(
        0 < len(p) <= 3 and p.isascii() and p.isdigit() and int(p) <= 255 for p in parts
    )


def is_ipv6(text: str) -> bool:
    """IPv6-addr (RFC 5321 §4.1.3, RFC 4291 §2.2): eight groups of 1-4 hex digits, "::"
    once for one or more zero groups, the last two groups possibly written as IPv4."""
    if "." in text:
        head, colon, tail = text.rpartition(":")
        if not colon or not is_ipv4(tail):
            return False
        text = head + ":0:0"  # the IPv4 part stands for two groups
    if text.count("::") > 1:
        return False
    if "::" in text:
        left, _, right = text.partition("::")
        counts = (hex_groups(left), hex_groups(right))
        return counts[0] >= 0 and counts[1] >= 0 and counts[0] + counts[1] <= 7
    return hex_groups(text) == 8


def hex_groups(text: str) -> int:
    """How many ":"-separated groups of 1-4 hex digits ``text`` is, or -1."""
    if text == "":
        return 0
    groups = text.split(":")
    for group in groups:
        if not 0 < len(group) <= 4 or any(c not in "0123456789abcdefABCDEF" for c in group):
            return -1
    return len(groups)


def is_ip_literal(content: str) -> bool:
    if is_ipv4(content):
        return True
    return content[:5].lower() == "ipv6:" and is_ipv6(content[5:])


def analyse(tree: Tree, findings: Findings) -> Tuple[Shadow, ...]:
    """The deception pass over the grammar's output: its findings reported to
    ``findings``, the shadow addresses returned, sorted."""
    return Analysis(tree, findings).run()


class Analysis:
    """One deception pass over a finished parse."""

    def __init__(self, tree: Tree, findings: Findings) -> None:
        self.tree = tree
        self.report = findings.report
        self.shadows: List[Shadow] = []
        self.route_starts = [start for start, _ in tree.routes]
        self.token_starts = [token.start for token in tree.tokens]

    def real_mailbox(self, start: int) -> Optional[Mailbox]:
        """The mailbox a unit at ``start`` belongs to: the one whose list element holds
        it, else the last one before it, else the first."""
        mailboxes = self.tree.mailboxes
        chosen = mailboxes[0] if mailboxes else None
        for mailbox, (element_start, element_end) in zip(mailboxes, self.tree.elements):
            if element_start <= start:
                chosen = mailbox
            if element_start <= start < element_end:
                break
        return chosen

    def shadow(self, address: str, source: str, start: int, end: int) -> None:
        self.shadows.append(Shadow(address, source, start, end))

    def compare(self, text: str, source: str, start: int, end: int) -> None:
        """Record each address in ``text`` as a shadow, and report the unit once per kind:
        ``deceptive`` if an address differs from the sender's (``lookalike-address`` when
        look-alike specials make it); in display names and comments, ``info`` where each is
        the sender's own address or at the sender's own organisational domain (Public Suffix
        List)."""
        self.compare_found(find_addresses(text), source, start, end)

    def compare_phrase(self, text: str, start: int, end: int) -> None:
        """A display name is compared as read and, where that is not how it is written, as
        written too: MimeKit and GMime read an element whose phrase meets an "@" as an
        addr-spec from its first byte (InternetAddress.cs, TryParse, "rewind back to the
        beginning of the local-part"; gmime/internet-address.c ``address_parse``), so
        ``ceo@bank.example"x" <m@mallory.example>`` holds the mailbox ceo@bank.example for
        them, where the name reads ``ceo@bank.examplex``."""
        if not has_at(text):  # most names hold no "@": nothing to compare then
            return
        addresses = find_addresses(text)
        written = self.tree.data[start:end].decode("utf-8", "replace")
        # A quoted name that reads as written but for its quotes shows nothing more.
        if written != text and written != f'"{text}"':
            known = {found.address for found in addresses}
            for found in find_addresses(written):
                if found.address not in known:
                    known.add(found.address)
                    addresses.append(found)
        self.compare_found(addresses, "display-name", start, end)

    def compare_found(
        self, addresses: List[FoundAddress], source: str, start: int, end: int
    ) -> None:
        """``compare`` of the addresses found in a unit's text."""
        if not addresses:
            return
        real = self.real_mailbox(start)
        own = normalize_address(real.local_part + "@" + real.domain) if real else None
        # In the sender's name (display names, comments) an address at the sender's own
        # organisational domain is the organisation naming itself ("support@mail.bank" for
        # noreply@bank), as DMARC's relaxed alignment accepts it (RFC 7489 §3.2); one written
        # with look-alike specials is not.
        names_sender = source == "display-name" or source == "comment"
        own_organisation: Optional[str] = None
        differs = lookalike_differs = same_organisation = False
        for found in addresses:
            self.shadow(found.address, source, start, end)
            if normalize_address(found.address) == own:
                continue
            if found.lookalike:
                lookalike_differs = True
            elif names_sender and real is not None and not differs:
                if own_organisation is None:
                    own_organisation = psl.organisation(real.local_part, real.domain)
                local, _, domain = found.address.rpartition("@")
                if psl.organisation(local, domain) == own_organisation:
                    same_organisation = True
                else:
                    differs = True
            else:
                differs = True
        if source == "domain-literal":  # the literal is reported as not an IP already
            return
        if differs:
            self.report(DECEPTIVE_CODE[source], start, end)
        if lookalike_differs:
            self.report("lookalike-address", start, end)
        if not (differs or lookalike_differs) and names_sender:
            code = (
                "display-name-own-organisation" if same_organisation else "display-name-is-address"
            )
            self.report(code, start, end)

    # -- the passes, in reporting order ---------------------------------------------------

    def run(self) -> Tuple[Shadow, ...]:
        tree = self.tree
        mailboxes = tree.mailboxes
        if len(mailboxes) > 1:
            self.report("several-authors", mailboxes[1].span[0], mailboxes[-1].span[1])
        for mailbox in mailboxes:
            self.domain(mailbox)
            self.cut_addresses(mailbox)
            self.route(mailbox)
            self.local_part(mailbox)
        for start, end, text in tree.phrases:
            self.compare_phrase(text, start, end)
        for token in tree.tokens:
            if token.kind == COMMENT:
                self.compare(token.text, "comment", token.start, token.end)
        self.encoded_words()
        self.rejected_text()
        self.format_characters()
        shadows = sorted(self.shadows, key=lambda s: (s.start, s.end, s.source, s.address))
        if len(shadows) > MAX_SHADOWS:
            first_dropped = shadows[MAX_SHADOWS]
            self.report("too-many-shadows", first_dropped.start, first_dropped.end)
        return tuple(shadows[:MAX_SHADOWS])

    def domain(self, mailbox: Mailbox) -> None:
        start, end = mailbox.domain_span
        domain = mailbox.domain
        if domain.startswith("["):
            content = domain[1:-1] if domain.endswith("]") else domain[1:]
            if not is_ip_literal(content):
                self.report("domain-literal-not-ip", start, end)
                self.compare(content, "domain-literal", start, end)
            return
        analysis = lookalike.analyze_domain(domain)
        if analysis.punycode:
            self.report("punycode-domain", start, end)
        if analysis.bad_punycode:
            self.report("bad-punycode", start, end)
        if analysis.mixed_script:
            self.report("mixed-script-domain", start, end)
        if analysis.ascii_lookalike is not None:
            self.report("confusable-domain", start, end)
        if analysis.unicode is not None:  # punycode can hide format characters too
            self.report_format_kinds(analysis.unicode, lookalike.FormatContext.DOMAIN, start, end)

    def cut_addresses(self, mailbox: Mailbox) -> None:
        """The addr-spec up to where a lenient parser ends its domain, searched like the
        other units, when that leaves a domain of its own (two labels at least): obs-domain
        (RFC 5322 §4.4: ``obs-domain = atom *("." atom)``, an atom with CFWS around its
        atext) lets a comment stand between the labels, and the grammar keeps a backslash
        there (``backslash-outside-quotes``).

        JavaMail ends an address at its first comment (InternetAddress.java, ``parse``,
        ``case '('``: ``end = index``), so ``parseHeader(s, false)`` and ``parse(s)`` read
        ``ceo@bank.example(x).mallory.example`` as ceo@bank.example (inside angle brackets
        it shows the comment in place, and a reader takes the text before it for the
        address). MimeKit and GMime read the whole domain then, as RFC 5322 does, but end a
        dot-atom at a backslash after an atom (ParseUtils.TryParseDotAtom,
        gmime/internet-address.c ``dotatom_parse``: it is no atext) and keep the mailbox, so
        ``ceo@bank.example\\.mallory.example`` is ceo@bank.example to them; after a period
        it fails the mailbox instead. A cut after the first label only leaves no other
        sender (``jdoe@machine(comment).  example``, RFC 5322 A.6.3)."""
        tokens = self.tree.tokens
        domain_start, domain_end = mailbox.domain_span
        # A domain read without CFWS is as long as its text, so holds no comment; and most
        # values have no backslash outside quotes at all.
        with_cfws = domain_end - domain_start > len(mailbox.domain.encode("utf-8", "surrogatepass"))
        if not with_cfws and not self.tree.backslashes:
            return
        start = mailbox.local_part_span[0]
        if with_cfws:
            # Tokens are in input order: the first comment from the local part on.
            k = bisect.bisect_left(self.token_starts, start)
            while k < len(tokens) and tokens[k].start < domain_end and tokens[k].kind != COMMENT:
                k += 1
            if k < len(tokens) and domain_start < tokens[k].start < domain_end:
                self.cut_address(start, domain_start, tokens[k].start)
        # The first backslash outside quotes in the domain (comments' quoted-pairs are not
        # among them): the grammar keeps them in input order.
        backslashes = self.tree.backslashes
        k = bisect.bisect_left(backslashes, domain_start)
        if k == len(backslashes) or backslashes[k] >= domain_end:
            return
        backslash = backslashes[k]
        if backslash > domain_start and self.tree.data[backslash - 1] not in b".) \t\r\n":
            self.cut_address(start, domain_start, backslash)

    def cut_address(self, start: int, domain_start: int, cut: int) -> None:
        """The address from ``start`` to ``cut`` (white space before the cut trimmed, as
        JavaMail trims it), compared when its domain, from ``domain_start``, has two labels
        at least."""
        data = self.tree.data
        # Rust's trim_ascii_end.
        end = start + len(data[start:cut].rstrip(b" \t\n\x0c\r"))
        if len([label for label in data[domain_start:end].split(b".") if label]) >= 2:
            self.compare(data[start:end].decode("utf-8", "replace"), "cut-address", start, end)

    def route(self, mailbox: Mailbox) -> None:
        own = normalize_domain(mailbox.domain)
        if any(normalize_domain(domain) != own for domain in mailbox.route):
            # The grammar reports routes in input order: the first one in the mailbox is
            # found by bisection, so many routes and mailboxes cost no quadratic time.
            routes = self.tree.routes
            start, end = mailbox.span
            k = bisect.bisect_left(self.route_starts, start)
            span = routes[k] if k < len(routes) and routes[k][0] < end else mailbox.span
            self.report("route-other-domain", span[0], span[1])

    def local_part(self, mailbox: Mailbox) -> None:
        """A quoted local part holding an address; user%host and host!user routing."""
        local = mailbox.local_part
        start, end = mailbox.local_part_span
        if has_at(local):
            self.compare(local, "quoted-local-part", start, end)
            return
        own = normalize_domain(mailbox.domain)
        user, percent, host = local.rpartition("%")
        if percent and user and is_host_name(host):
            self.shadow(user + "@" + host, "percent-hack", start, end)
            same = normalize_domain(host) == own
            self.report("percent-hack" if same else "percent-hack-other-domain", start, end)
        hops = local.split("!")
        if len(hops) >= 2 and hops[-1] and is_host_name(hops[-2]):
            self.shadow(hops[-1] + "@" + hops[-2], "bang-path", start, end)
            same = normalize_domain(hops[-2]) == own
            self.report("bang-path" if same else "bang-path-other-domain", start, end)

    def encoded_words(self) -> None:
        """Every encoded-word, decoded or not: what its text would show, in fromguard's
        reading and in other decoders'. Those the grammar does not decode (RFC 2047 forbids
        their place, or the charset is not fromguard's) are searched for addresses too.
        Then IMAP modified UTF-7 in the addresses."""
        data = self.tree.data
        for start, end, code in sorted(self.tree.encoded_words, key=lambda w: w[:2]):
            word = encoded_word.match_encoded_word(data, start, end)
            if word is not None:
                search = code != "encoded-word"
                self.inspect_word(word, search, code == "encoded-word-in-address")
        self.modified_utf7()

    def inspect_word(self, word: encoded_word.EncodedWord, search: bool, in_address: bool) -> None:
        """Judge what an encoded-word shows, in every reading (fromguard's decoding, and
        other decoders'): address specials, punctuation, controls, format characters, each
        reported once; with ``search``, the addresses of every reading; for an other
        decoder's reading that shows structure, the code naming that decoder. B text out of
        groups of 4 is reported here, wherever the word stands (decoders disagree on it)."""
        data = self.tree.data
        if encoded_word.b_text_misaligned(word):
            self.report("encoded-word-b-length", word.start, word.end)
        shows = Shows()
        decoded = self.tree.decoded.get((word.start, word.end))
        text = encoded_word.decode(data, word) if decoded is None else decoded
        # RFC 2047 §5 forbids the word in an address; the programs that decode it anyway
        # ignore a charset they do not know and take its bytes (Heyes 2024).
        if text is encoded_word.DecodeError.UNKNOWN_CHARSET and in_address:
            text = encoded_word.decode_ignoring_charset(data, word)
            search = True
        elif text is encoded_word.DecodeError.BAD_ENCODING:
            # Not decoded here, but GMime and Thunderbird decode the whole groups.
            trimmed = encoded_word.without_dangling_b_char(word)
            if trimmed is not None:
                text = encoded_word.decode(data, trimmed)
                search = True
        if not isinstance(text, encoded_word.DecodeError):
            shows.add(self.read(text, word.start, word.end, search))
        # A label has at most two readings; a byte-order mark makes them one text.
        read: List[str] = []
        named: List[str] = []
        for reading in encoded_word.other_readings(word.charset):
            other_text = encoded_word.decode_other(data, word, reading)
            if isinstance(other_text, encoded_word.DecodeError) or other_text in read:
                continue
            other = self.read(other_text, word.start, word.end, True)
            code = other_decoder_code(reading)
            if (other.specials or other.control) and code not in named:
                self.report(code, word.start, word.end)
                named.append(code)
            shows.add(other)
            read.append(other_text)
        shows.report(self.report, word.start, word.end, in_address)

    def read(self, text: str, start: int, end: int, search: bool) -> "Shows":
        """What one reading of an encoded-word shows; with ``search``, its addresses are
        compared with the sender's."""
        if search:
            self.compare(text, "encoded-word", start, end)
        return Shows.of(text)

    def modified_utf7(self) -> None:
        """IMAP modified UTF-7 (RFC 3501 §5.1.3) in a local part or domain that decodes to
        address structure: ``ceo&AEA-bank.example@relay`` is ``ceo@bank.example@relay``
        to a program that decodes it."""
        for mailbox in self.tree.mailboxes:
            parts = (
                (mailbox.local_part, mailbox.local_part_span),
                (mailbox.domain, mailbox.domain_span),
            )
            for text, (start, end) in parts:
                decoded = encoded_word.decode_modified_utf7(text)
                if decoded is not None and Shows.of(decoded).address_structure:
                    self.report("modified-utf7-in-address", start, end)
                    self.compare(decoded, "encoded-word", start, end)

    def report_format_kinds(
        self, text: str, context: lookalike.FormatContext, start: int, end: int
    ) -> None:
        """Bidi controls and invisible characters in decoded text that are not honest in
        ``context``, once per kind, at the span of the unit that decodes to it."""
        kinds = {span.kind for span in lookalike.format_characters_in(text, context)}
        if lookalike.FormatKind.BIDI in kinds:
            self.report("bidi-control", start, end)
        if lookalike.FormatKind.INVISIBLE in kinds:
            self.report("invisible-character", start, end)

    def rejected_text(self) -> None:
        """Text the grammar skipped (after an address, or an element without one), and
        the decoded text of the encoded-words in it."""
        data = self.tree.data
        inspected = {(start, end) for start, end, _ in self.tree.encoded_words}
        for start, end in sorted(self.tree.rejected):
            text = data[start:end].decode("utf-8", "replace")
            self.compare(text, "rejected-text", start, end)
            for word in encoded_word.find_encoded_words(data, start, end):
                if (word.start, word.end) not in inspected:  # e.g. in a comment there
                    self.inspect_word(word, True, False)

    def format_characters(self) -> None:
        """Bidi controls and invisible characters in the raw text (each valid UTF-8 run),
        but for those honest there. A run holds a joiner's context whole (its neighbours
        outside the run are ASCII, which no context rule accepts); a bidi mark is judged by
        the whole value: right-to-left text when some run holds a right-to-left letter."""
        runs = list(high_runs(self.tree.data, 0, self.tree.end))
        right_to_left = any(
            lookalike.is_right_to_left(char) for _, _, text in runs for char in text or ""
        )
        context = (
            lookalike.FormatContext.RIGHT_TO_LEFT_TEXT
            if right_to_left
            else lookalike.FormatContext.TEXT
        )
        for i, _, text in runs:
            for span in lookalike.format_characters_in(text or "", context):
                bidi = span.kind == lookalike.FormatKind.BIDI
                code = "bidi-control" if bidi else "invisible-character"
                self.report(code, i + span.start, i + span.end)

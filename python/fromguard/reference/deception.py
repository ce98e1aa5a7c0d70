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
rejected) and a source naming that unit:

    display-name, comment, encoded-word, quoted-local-part, percent-hack, bang-path,
    domain-literal, rejected-text

A shadow equal to the sender's own address (compared case-insensitively in ASCII, with
punycode labels decoded) is harmless; so is one in the display name or a comment at the
sender's own organisational domain (``psl.py``); a different one is ``deceptive``.

The order in which findings are reported is part of the contract with the Rust port
(``rust/core/src/deception.rs``): several authors; then per mailbox its domain, route and
local part; display names; comments; encoded-words; rejected text; format characters.
"""

from __future__ import annotations

import bisect
from typing import List, Optional, Tuple

from .._model import Mailbox, Shadow
from . import encoded_word, lookalike, psl
from .findings import Findings
from .lexer import BYTE_CLASS, C_ATEXT, COMMENT, high_runs
from .limits import MAX_SHADOWS
from .lookalike import ascii_lower, normalize_domain
from .tree import Tree

ADDRESS_PUNCTUATION = '<>@,;:"'

# Where a shadow found in each kind of unit is reported when it differs from the sender.
DECEPTIVE_CODE = {
    "display-name": "address-in-display-name",
    "comment": "address-in-comment",
    "encoded-word": "address-in-encoded-word",
    "quoted-local-part": "address-in-quoted-local-part",
    "domain-literal": "domain-literal-not-ip",  # already reported for the literal
    "rejected-text": "address-in-rejected-text",
}

# White space outside ASCII, which ends an address-like run like ASCII white space does.
UNICODE_SPACES = frozenset(
    [0x00A0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, *range(0x2000, 0x200B)]
)


def is_word_char(char: str, in_domain: bool) -> bool:
    """A character that can be part of an address-like run: for the local part atext and
    "."; for the domain letters, digits, "-" and "."; on both sides any non-ASCII
    character but white space (RFC 6532 text, and the look-alikes we want to catch)."""
    code = ord(char)
    if code >= 0x80:
        return code not in UNICODE_SPACES
    if char == ".":
        return True
    if in_domain:
        return char.isalnum() or char == "-"
    return BYTE_CLASS[code] == C_ATEXT


def find_addresses(text: str) -> List[str]:
    """Every address-like ``local@domain`` in ``text``, left to right, not overlapping.
    The domain needs at least two non-empty labels, so that "Jane @ home" is not one."""
    found: List[str] = []
    floor = 0  # where the previous address ended: the next local part starts no earlier
    at = text.find("@")
    while at >= 0:
        start = at
        while start > floor and is_word_char(text[start - 1], False):
            start -= 1
        end = at + 1
        while end < len(text) and is_word_char(text[end], True):
            end += 1
        local = text[start:at].lstrip(".")
        domain = text[at + 1 : end].rstrip(".")
        labels = domain.split(".")
        if local and len(labels) >= 2 and all(labels):
            found.append(local + "@" + domain)
            floor = at + 1 + len(domain)
        at = text.find("@", at + 1)
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
        """Record each address in ``text`` as a shadow, and report the unit once:
        ``deceptive`` if an address differs from the sender's; in display names and
        comments, ``info`` where each is the sender's own address or at the sender's own
        organisational domain (Public Suffix List)."""
        addresses = find_addresses(text)
        if not addresses:
            return
        real = self.real_mailbox(start)
        own = normalize_address(real.local_part + "@" + real.domain) if real else None
        # In the sender's name (display names, comments) an address at the sender's own
        # organisational domain is the organisation naming itself ("support@mail.bank" for
        # noreply@bank), as DMARC's relaxed alignment accepts it (RFC 7489 §3.2).
        names_sender = source == "display-name" or source == "comment"
        own_organisation: Optional[str] = None
        differs = same_organisation = False
        for address in addresses:
            self.shadow(address, source, start, end)
            if differs or normalize_address(address) == own:
                continue
            if names_sender and real is not None:
                if own_organisation is None:
                    own_organisation = psl.organisational_domain(real.domain)
                domain = address.rpartition("@")[2]
                if psl.organisational_domain(domain) == own_organisation:
                    same_organisation = True
                    continue
            differs = True
        if differs:
            if source != "domain-literal":  # the literal is reported as not an IP already
                self.report(DECEPTIVE_CODE[source], start, end)
        elif names_sender:
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
            self.route(mailbox)
            self.local_part(mailbox)
        for start, end, text in tree.phrases:
            self.compare(text, "display-name", start, end)
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
        if "@" in local:
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
        """Every encoded-word, decoded or not: what its text would show. Those the grammar
        does not decode (RFC 2047 forbids their place) are searched for addresses too."""
        data = self.tree.data
        for start, end, placed_wrongly in sorted(self.tree.encoded_words, key=lambda w: w[:2]):
            word = encoded_word.match_encoded_word(data, start, end)
            if word is not None:
                self.inspect_word(word, placed_wrongly)

    def inspect_word(self, word: encoded_word.EncodedWord, search: bool) -> None:
        """Judge what an encoded-word decodes to: address punctuation, controls, format
        characters; with ``search``, addresses (for words no display text shows)."""
        decoded = self.tree.decoded.get((word.start, word.end))
        text = encoded_word.decode(self.tree.data, word) if decoded is None else decoded
        if isinstance(text, encoded_word.DecodeError):
            return
        if any(char in text for char in ADDRESS_PUNCTUATION):
            self.report("encoded-word-specials", word.start, word.end)
        if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text):
            self.report("encoded-word-control", word.start, word.end)
        context = lookalike.FormatContext.of_text(text)
        self.report_format_kinds(text, context, word.start, word.end)
        if search:
            self.compare(text, "encoded-word", word.start, word.end)

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
                    self.inspect_word(word, True)

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

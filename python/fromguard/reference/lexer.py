"""Tokens of a From field body (RFC 5322 §3.2), for the reference parser.

The lexer cuts the value into units that never need to be looked into again by the
parser: white space, comments (nested, counted, not recursed), quoted strings, domain
literals, atoms and single special characters. Every departure from the grammar that can be
judged without knowing the context (inside a comment, a quoted string or a literal; a
control character or a backslash in an atom; NUL; every line break) is reported here; what depends on the context
(raw 8-bit text in a display name or in an address) is left to the parser.

The whole value is lexed before parsing: the token list is at most as long as the input,
and the parser only moves forward over it, so parsing stays linear.
"""

from __future__ import annotations

from typing import Callable, Iterator, List, Optional, Tuple

from . import encoded_word
from .limits import MAX_COMMENT_DEPTH

# Token kinds.
WS = 0  # a run of SP, HTAB, CR and LF (line breaks are judged by the line scan)
COMMENT = 1  # "(" ... ")", nested
QSTR = 2  # DQUOTE ... DQUOTE
LITERAL = 3  # "[" ... "]"
ATOM = 4  # a run of atext, raw 8-bit bytes, control characters and stray quoted-pairs
SPECIAL = 5  # one of ) < > ] : ; @ , .

# Byte classes: one table, indexed by byte, as the Rust core does.
C_ATEXT = 0
C_WSP = 1
C_SPECIAL = 2
C_CTL = 3  # %d1-8 / %d11 / %d12 / %d14-31 / %d127 (obs-NO-WS-CTL)
C_NUL = 4
C_HIGH = 5  # %x80-FF: UTF-8 (RFC 6532) or another charset's raw bytes

ATEXT_PUNCTUATION = b"!#$%&'*+-/=?^_`{|}~"


def _byte_classes() -> List[int]:
    table = [C_CTL] * 256
    table[0] = C_NUL
    for b in range(0x80, 0x100):
        table[b] = C_HIGH
    for b in b" \t\r\n":
        table[b] = C_WSP
    for b in b'()<>[]:;@\\,."':
        table[b] = C_SPECIAL
    for b in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + ATEXT_PUNCTUATION:
        table[b] = C_ATEXT
    for b in range(33, 127):
        assert table[b] != C_CTL, b
    return table


BYTE_CLASS = _byte_classes()

BACKSLASH = 0x5C
DQUOTE = 0x22


class Token:
    """One lexical unit: ``data[start:end]``. ``closed`` is False for an unterminated
    comment, quoted string or literal, which then runs to the end of the input.
    ``char`` is the byte of a SPECIAL. ``escaped`` marks an atom holding a quoted-pair.
    ``text`` is the decoded text of a comment."""

    __slots__ = ("char", "closed", "end", "escaped", "kind", "start", "text")

    def __init__(self, kind: int, start: int, end: int) -> None:
        self.kind = kind
        self.start = start
        self.end = end
        self.closed = True
        self.char = 0
        self.escaped = False
        self.text = ""

    def is_special(self, char: str) -> bool:
        return self.kind == SPECIAL and self.char == ord(char)

    def __repr__(self) -> str:  # for debugging only
        names = ["WS", "COMMENT", "QSTR", "LITERAL", "ATOM", "SPECIAL"]
        return f"Token({names[self.kind]}, {self.start}, {self.end})"


Report = Callable[[str, int, int], None]


def is_cfws(token: Token) -> bool:
    return token.kind == WS or token.kind == COMMENT


class Lexer:
    """Cuts ``data[:end]`` into tokens, reporting context-free findings through ``report``
    (encoded-words where RFC 2047 forbids them through ``report_encoded_word``, which also
    keeps them for the deception analysis).

    ``scan_8bit(start, end, in_address)`` is the parser's check of raw 8-bit text; the
    lexer calls it for comments (display text) and domain literals (address text).
    ``decode_word(start, end)`` decodes ``data[start:end]`` if it is exactly one
    encoded-word (reporting on it), else returns None.
    """

    def __init__(
        self,
        data: bytes,
        end: int,
        report: Report,
        report_encoded_word: Report,
        scan_8bit: Callable[[int, int, bool], None],
        decode_word: Callable[[int, int], Optional[str]],
    ) -> None:
        self.data = data
        self.end = end
        self.report = report
        self.report_encoded_word = report_encoded_word
        self.scan_8bit = scan_8bit
        self.decode_word = decode_word

    def tokens(self) -> List[Token]:
        data, end = self.data, self.end
        out: List[Token] = []
        i = 0
        while i < end:
            cls = BYTE_CLASS[data[i]]
            b = data[i]
            if cls == C_WSP:
                j = i
                while j < end and BYTE_CLASS[data[j]] == C_WSP:
                    j = self._line_break(j) if data[j] == 0x0D or data[j] == 0x0A else j + 1
                out.append(Token(WS, i, j))
            elif b == 0x28:  # "("
                out.append(self._comment(i))
            elif b == DQUOTE:
                out.append(self._quoted_string(i))
            elif b == 0x5B:  # "["
                out.append(self._literal(i))
            elif cls == C_SPECIAL and b != BACKSLASH:
                token = Token(SPECIAL, i, i + 1)
                token.char = b
                out.append(token)
            else:
                out.append(self._atom(i))
            i = out[-1].end
        return out

    def _atom(self, start: int) -> Token:
        """atom = [CFWS] 1*atext [CFWS]; atext also takes UTF8-non-ascii (RFC 6532 §3.2).

        The run also swallows what no production allows outside quotes (control characters,
        a backslash and the byte it escapes) so that one bad byte does not split a word:
        each is reported, and the parser sees one atom. An encoded-word whose text holds
        periods (RFC 2047 §5(3) forbids them in a phrase, but encoders write them and
        readers decode them) stays one atom too; one holding other specials does not,
        since "<" or "@" there are structure to every RFC 5322 parser.
        """
        data, end = self.data, self.end
        token = Token(ATOM, start, start)
        i = start
        word = encoded_word.match_encoded_word(data, start, end)
        if word is not None and all(
            BYTE_CLASS[b] == C_ATEXT or b == 0x2E for b in data[start : word.end]
        ):
            i = word.end
        while i < end:
            cls = BYTE_CLASS[data[i]]
            if cls == C_ATEXT or cls == C_HIGH:
                i += 1
            elif cls == C_CTL or cls == C_NUL:
                self._control(i, "control-character")
                i += 1
            elif data[i] == BACKSLASH:
                # Outside quotes a backslash escapes nothing, and never a line break.
                pair_end = i + 1 if i + 1 >= end or data[i + 1] in b"\r\n" else i + 2
                self.report("backslash-outside-quotes", i, pair_end)
                self._escaped_hazard(i)
                token.escaped = True
                i = pair_end
            else:
                break
        token.end = i
        return token

    def _control(self, i: int, code: str) -> None:
        """A control character where text belongs: NUL is never allowed (C programs end
        the string there); the others are reported as ``code``."""
        self.report("nul" if self.data[i] == 0 else code, i, i + 1)

    def _line_break(self, i: int) -> int:
        """Judge the unescaped CR or LF at ``i``; returns the index after the line break.

        A line break followed by SP or HTAB is a fold (FWS, RFC 5322 §3.2.2); LF alone is
        accepted as the line ending of Unix storage and reported as info. A break
        followed by anything else would end the field (header injection); one at the very
        end is the field's terminator, which is not part of the body. A folded line of
        white space only is obs-FWS (§4.2). CR without LF is never a line ending.
        """
        data, end = self.data, self.end
        if data[i] == 0x0D:
            if i + 1 >= end or data[i + 1] != 0x0A:
                self.report("bare-cr", i, i + 1)
                return i + 1
            break_end = i + 2
        else:
            break_end = i + 1
        if break_end == end:
            self.report("trailing-line-break", i, break_end)
            return break_end
        following = data[break_end]
        if following == 0x20 or following == 0x09:
            if data[i] == 0x0A:
                self.report("lf-line-ending", i, break_end)
            k = break_end
            while k < end and (data[k] == 0x20 or data[k] == 0x09):
                k += 1
            if k < end and (data[k] == 0x0D or data[k] == 0x0A):
                self.report("obs-fws", break_end, k)
        else:
            self.report("unfolded-line-break", i, break_end)
        return break_end

    def _escaped_hazard(self, i: int) -> None:
        """A backslash at ``i`` escaping NUL, CR or LF: legal as obs-qp, yet the NUL still
        ends C strings and the line break still ends header lines for mail software."""
        if i + 1 < self.end:
            escaped = self.data[i + 1]
            if escaped == 0:
                self.report("escaped-nul", i, i + 2)
            elif escaped == 0x0D or escaped == 0x0A:
                self.report("escaped-line-break", i, i + 2)

    def _quoted_pair(self, i: int) -> int:
        """quoted-pair = ("\\" (VCHAR / WSP)) / obs-qp;  obs-qp = "\\" (%d0 / obs-NO-WS-CTL / LF / CR)

        ``i`` is at the backslash; returns the index after the pair.
        """
        if i + 1 >= self.end:
            return self.end  # a lone backslash at the end: the enclosing token is unterminated
        escaped = self.data[i + 1]
        if (escaped < 0x20 and escaped != 0x09) or escaped == 0x7F:
            self.report("obs-qp", i, i + 2)
        self._escaped_hazard(i)
        return i + 2

    def _quoted_string(self, start: int) -> Token:
        """quoted-string = [CFWS] DQUOTE *([FWS] qcontent) [FWS] DQUOTE [CFWS]
        qcontent = qtext / quoted-pair;  qtext = %d33 / %d35-91 / %d93-126 / obs-qtext
        """
        data, end = self.data, self.end
        token = Token(QSTR, start, end)
        i = start + 1
        token.closed = False
        while i < end:
            b = data[i]
            if b == DQUOTE:
                token.closed = True
                i += 1
                break
            if b == BACKSLASH:
                i = self._quoted_pair(i)
                continue
            if b == 0x0D or b == 0x0A:
                i = self._line_break(i)
                continue
            cls = BYTE_CLASS[b]
            if cls == C_CTL or cls == C_NUL:
                self._control(i, "obs-qtext")
            i += 1
        token.end = i
        if not token.closed:
            self.report("unterminated-quoted-string", start, i)
        content_end = i - 1 if token.closed else i
        for word in encoded_word.find_encoded_words(data, start + 1, content_end):
            self.report_encoded_word("encoded-word-in-quoted-string", word.start, word.end)
        return token

    def _literal(self, start: int) -> Token:
        """domain-literal = [CFWS] "[" *([FWS] dtext) [FWS] "]" [CFWS]
        dtext = %d33-90 / %d94-126 / obs-dtext;  obs-dtext = obs-NO-WS-CTL / quoted-pair
        """
        data, end = self.data, self.end
        token = Token(LITERAL, start, end)
        token.closed = False
        i = start + 1
        while i < end:
            b = data[i]
            if b == 0x5D:  # "]"
                token.closed = True
                i += 1
                break
            if b == BACKSLASH:
                pair_end = min(i + 2, end)
                self.report("obs-dtext", i, pair_end)
                self._escaped_hazard(i)
                i = pair_end
                continue
            if b == 0x0D or b == 0x0A:
                i = self._line_break(i)
                continue
            cls = BYTE_CLASS[b]
            if cls == C_CTL or cls == C_NUL:
                self._control(i, "obs-dtext")
            elif b == 0x5B:  # "[" is not dtext
                self.report("unexpected-character", i, i + 1)
            i += 1
        token.end = i
        if not token.closed:
            self.report("unterminated-domain-literal", start, i)
        self.scan_8bit(start, i, True)
        return token

    def _comment(self, start: int) -> Token:
        """comment = "(" *([FWS] ccontent) [FWS] ")";  ccontent = ctext / quoted-pair / comment
        ctext = %d33-39 / %d42-91 / %d93-126 / obs-ctext

        Nesting is counted, not recursed: a depth counter walks any depth in constant
        stack. Depth beyond MAX_COMMENT_DEPTH is reported once per comment.
        """
        data, end = self.data, self.end
        token = Token(COMMENT, start, end)
        token.closed = False
        depth = 1
        too_deep_reported = False
        i = start + 1
        while i < end:
            b = data[i]
            if b == 0x29:  # ")"
                depth -= 1
                i += 1
                if depth == 0:
                    token.closed = True
                    break
                continue
            if b == 0x28:  # "("
                depth += 1
                if depth > MAX_COMMENT_DEPTH and not too_deep_reported:
                    self.report("comment-too-deep", i, i + 1)
                    too_deep_reported = True
            elif b == BACKSLASH:
                i = self._quoted_pair(i)
                continue
            elif b == 0x0D or b == 0x0A:
                i = self._line_break(i)
                continue
            elif BYTE_CLASS[b] == C_CTL or BYTE_CLASS[b] == C_NUL:
                self._control(i, "obs-ctext")
            i += 1
        token.end = i
        if not token.closed:
            self.report("unterminated-comment", start, i)
        self.report("comment", start, i)
        self.scan_8bit(start, i, False)
        token.text = self._comment_text(token)
        return token

    def _comment_text(self, token: Token) -> str:
        """The comment as a reader sees it: the outer parentheses dropped, quoted-pairs
        unescaped, line breaks unfolded, and encoded-words decoded where RFC 2047 §5(2)
        allows them (delimited by white space or parentheses)."""
        data = self.data
        content_end = token.end - 1 if token.closed else token.end
        pieces: List[str] = []
        pending_space = ""
        last_was_word = False
        i = token.start + 1
        while i < content_end:
            b = data[i]
            if BYTE_CLASS[b] == C_WSP:
                j = i
                while j < content_end and BYTE_CLASS[data[j]] == C_WSP:
                    j += 1
                pending_space = data[i:j].replace(b"\r", b"").replace(b"\n", b"").decode("ascii")
                i = j
                continue
            if b == 0x28 or b == 0x29:
                pieces.append(pending_space + chr(b))
                pending_space = ""
                last_was_word = False
                i += 1
                continue
            j = i
            escaped = False
            while j < content_end:
                c = data[j]
                if BYTE_CLASS[c] == C_WSP or c == 0x28 or c == 0x29:
                    break
                if c == BACKSLASH:
                    escaped = True
                    j = min(j + 2, content_end)
                else:
                    j += 1
            decoded = None if escaped else self.decode_word(i, j)
            if decoded is not None:
                if last_was_word:
                    pending_space = ""  # white space between encoded-words is not shown
                pieces.append(pending_space + decoded)
                last_was_word = True
            else:
                for word in encoded_word.find_encoded_words(data, i, j):
                    if not (word.start == i and word.end == j):
                        self.report_encoded_word("encoded-word-not-delimited", word.start, word.end)
                pieces.append(pending_space + unescape(data, i, j, PAIRS_UNESCAPE))
                last_was_word = False
            pending_space = ""
            i = j
        pieces.append(pending_space)
        return "".join(pieces)


def high_runs(data: bytes, start: int, end: int) -> Iterator[Tuple[int, int, Optional[str]]]:
    """Each maximal run of bytes >= 0x80 in ``data[start:end]``: its span and its text
    when it is valid UTF-8 (None when it is some other charset's raw bytes). A valid
    UTF-8 character is never split by an ASCII byte, so runs can be judged one by one."""
    i = start
    while i < end:
        if data[i] < 0x80:
            i += 1
            continue
        j = i
        while j < end and data[j] >= 0x80:
            j += 1
        try:
            yield i, j, data[i:j].decode("utf-8")
        except UnicodeDecodeError:
            yield i, j, None
        i = j


# What ``unescape`` makes of a quoted-pair:
# - the escaped character alone, but an escaped CR or LF dropped with its backslash
#   (display text, where the line break is reported, not shown);
PAIRS_UNESCAPE = 0
# - the escaped character alone, CR and LF included (a local part, whose canonical form
#   escapes them again, so that its address never hides them);
PAIRS_UNESCAPE_ALL = 1
# - the backslash and the character as written (a domain, which has no quoting, so that
#   unescaping would make another domain of it: ``[1.2.3.4\]]``, ``b\.c``).
PAIRS_KEEP = 2


def unescape(data: bytes, start: int, end: int, pairs: int) -> str:
    """The text of ``data[start:end]`` with quoted-pairs read as ``pairs`` says and the
    other line breaks removed (unfolding), decoded as UTF-8 with U+FFFD for bytes that
    are not."""
    out = bytearray()
    i = start
    while i < end:
        b = data[i]
        if b == BACKSLASH and i + 1 < end:
            escaped = data[i + 1]
            if pairs == PAIRS_KEEP:
                out += data[i : i + 2]
            elif pairs == PAIRS_UNESCAPE_ALL or (escaped != 0x0D and escaped != 0x0A):
                out.append(escaped)
            i += 2
            continue
        # A lone backslash at the end is kept only where pairs are kept as written.
        if b != 0x0D and b != 0x0A and (b != BACKSLASH or pairs == PAIRS_KEEP):
            out.append(b)
        i += 1
    return out.decode("utf-8", "replace")

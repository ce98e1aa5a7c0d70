"""What a gateway does with a message, given what fromguard found in its header block.

A verdict alone is not a decision: one site rejects every ``invalid`` From, another only
marks it, a third quarantines one specific trick. A ``Policy`` maps conditions to
actions, and ``policy.process(raw)`` checks the message's header block (``From``,
``Sender``, ``Resent-From``, ``Reply-To`` and the block's own faults), applies the
strongest matching action and returns an ``Outcome`` with the bytes to deliver.

Actions, weakest first (the strongest matching one wins, so adding a rule can only make
a policy stricter for the messages it matches):

- ``accept``: deliver unchanged, byte for byte.
- ``tag``: add header fields at the top of the header block (nothing else changes), for
  filters and mail clients downstream. (``Outcome.headers`` lists them: an MTA
  integration such as ``fromguard milter`` adds them itself, with ``add_headers=False``.)
- ``warn``: tag, and prepend a warning to the body's text parts (see ``_mime``: the
  message stays valid MIME, signed and encrypted parts are left untouched, and a part
  that cannot be rewritten safely gets the warning in a new first text part).
- ``quarantine``: the outcome says so and the message is unchanged; the MTA integration
  holds it.
- ``reject``: the outcome carries the SMTP reply; the message is unchanged.

``Policy.exchange()`` reproduces Exchange Server since its November 2024 update (what
administrators already know): a ``deceptive`` or ``invalid`` verdict, never ``legacy``
alone, gets ``X-MS-Exchange-P2FromRegexMatch: True`` and a warning, each switchable like
Exchange's ``AddP2FromRegexMatchHeader`` and ``AddDisclaimerforRegexMatch``.

TOML schema (every table and key optional; an unknown key is an error, so a typo cannot
silently weaken a policy; ``examples/policies/`` has commented examples). A policy file
must end with the line ``# fromguard-policy: end`` (``END_MARKER``), and may hold it
nowhere else: a file cut short (a partial copy, a full disk, a reload while an editor
writes it) would otherwise load as a weaker policy, since every table is optional. A
comment, so that one file loads in every version of fromguard; an empty file, or one of
comments only, is an error too. ``Policy.from_dict`` and ``Policy(...)`` take no
marker: they are built from Python, not read from a file::

    [verdicts]                 # the message verdict -> action
    valid = "accept"           # keys: valid, legacy, deceptive, invalid
    deceptive = "warn"         # values: accept, tag, warn, quarantine, reject
    invalid = "reject"

    [codes]                    # a finding code (fromguard.FINDINGS) -> action; matches
    bidi-control = "quarantine"   # message-level findings and those of every checked field
    several-authors-without-sender = { action = "reject", code = 550, enhanced = "5.1.20", text = "Multiple From addresses are not allowed without Sender address" }

    [rules.paypal-lookalike]   # a named rule: a regular expression over a target
    target = "display-name"    # display-name, local-part, domain, addr-spec (each From
                               # mailbox's), or header:<Field-Name> (the unfolded value
                               # of every field of that name, ends trimmed)
    pattern = '(?i)pay ?pal'   # the Rust regex crate's syntax: linear time, no
                               # backreferences or look-around; (?i) ignores case
    action = "quarantine"      # and code, enhanced, text with "reject", as for codes

    [reject]                   # the SMTP reply of a reject (a rule's own reply wins)
    code = 550                 # 4xx (try later) or 5xx (refused)
    enhanced = "5.7.1"         # RFC 3463 class.subject.detail, class = the code's first digit
    text = "Message not accepted: the From header is not RFC 5322 compliant"

    [tag.headers]              # the fields tag and warn add, in this order
    X-Fromguard-Verdict = "{verdict}"      # placeholders: {verdict} {codes} {action}
    X-Fromguard-Findings = "{codes}"       # {reasons}; {{ and }} are braces. A field
                                           # whose value comes out empty is left out.
    [warn]
    text = "..."               # the warning (ours by default; \\n starts a line, each
                               # at most 100 characters). {sender}: the address of the
                               # From field judged, escaped, at most 60 characters; a
                               # line with it is left out when no single From address
                               # is certain (several, none, an invalid field)
    ascii_text = "..."         # for text parts whose charset cannot show ``text``

                               # the file's last line, whole (END_MARKER):
    # fromguard-policy: end

``reasons`` in an outcome are the conditions that matched with the outcome's action,
``verdict:<verdict>`` first, then ``code:<code>`` in the order of the findings (then the
codes reported past the findings cap, in catalogue order), then
``rule:<name>`` in the order of the rules; an accepted message has none. Rules are
compiled once, at load, into one ``fromguard.RuleSet`` (all patterns of a target matched
in one pass, size limits on each pattern); a pattern that does not compile fails the load
with the file, the line and the rule's name. In header values ``{verdict}`` is the verdict, ``{codes}``
every finding code reported (info ones too), ``{action}`` the action and ``{reasons}``
the reasons, each space-separated. Header values are printable ASCII and names may not
start with ``Content-`` or be ``MIME-Version`` (a policy must not be able to change the
MIME structure it promises to keep).

What a deployment should know: the fields are added above the existing ones and a copy
the sender forged further down is not removed, so downstream rules must read the first
occurrence (accepted mail is never changed, so it can carry such a copy); and a warning
changes the body, which invalidates DKIM body hashes exactly as Exchange's disclaimer
does, so verify DKIM before this step. Where a warning could not be placed in a text part
(a signed or encrypted body; a part that cannot be rewritten safely, which gets the
warning in a part of its own), the outcome's ``notes`` say so, and how.

A policy never re-parses a From value: ``process`` makes one call into the Rust core,
``fromguard.check_message(raw, rules=...)``, which splits the header block once, parses
every checked field once, and matches the rules on that check; the decision works from
its result. The codes it matches are every code the check reported, those past a
result's findings limit too (``codes``), so padding a value with harmless findings
cannot weaken a decision.
A bug in the core raises ``fromguard.InternalError`` from ``process``: callers that must
go on (the milter, the scan) catch it.
"""

from __future__ import annotations

import copy
import functools
import re
import sys
import unicodedata
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _mime
from ._catalogue import CODE_ORDER, FINDINGS
from ._core import RuleSet, _policy_check
from ._errors import RuleError
from ._model import Finding, MessageCheck, NamedIntEnum, Verdict
from ._warning import WarningText

# The TOML parser is imported when first needed: ``import fromguard`` stays fast for
# callers that only parse. (The MIME rewrite is the core's: nothing to defer.)

__all__ = [
    "DEFAULT_HEADERS",
    "DEFAULT_REPLY",
    "DEFAULT_WARNING",
    "END_MARKER",
    "Action",
    "Outcome",
    "Policy",
    "PolicyError",
    "SmtpReply",
]


class Action(NamedIntEnum):
    """What to do with a message, ordered by strength: the strongest match wins."""

    ACCEPT = 0
    TAG = 1
    WARN = 2
    QUARANTINE = 3
    REJECT = 4


class SmtpReply(NamedTuple):
    """The reply a reject gives the sending server: code, enhanced code, text."""

    code: int
    enhanced: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"


DEFAULT_REPLY = SmtpReply(
    550, "5.7.1", "Message not accepted: the From header is not RFC 5322 compliant"
)
DEFAULT_HEADERS: Tuple[Tuple[str, str], ...] = (
    ("X-Fromguard-Verdict", "{verdict}"),
    ("X-Fromguard-Findings", "{codes}"),
)
DEFAULT_WARNING = (
    "Caution: the sender's address of this message could not be verified as shown.\n"
    "The address it was sent from: <{sender}>"
)

END_MARKER = "# fromguard-policy: end"
"""The last line of every policy file: what tells a whole file from a cut one."""

EXCHANGE_HEADER = "X-MS-Exchange-P2FromRegexMatch"
MAX_WARNING_LINE = 100
SENDER_WIDTH = 60
"""The most characters ``{sender}`` shows in a warning (escapes included): a longer
address keeps its start and its end (the domain) around ``...``."""


class PolicyError(ValueError):
    """A policy that cannot be loaded: the file (if any), the line (when known) and why.

    Raised at load time, never while mail flows: a gateway that starts with a broken
    policy must stop with one clear line, not a traceback and not a weaker policy."""

    def __init__(
        self,
        reason: str,
        *,
        path: Optional[str] = None,
        line: Optional[int] = None,
        key: Optional[str] = None,
    ) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        self.key = key
        where = path or ""
        if path is not None and line is not None:
            where += f":{line}"
        message = f"{key}: {reason}" if key else reason
        super().__init__(f"{where}: {message}" if where else message)


class Outcome(NamedTuple):
    """The result of ``Policy.process``.

    ``message`` is the input object itself for accept, quarantine and reject (unchanged
    byte for byte), the rewritten bytes for tag and warn. ``findings`` are the message
    level findings and those of every checked field, all with spans into the raw message.
    ``notes`` say what the rewrite left alone and why (a signed part), and where the
    warning went instead (a new first text part) and why.
    ``headers`` are the fields tag and warn add at the top of the header block, in order,
    as (name, value) with empty values left out: what an MTA integration that adds them
    itself (``process(raw, add_headers=False)``) passes on."""

    action: Action
    verdict: Verdict
    message: bytes
    reasons: Tuple[str, ...]
    findings: Tuple[Finding, ...]
    smtp_reply: Optional[SmtpReply]
    notes: Tuple[str, ...]
    headers: Tuple[Tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        return (
            f"<Outcome action={self.action.name} verdict={self.verdict.name}"
            f" reasons={self.reasons!r} message={len(self.message)} bytes>"
        )


# -- The header check -----------------------------------------------------------------


class _Decision(NamedTuple):
    """What a policy decides on a message before acting on it (``Policy._decide``)."""

    action: Action
    reasons: Tuple[str, ...]
    codes: Tuple[str, ...]
    findings: Tuple[Finding, ...]
    reply: Optional[SmtpReply]


_Checked = Tuple[MessageCheck, Tuple[Finding, ...], Tuple[str, ...]]
"""A policy's check of a message (``Policy._check``): the header check, every finding of
the message (the fields' spans moved into it) and the codes in the order rules match
them (``fromguard.reference.message.decision_inputs`` gives the last two in Python)."""


# -- Loading --------------------------------------------------------------------------


class _Invalid(Exception):
    """A schema error at a key path, turned into a PolicyError by the loader."""

    def __init__(self, path: Tuple[str, ...], reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


class _Rule(NamedTuple):
    action: Action
    reply: Optional[SmtpReply]


_ACCEPT = _Rule(Action.ACCEPT, None)  # a verdict the policy leaves out

_MAILBOX_TARGETS = ("display-name", "local-part", "domain", "addr-spec")


_VERDICTS = {verdict.name.lower(): verdict for verdict in Verdict}
_ACTIONS = {action.name.lower(): action for action in Action}
_PLACEHOLDERS = ("verdict", "codes", "action", "reasons")
_WARNING_PLACEHOLDERS = ("sender",)
_FIELD_NAME = re.compile(r"[!-9;-~]+\Z")  # ftext, RFC 5322 §3.6.8
_FROM_NAME = re.compile(r"[^A-Za-z-]")  # what is not a letter of a checked field's name
# Characters a warning escapes (besides controls): format characters (bidi controls,
# zero-width ones), surrogates (8-bit bytes), private use, unassigned, separators.
_HIDDEN_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")
_ELLIPSIS = "..."
_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\Z")
_SECTIONS = {
    "verdicts": None,
    "codes": None,
    "rules": None,
    "reject": ("code", "enhanced", "text"),
    "tag": ("headers",),
    "warn": ("text", "ascii_text"),
}

Template = Tuple[Tuple[bool, str], ...]  # (is a placeholder, literal text or its name)


def _table(value: object, path: Tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Invalid(path, f"expected a table, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int):
        return f"the integer {value}"
    return f"a value of type {type(value).__name__}"


def _known_keys(table: Mapping[str, Any], allowed: Sequence[str], path: Tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise _Invalid(
                (*path, key), f"unknown key {key!r} (expected one of: {', '.join(allowed)})"
            )


def _action(value: object, path: Tuple[str, ...]) -> Action:
    if isinstance(value, Action):
        return value
    if isinstance(value, str) and value.lower() in _ACTIONS:
        return _ACTIONS[value.lower()]
    raise _Invalid(path, f"unknown action: {_kind(value)} (expected one of: {', '.join(_ACTIONS)})")


def _reply(table: Mapping[str, Any], path: Tuple[str, ...], base: SmtpReply) -> SmtpReply:
    """An SMTP reply from ``code``, ``enhanced`` and ``text`` (missing ones from ``base``;
    a changed code without an enhanced code takes the base's with the code's class)."""
    code = table.get("code", base.code)
    if isinstance(code, bool) or not isinstance(code, int):
        raise _Invalid((*path, "code"), f"bad SMTP code: expected an integer, got {_kind(code)}")
    if not (400 <= code <= 599 and (code // 10) % 10 <= 5):
        raise _Invalid(
            (*path, "code"), f"bad SMTP code {code}: a reject needs a 4xx or 5xx reply code"
        )
    default_enhanced = f"{code // 100}{base.enhanced[1:]}"
    enhanced = table.get("enhanced", default_enhanced)
    match = _ENHANCED.match(enhanced) if isinstance(enhanced, str) else None
    if match is None:
        raise _Invalid(
            (*path, "enhanced"),
            f"bad enhanced status code: {_kind(enhanced)} (expected class.subject.detail,"
            ' as in "5.7.1")',
        )
    if match.group(1) != str(code)[0]:
        raise _Invalid(
            (*path, "enhanced"),
            f"bad enhanced status code {enhanced!r}: its class must match the SMTP code {code}",
        )
    text = table.get("text", base.text)
    if not isinstance(text, str) or not text or not _printable_ascii(text) or len(text) > 400:
        raise _Invalid(
            (*path, "text"),
            f"bad reply text: {_kind(text)} (expected 1 to 400 printable ASCII characters)",
        )
    return SmtpReply(code, enhanced, text)


def _printable_ascii(text: str) -> bool:
    return all(" " <= char <= "~" or char == "\t" for char in text)


def _rule(value: object, path: Tuple[str, ...]) -> _Rule:
    """An action name, or a table ``{action = ..., code, enhanced, text}``."""
    if isinstance(value, Mapping):
        _known_keys(value, ("action", "code", "enhanced", "text"), path)
        if "action" not in value:
            raise _Invalid(path, "missing key 'action'")
        action = _action(value["action"], (*path, "action"))
        reply_keys = [key for key in ("code", "enhanced", "text") if key in value]
        if reply_keys and action is not Action.REJECT:
            raise _Invalid(
                (*path, reply_keys[0]), f"{reply_keys[0]!r} is only allowed with action 'reject'"
            )
        return _Rule(action, _reply(value, path, DEFAULT_REPLY) if reply_keys else None)
    return _Rule(_action(value, path), None)


def _rules(value: object, path: Tuple[str, ...]) -> Tuple[Dict[str, _Rule], Optional[RuleSet]]:
    """The ``[rules.NAME]`` tables, compiled into one RuleSet (none without rules)."""
    table = _table(value, path)
    rules: Dict[str, _Rule] = {}
    triples: List[Tuple[str, str, str]] = []
    for name, entry in table.items():
        where = (*path, name)
        # A rule's name goes into header fields ({reasons}), SMTP replies and log lines.
        if not (0 < len(name) <= 64 and _printable_ascii(name)) or "\t" in name:
            raise _Invalid(
                where, f"bad rule name {name!r} (expected 1 to 64 printable ASCII characters)"
            )
        entry = _table(entry, where)
        _known_keys(entry, ("target", "pattern", "action", "code", "enhanced", "text"), where)
        for key in ("target", "pattern", "action"):
            if key not in entry:
                raise _Invalid(where, f"missing key {key!r}")
        target = entry["target"]
        if not isinstance(target, str) or not (
            target in _MAILBOX_TARGETS
            or (target.startswith("header:") and _FIELD_NAME.match(target[7:]))
        ):
            raise _Invalid(
                (*where, "target"),
                f"unknown target: {_kind(target)} (expected one of:"
                f" {', '.join(_MAILBOX_TARGETS)}, header:<Field-Name>)",
            )
        pattern = entry["pattern"]
        if not isinstance(pattern, str):
            raise _Invalid((*where, "pattern"), f"expected a string, got {_kind(pattern)}")
        rules[name] = _rule(
            {k: v for k, v in entry.items() if k not in ("target", "pattern")}, where
        )
        triples.append((name, target, pattern))
    if not triples:
        return rules, None
    try:
        return rules, RuleSet(triples)
    except RuleError as error:
        # Targets are checked above: what the core refuses is the rule's pattern.
        raise _Invalid((*path, error.rule, "pattern"), f"bad pattern: {error.reason}") from None


def _template(value: object, path: Tuple[str, ...]) -> Template:
    """A header value template: literal text and ``{placeholder}``s, checked at load."""
    if not isinstance(value, str) or not _printable_ascii(value):
        raise _Invalid(path, f"bad header value: {_kind(value)} (expected printable ASCII)")
    return _placeholders(value, path, _PLACEHOLDERS, "a header value")


def _placeholders(value: str, path: Tuple[str, ...], names: Sequence[str], what: str) -> Template:
    """``value`` as literal text and ``{name}`` placeholders (``{{`` and ``}}`` are
    braces); any other use of a brace is an error."""
    parts: List[Tuple[bool, str]] = []
    literal = ""
    index = 0
    while index < len(value):
        char = value[index]
        if value.startswith(("{{", "}}"), index):
            literal += char
            index += 2
            continue
        if char == "}":
            raise _Invalid(path, f"a lone '}}' in {what} (write '}}}}')")
        if char == "{":
            end = value.find("}", index)
            name = value[index + 1 : end] if end > 0 else ""
            if name not in names:
                raise _Invalid(
                    path,
                    f"unknown placeholder {value[index : end + 1] if end > 0 else '{'!r}"
                    f" (expected one of: {', '.join('{' + p + '}' for p in names)})",
                )
            if literal:
                parts.append((False, literal))
                literal = ""
            parts.append((True, name))
            index = end + 1
            continue
        literal += char
        index += 1
    if literal:
        parts.append((False, literal))
    return tuple(parts)


def _headers(value: object, path: Tuple[str, ...]) -> Tuple[Tuple[str, Template], ...]:
    table = _table(value, path)
    headers: List[Tuple[str, Template]] = []
    for name, template in table.items():
        if not _FIELD_NAME.match(name):
            raise _Invalid((*path, name), f"bad header field name {name!r}")
        lowered = name.lower()
        if lowered.startswith("content-") or lowered == "mime-version":
            raise _Invalid(
                (*path, name), f"{name} may not be added: it would change the MIME structure"
            )
        headers.append((name, _template(template, (*path, name))))
    return tuple(headers)


def _warning_text(value: object, path: Tuple[str, ...]) -> Tuple[Template, ...]:
    """A warning, one template per line: lines of at most ``MAX_WARNING_LINE``
    characters (``{sender}`` counted as ``SENDER_WIDTH``), so that no line of a rewritten
    part, even HTML-escaped or as character references, passes the 998-octet limit of
    RFC 5322. A line with ``{sender}`` is left out when there is no sender to name, so
    another line must say something."""
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(path, f"bad warning text: {_kind(value)} (expected a non-empty string)")
    if any(unicodedata.category(char) in ("Cc", "Cs") and char != "\n" for char in value):
        raise _Invalid(path, "bad warning text: control characters other than line breaks")
    lines = tuple(
        _placeholders(line, path, _WARNING_PLACEHOLDERS, "a warning") for line in value.split("\n")
    )
    widths = (
        sum(SENDER_WIDTH if placeholder else len(text) for placeholder, text in line)
        for line in lines
    )
    if any(width > MAX_WARNING_LINE for width in widths):
        raise _Invalid(
            path,
            f"bad warning text: a line longer than {MAX_WARNING_LINE} characters"
            f" ({{sender}} counts as {SENDER_WIDTH}; break it with \\n)",
        )
    if all(_names_sender(line) or not _render(line, {}).strip() for line in lines):
        raise _Invalid(
            path, "bad warning text: every line names {sender}, and a message may have none"
        )
    return lines


def _names_sender(line: Template) -> bool:
    return any(placeholder for placeholder, _ in line)


def _warning_source(lines: Tuple[Template, ...]) -> str:
    return "\n".join(_render_source(line) for line in lines)


def _rendered_warning(
    lines: Tuple[Template, ...], sender: Optional[str], *, ascii_only: bool
) -> str:
    """The warning for one message: ``{sender}`` filled in, or its lines left out."""
    if sender is None:
        return "\n".join(_render(line, {}) for line in lines if not _names_sender(line))
    shown = _shown_sender(sender, ascii_only)
    return "\n".join(_render(line, {"sender": shown}) for line in lines)


_CACHE_ENTRIES = 1024
"""Rendered warnings (one per sender), header fields and decisions (one per verdict,
codes and rules) a policy keeps of each; past it, it starts again."""


def _judged_sender(check: MessageCheck) -> Optional[str]:
    """The address a warning names: that of the message's only From field (a field read
    as From however its name is disguised) when it holds one mailbox and the grammar
    leaves no doubt about it (the field is not ``INVALID``); else None."""
    found = [f for f in check.fields if _reads_as_from(f.name)]
    if len(found) != 1 or found[0].result.verdict >= Verdict.INVALID:
        return None
    return found[0].result.address


@functools.lru_cache(maxsize=256)
def _reads_as_from(name: str) -> bool:
    """Whether a checked field's name is From, however disguised (kept: names repeat)."""
    return _FROM_NAME.sub("", name).lower() == "from"


def _shown_sender(address: str, ascii_only: bool) -> str:
    """An address from the message as a warning may show it: what would not print as
    itself (controls, bidi and other format characters, line and paragraph separators,
    spaces other than U+0020, 8-bit bytes, a combining mark with no letter of the address
    to sit on; with ``ascii_only`` anything not ASCII) as a backslash escape, so it can
    neither break a line nor reorder, hide or mark the warning's own text; and at most
    ``SENDER_WIDTH`` characters, cut in the middle so the domain stays in view."""
    units: List[str] = []
    for char in address:
        shown = (" " <= char < "\x7f") or (
            not ascii_only
            and char > "\x7f"
            and unicodedata.category(char) not in _HIDDEN_CATEGORIES
            and not (unicodedata.category(char).startswith("M") and not _shows_base(units))
        )
        units.append(char if shown else char.encode("unicode_escape").decode("ascii"))
    if sum(map(len, units)) <= SENDER_WIDTH:
        return "".join(units)
    head_width = (SENDER_WIDTH - len(_ELLIPSIS)) // 3
    tail_width = SENDER_WIDTH - len(_ELLIPSIS) - head_width
    head = _fitting(units, head_width)
    tail = _fitting(units[len(head) :][::-1], tail_width)[::-1]
    while tail and len(tail[0]) == 1 and unicodedata.category(tail[0]).startswith("M"):
        del tail[0]  # its letter was cut: it would sit on the ellipsis
    return "".join(head) + _ELLIPSIS + "".join(tail)


def _shows_base(units: List[str]) -> bool:
    """Whether the last unit shown is a character a combining mark may sit on (not an
    escape, not the start)."""
    return bool(units) and len(units[-1]) == 1


def _fitting(units: List[str], width: int) -> List[str]:
    """The longest prefix of ``units`` whose characters fit in ``width``."""
    taken: List[str] = []
    used = 0
    for unit in units:
        if used + len(unit) > width:
            break
        taken.append(unit)
        used += len(unit)
    return taken


def _ascii_form(text: str) -> str:
    """The ASCII fallback of a warning: its letters without accents when that loses
    nothing else, else the default warning (an ASCII line beats a line of '?')."""
    stripped = "".join(
        char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char)
    )
    return stripped if stripped.isascii() else DEFAULT_WARNING


# -- The policy -----------------------------------------------------------------------


class Policy:
    """Conditions (the message verdict, finding codes, rules) mapped to actions.

    Build one from the same tables as the TOML file (``Policy(verdicts={...}, codes=...)``
    or ``Policy.from_dict``), load one with ``Policy.from_toml``, or take the Exchange
    preset. ``Policy()`` accepts everything and is a report-only policy. Instances are
    immutable and safe to share between threads, and pickle (a scan on Dask sends one to
    each worker)."""

    __slots__ = (
        "_ascii_warning",
        "_codes",
        "_decided",
        "_headers",
        "_rendered",
        "_reply",
        "_rules",
        "_ruleset",
        "_tables",
        "_verdicts",
        "_warning",
        "_warnings",
    )

    def __init__(
        self,
        *,
        verdicts: Optional[Mapping[str, Any]] = None,
        codes: Optional[Mapping[str, Any]] = None,
        rules: Optional[Mapping[str, Any]] = None,
        reject: Optional[Mapping[str, Any]] = None,
        tag: Optional[Mapping[str, Any]] = None,
        warn: Optional[Mapping[str, Any]] = None,
    ) -> None:
        try:
            self._load(verdicts, codes, rules, reject, tag, warn)
        except _Invalid as error:
            raise PolicyError(error.reason, key=".".join(error.path) or None) from None

    def _load(
        self,
        verdicts: Optional[Mapping[str, Any]],
        codes: Optional[Mapping[str, Any]],
        rules: Optional[Mapping[str, Any]],
        reject: Optional[Mapping[str, Any]],
        tag: Optional[Mapping[str, Any]],
        warn: Optional[Mapping[str, Any]],
    ) -> None:
        # What it was built from, copied: the compiled rules do not pickle, the tables do.
        self._tables = copy.deepcopy((verdicts, codes, rules, reject, tag, warn))
        self._verdicts: Dict[Verdict, _Rule] = {}
        for key, value in _table({} if verdicts is None else verdicts, ("verdicts",)).items():
            if key not in _VERDICTS:
                raise _Invalid(
                    ("verdicts", key),
                    f"unknown verdict {key!r} (expected one of: {', '.join(_VERDICTS)})",
                )
            self._verdicts[_VERDICTS[key]] = _rule(value, ("verdicts", key))
        self._codes: Dict[str, _Rule] = {}
        for key, value in _table({} if codes is None else codes, ("codes",)).items():
            if key not in FINDINGS:
                raise _Invalid(("codes", key), f"unknown finding code {key!r}")
            self._codes[key] = _rule(value, ("codes", key))
        self._rules, self._ruleset = _rules({} if rules is None else rules, ("rules",))
        reject_table = _table({} if reject is None else reject, ("reject",))
        _known_keys(reject_table, ("code", "enhanced", "text"), ("reject",))
        self._reply = _reply(reject_table, ("reject",), DEFAULT_REPLY)
        tag_table = _table({} if tag is None else tag, ("tag",))
        _known_keys(tag_table, ("headers",), ("tag",))
        if "headers" in tag_table:
            self._headers = _headers(tag_table["headers"], ("tag", "headers"))
        else:
            self._headers = tuple(
                (name, _template(value, ("tag", "headers", name)))
                for name, value in DEFAULT_HEADERS
            )
        warn_table = _table({} if warn is None else warn, ("warn",))
        _known_keys(warn_table, ("text", "ascii_text"), ("warn",))
        text = warn_table.get("text", DEFAULT_WARNING)
        self._warning = _warning_text(text, ("warn", "text"))
        # The warning as rendered for a sender (None: none named), kept for the next
        # message from the same sender: bulk mail comes from few.
        self._warnings: Dict[Optional[str], WarningText] = {}
        self._rendered: Dict[Tuple[Any, ...], Tuple[Tuple[str, str], ...]] = {}
        # Decisions by verdict, codes and rules matched: bulk mail is decided alike.
        self._decided: Dict[Tuple[Any, ...], Tuple[Action, Tuple[str, ...], Any]] = {}
        if "ascii_text" in warn_table:
            ascii_text = warn_table["ascii_text"]
            self._ascii_warning = _warning_text(ascii_text, ("warn", "ascii_text"))
            if not ascii_text.isascii():
                raise _Invalid(("warn", "ascii_text"), "bad warning text: not ASCII")
        else:
            self._ascii_warning = _warning_text(_ascii_form(text), ("warn", "text"))

    # -- Constructors --

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """A policy from a mapping shaped like the TOML document (tables as dicts)."""
        try:
            table = _table(data, ())
            _known_keys(table, tuple(_SECTIONS), ())
        except _Invalid as error:
            raise PolicyError(error.reason, key=".".join(error.path) or None) from None
        return cls(**table)

    @classmethod
    def from_toml(cls, path: Union[str, Path]) -> Policy:
        """A policy from a TOML file; any problem is a ``PolicyError`` naming the file,
        the line when it can be found, and the reason."""
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.9 and 3.10 only
            import tomli as tomllib

        name = str(path)
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise PolicyError(
                f"cannot read the file: {error.strerror or error}", path=name
            ) from None
        _check_whole(data, name)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            bad_line = data.count(b"\n", 0, error.start) + 1
            raise PolicyError("the file is not UTF-8", path=name, line=bad_line) from None
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            line: Optional[int] = getattr(error, "lineno", None)
            reason = getattr(error, "msg", None) or str(error)
            found = re.search(r"\s*\(at line (\d+), column \d+\)", reason)
            if found:
                line = line or int(found.group(1))
                reason = reason[: found.start()] + reason[found.end() :]
            elif line is None:
                found = re.search(r"at end of document", reason)
                line = text.count("\n") + 1 if found else None
            raise PolicyError(f"TOML syntax: {reason}", path=name, line=line) from None
        try:
            _known_keys(document, tuple(_SECTIONS), ())
            policy = cls.__new__(cls)
            policy._load(*(_table(document.get(section, {}), (section,)) for section in _SECTIONS))
        except _Invalid as error:
            raise PolicyError(
                error.reason,
                path=name,
                line=_key_line(text, error.path),
                key=".".join(error.path) or None,
            ) from None
        return policy

    @classmethod
    def exchange(cls, add_header: bool = True, add_warning: bool = True) -> Policy:
        """Exchange Server's behaviour since the November 2024 update: a ``deceptive`` or
        ``invalid`` verdict (never ``legacy`` alone) adds ``X-MS-Exchange-P2FromRegexMatch:
        True`` (``add_header``, Exchange's AddP2FromRegexMatchHeader) and prepends the
        warning (``add_warning``, AddDisclaimerforRegexMatch). Both off: accept all."""
        action = Action.WARN if add_warning else Action.TAG if add_header else Action.ACCEPT
        headers = {EXCHANGE_HEADER: "True"} if add_header else {}
        return cls(
            verdicts={"deceptive": action, "invalid": action},
            tag={"headers": headers},
        )

    # -- What it holds --

    @property
    def rules(self) -> Mapping[str, Action]:
        """Every condition and its action: ``verdict:<verdict>`` and ``code:<code>``."""
        rules = {f"verdict:{v.name.lower()}": r.action for v, r in self._verdicts.items()}
        rules.update({f"code:{code}": rule.action for code, rule in self._codes.items()})
        rules.update({f"rule:{name}": rule.action for name, rule in self._rules.items()})
        return rules

    @property
    def reply(self) -> SmtpReply:
        """The SMTP reply of a reject whose rule has none of its own."""
        return self._reply

    @property
    def headers(self) -> Tuple[Tuple[str, str], ...]:
        """The header fields tag and warn add, as (name, value template)."""
        return tuple((name, _render_source(template)) for name, template in self._headers)

    @property
    def warning(self) -> WarningText:
        """The warning warn prepends, and its ASCII form, ``{sender}`` unfilled."""
        return WarningText(_warning_source(self._warning), _warning_source(self._ascii_warning))

    def effective(self) -> Dict[str, Any]:
        """What this policy does, every default filled in, as JSON-ready data: the action
        of each verdict (``accept`` for one the policy leaves out), of each code it names
        (a code it does not name has no action of its own), its rules in order (target,
        pattern, action), the reply of each condition that rejects, the default reply,
        the header fields tag and warn add, and the warning. Two policies with equal
        ``effective()`` decide on and change every message alike."""
        rule_tables = self._tables[2] or {}
        verdicts = [(verdict, self._verdicts.get(verdict, _ACCEPT)) for verdict in Verdict]
        codes = sorted(self._codes.items(), key=lambda item: CODE_ORDER[item[0]])
        conditions = [(f"verdict:{verdict.name.lower()}", rule) for verdict, rule in verdicts]
        conditions.extend((f"code:{code}", rule) for code, rule in codes)
        conditions.extend((f"rule:{name}", rule) for name, rule in self._rules.items())
        return {
            "verdicts": {
                verdict.name.lower(): rule.action.name.lower() for verdict, rule in verdicts
            },
            "codes": {code: rule.action.name.lower() for code, rule in codes},
            "rules": [
                {
                    "name": name,
                    "target": rule_tables[name]["target"],
                    "pattern": rule_tables[name]["pattern"],
                    "action": rule.action.name.lower(),
                }
                for name, rule in self._rules.items()
            ],
            "replies": {
                condition: str(rule.reply or self._reply)
                for condition, rule in conditions
                if rule.action is Action.REJECT
            },
            "reject": str(self._reply),
            "headers": [list(header) for header in self.headers],
            "warning": {
                "text": _warning_source(self._warning),
                "ascii_text": _warning_source(self._ascii_warning),
            },
        }

    def changes(self, other: Policy) -> Dict[str, Any]:
        """What differs from this policy to ``other`` (what a reload logs), from their
        ``effective()``: ``verdicts``, ``codes`` and ``replies`` map each condition that
        changed to ``{"old": ..., "new": ...}`` (None: not in that policy); ``rules``
        lists the names ``added``, ``removed`` and ``changed`` (target, pattern or
        action) and says whether those in both are ``reordered``; ``reject``, ``headers``
        and ``warning`` are ``{"old": ..., "new": ...}`` when they changed; ``weakened``
        lists the conditions whose action is weaker in ``other`` (a verdict, code or
        rule left out counts as accept). Only what changed is there: ``{}`` when the
        two act alike."""
        old, new = self.effective(), other.effective()
        found: Dict[str, Any] = {}
        for section in ("verdicts", "codes", "replies"):
            keys = {**old[section], **new[section]}
            changed = {
                key: {"old": old[section].get(key), "new": new[section].get(key)}
                for key in keys
                if old[section].get(key) != new[section].get(key)
            }
            if changed:
                found[section] = changed
        old_rules = {rule["name"]: rule for rule in old["rules"]}
        new_rules = {rule["name"]: rule for rule in new["rules"]}
        kept = [name for name in old_rules if name in new_rules]
        rules = {
            "added": [name for name in new_rules if name not in old_rules],
            "removed": [name for name in old_rules if name not in new_rules],
            "changed": [name for name in kept if old_rules[name] != new_rules[name]],
            "reordered": kept != [name for name in new_rules if name in old_rules],
        }
        if any(rules.values()):
            found["rules"] = rules
        for key in ("reject", "headers", "warning"):
            if old[key] != new[key]:
                found[key] = {"old": old[key], "new": new[key]}
        now = other.rules
        weakened = [
            condition
            for condition, action in self.rules.items()
            if action > now.get(condition, Action.ACCEPT)
        ]
        if weakened:
            found["weakened"] = weakened
        return found

    def __repr__(self) -> str:
        rules = ", ".join(f"{key}={action.name.lower()}" for key, action in self.rules.items())
        return f"<Policy {rules or 'accept all'}>"

    def __reduce__(self) -> Tuple[Callable[..., Policy], Tuple[Any, ...]]:
        return _loaded, self._tables

    # -- Acting --

    def process(self, raw: bytes, *, add_headers: bool = True) -> Outcome:
        """Check the message's header block and apply the strongest matching action.

        With ``add_headers=False`` the tag and warn fields are only listed in the
        outcome's ``headers``, not written into ``message``: a milter adds them through
        the MTA, and the header block of ``message`` stays the input's byte for byte (the
        warning changes the body only)."""
        return self.process_with_check(raw, add_headers=add_headers)[0]

    def process_with_check(
        self, raw: bytes, *, add_headers: bool = True
    ) -> Tuple[Outcome, MessageCheck]:
        """``process``, and the header check the decision was made on (the checked
        fields, their findings and shadows), for an integration that reports them."""
        if not isinstance(raw, bytes):
            raise TypeError(f"expected bytes, not {type(raw).__name__}")
        checked = self._check(raw)
        check = checked[0]
        action, reasons, codes, findings, reply = self._decide(checked)

        message = raw
        notes: Tuple[str, ...] = ()
        added: Tuple[Tuple[str, str], ...] = ()
        if action in (Action.TAG, Action.WARN):
            added = self._added_headers(check.verdict, codes, action, reasons)
            headers = added if add_headers else ()
            warning = self._warning_for(check) if action is Action.WARN else None
            try:
                rewritten = _mime.rewrite(raw, headers, warning, body_only=not add_headers)
            except Exception as error:  # a bug in the rewrite must not lose the message
                if warning is None:
                    raise
                # Adding header fields is simple enough to trust; deliver with those.
                rewritten = _mime.rewrite(raw, headers)
                failure = f"warning not added: {type(error).__name__}: {error}"
                rewritten = rewritten._replace(notes=(failure,))
            message, notes = rewritten.message, rewritten.notes
        outcome = Outcome(action, check.verdict, message, reasons, findings, reply, notes, added)
        return outcome, check

    def _added_headers(
        self, verdict: Verdict, codes: Tuple[str, ...], action: Action, reasons: Tuple[str, ...]
    ) -> Tuple[Tuple[str, str], ...]:
        """The tag and warn fields for a decision, empty values left out (kept for the
        next message decided alike: bulk mail is)."""
        key = (verdict, codes, action, reasons)
        added = self._rendered.get(key)
        if added is None:
            values = {
                "verdict": verdict.name.lower(),
                "codes": " ".join(codes),
                "action": action.name.lower(),
                "reasons": " ".join(reasons),
            }
            rendered = ((name, _render(template, values)) for name, template in self._headers)
            added = tuple((name, value) for name, value in rendered if value)
            if len(self._rendered) >= _CACHE_ENTRIES:
                self._rendered.clear()
            self._rendered[key] = added
        return added

    def _warning_for(self, check: MessageCheck) -> WarningText:
        sender = _judged_sender(check)
        warning = self._warnings.get(sender)
        if warning is None:
            warning = WarningText(
                _rendered_warning(self._warning, sender, ascii_only=False),
                _rendered_warning(self._ascii_warning, sender, ascii_only=True),
            )
            if len(self._warnings) >= _CACHE_ENTRIES:
                self._warnings.clear()
            self._warnings[sender] = warning
        return warning

    def _check(self, raw: bytes) -> _Checked:
        """The one core call per message: the header check, with this policy's rules
        matched on it, and what the decision reads of it."""
        return _policy_check(raw, rules=self._ruleset)

    def _decide(self, checked: _Checked) -> _Decision:
        """The strongest matching action for a message checked (with this policy's
        rules) as ``checked``."""
        check, findings, codes = checked
        key = (check.verdict, codes, check.rules)
        decided = self._decided.get(key)
        if decided is None:
            decided = self._match(*key)
            if len(self._decided) >= _CACHE_ENTRIES:
                self._decided.clear()
            self._decided[key] = decided
        action, reasons, reply = decided
        return _Decision(action, reasons, codes, findings, reply)

    def _match(
        self, verdict: Verdict, codes: Tuple[str, ...], rules: Tuple[str, ...]
    ) -> Tuple[Action, Tuple[str, ...], Optional[SmtpReply]]:
        """The strongest action of the rules that a verdict, codes and matched rules
        meet; the reasons, and the reply for a reject."""
        matched: List[Tuple[str, _Rule]] = []
        rule = self._verdicts.get(verdict)
        if rule is not None:
            matched.append((f"verdict:{verdict.name.lower()}", rule))
        matched.extend((f"code:{code}", self._codes[code]) for code in codes if code in self._codes)
        matched.extend((f"rule:{name}", self._rules[name]) for name in rules)
        action = max((rule.action for _, rule in matched), default=Action.ACCEPT)
        winners = [(reason, rule) for reason, rule in matched if rule.action is action]
        reasons = () if action is Action.ACCEPT else tuple(reason for reason, _ in winners)

        reply: Optional[SmtpReply] = None
        if action is Action.REJECT:
            # The most specific reply: a code's or a rule's, then the verdict's, then the default.
            replies = [(s.startswith("verdict:"), r.reply) for s, r in winners if r.reply]
            reply = min(replies, key=lambda pair: pair[0])[1] if replies else self._reply
        return action, reasons, reply


def _check_whole(data: bytes, name: str) -> None:
    """Refuse a policy file that holds no policy, or that may have been cut short: its
    last non-blank line must be ``END_MARKER``, and no other line may start with it (a
    cut just after it would leave a file that ends with the marker)."""
    lines = [
        (number, line.strip(b" \t\r"))
        for number, line in enumerate(data.split(b"\n"), start=1)
        if line.strip(b" \t\r")
    ]
    if not lines:
        raise PolicyError(
            "the file is empty: a policy file must say what to do (read as a policy, it"
            " would accept every message)",
            path=name,
        )
    if all(line.startswith(b"#") for _, line in lines):
        raise PolicyError(
            "the file holds only comments: a policy file must say what to do (read as a"
            " policy, it would accept every message)",
            path=name,
            line=lines[-1][0],
        )
    marker = END_MARKER.encode("ascii")
    last_number, last = lines[-1]
    if last != marker:
        raise PolicyError(
            f"the file does not end with the line {END_MARKER!r}: it may have been cut"
            " short, and a policy cut short loads as a weaker one (end a whole file with"
            " that line)",
            path=name,
            line=last_number,
        )
    for number, line in lines[:-1]:
        if line.startswith(marker):
            raise PolicyError(
                f"{END_MARKER!r} before the end of the file: it may only be the last line"
                " (a file cut after this line would look whole)",
                path=name,
                line=number,
            )


def _loaded(*tables: Optional[Mapping[str, Any]]) -> Policy:
    """A policy built again from its tables (unpickling)."""
    policy = Policy.__new__(Policy)
    policy._load(*tables)
    return policy


def _render(template: Template, values: Mapping[str, str]) -> str:
    return "".join(values[text] if placeholder else text for placeholder, text in template)


def _render_source(template: Template) -> str:
    return "".join(
        "{" + text + "}" if placeholder else text.replace("{", "{{").replace("}", "}}")
        for placeholder, text in template
    )


# -- Finding a key's line in a TOML file ----------------------------------------------

_KEY_PART = re.compile(r"""[ \t]*([A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')[ \t]*""")


def _parse_key(text: str, position: int) -> Tuple[Tuple[str, ...], int]:
    """A dotted TOML key at ``position``: its parts and where it ends (no parts: none)."""
    parts: List[str] = []
    while True:
        match = _KEY_PART.match(text, position)
        if match is None:
            return tuple(parts), position
        part = match.group(1)
        if part[0] == '"':
            part = re.sub(r"\\(.)", r"\1", part[1:-1])
        elif part[0] == "'":
            part = part[1:-1]
        parts.append(part)
        position = match.end()
        if not text.startswith(".", position):
            return tuple(parts), position
        position += 1


def _key_line(text: str, path: Tuple[str, ...]) -> Optional[int]:
    """The line that defines ``path`` in a TOML text (it parsed, so the scan can be
    simple): the line of the exact key if any, else of the longest enclosing key or
    table (an inline table, say). Lines inside multi-line strings are skipped."""
    if not path:
        return None
    section: Tuple[str, ...] = ()
    best: Optional[int] = None
    best_length = 0
    in_string: Optional[str] = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2:
                in_string = None
            continue
        stripped = line.lstrip()
        if stripped.startswith("["):
            start = 2 if stripped.startswith("[[") else 1
            keys, _ = _parse_key(stripped, start)
            section = keys
            line_path = keys
        else:
            keys, end = _parse_key(stripped, 0)
            if not keys or not stripped.startswith("=", end):
                continue
            line_path = section + keys
            for quote in ('"""', "'''"):
                if stripped.count(quote) % 2:
                    in_string = quote
        if line_path == path:
            return number
        if len(line_path) > best_length and path[: len(line_path)] == line_path:
            best, best_length = number, len(line_path)
    return best

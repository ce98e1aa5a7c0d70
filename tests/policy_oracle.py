"""What ``Policy.process`` must do on any message: decide as it would on the reference's
check, and give an outcome that keeps the message.

Shared by the bounded hypothesis test (``test_policy_fuzz.py``) and the atheris fuzz
(``fuzz/policy_fuzz.py``). ``check(raw)`` runs every policy of ``POLICIES`` on ``raw``
and raises ``AssertionError`` naming the policy and what broke:

- the decision (action, verdict, reasons, codes, findings, reply) made on the core's
  ``check_message`` equals the one made on the pure-Python reference's, and so does the
  whole outcome (the same rewrite follows). The reference has no rule engine: its check
  takes the rule names ``RuleSet.match`` gives (the core's other way to match rules);
- accept, quarantine and reject hand back the input object itself;
- tag and warn keep every input byte outside the insertions (a base64 line that takes
  the warning is re-encoded: its decoded bytes are kept; a wrapped message's Content-*
  fields move to its inner part);
- the ``email`` package reads the same From fields in the output as in the input;
- with ``add_headers=False`` the header block stays byte for byte;
- a warned message shows the warning in a text part as the ``email`` package decodes
  it, or a note says why not.

The seam: a ``Policy`` subclass whose ``_check`` (the policy's one call of the core)
returns the reference's check; nothing in the public API exists for the tests.
"""

from __future__ import annotations

import binascii
import codecs
import difflib
import email
import html
import re
from email.message import Message
from email.policy import compat32
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from fromguard import Action, MessageCheck, Outcome, Policy
from fromguard._mime import body_start
from fromguard.policy import _Checked
from fromguard.reference.message import check_message as reference_check_message
from fromguard.reference.message import decision_inputs

__all__ = [
    "POLICIES",
    "check",
    "decision",
    "kept_outside_insertions",
    "on_reference",
    "shows_warning",
]

ROOT = Path(__file__).resolve().parent.parent

# Rules on every target, each with its own action, so rule matches change decisions.
RULES = {
    "brand": {"target": "display-name", "pattern": r"(?i)\bbank\s*(security|support)\b|pay\s*pal",
              "action": "quarantine"},
    "ceo": {"target": "local-part", "pattern": r"^(ceo|admin|support)$", "action": "warn"},
    "lookalike": {"target": "domain", "pattern": r"(?i)^xn--|[^\x00-\x7f]", "action": "reject",
                  "code": 554, "enhanced": "5.7.1", "text": "look-alike domain"},
    "bank": {"target": "addr-spec", "pattern": r"@bank\.example$", "action": "tag"},
    "angles": {"target": "header:From", "pattern": r"<[^>]*>\s*<", "action": "warn"},
    "mailer": {"target": "header:X-Mailer", "pattern": r"(?i)mailer", "action": "tag"},
    "subject": {"target": "header:Subject", "pattern": r"(?i)account|invoice", "action": "warn"},
}  # fmt: skip

POLICIES: Dict[str, Policy] = {
    "exchange": Policy.exchange(),
    "strict": Policy.from_toml(ROOT / "examples" / "policies" / "strict.toml"),
    # Every message warned (so every rewrite path runs), rules and codes on top.
    "warn-rules": Policy.from_dict(
        {
            "verdicts": {v: "warn" for v in ("valid", "legacy", "deceptive", "invalid")},
            "codes": {"sender-differs": "tag", "bidi-control": "reject"},
            "rules": RULES,
            "tag": {"headers": {"X-Fromguard": "{verdict} {action} ({reasons}) {codes}"}},
        }
    ),
}

# What a note says when the warning is in no text part the reader sees, and why.
_NOT_SHOWN = re.compile(r"warning not added|left untouched|no text part|has no body")
_BOUNDARY = re.compile(rb"fromguard-[0-9a-f]{32}")
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")  # the email package's lines
_FIELD_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]*:")
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/=\r\n]+")

_last_reference: List[Tuple[bytes, MessageCheck]] = []


def _reference_check(raw: bytes) -> MessageCheck:
    """The reference's check of ``raw``, made once for all the policies (the reference
    is pure Python: most of the time of a check)."""
    if not _last_reference or _last_reference[0][0] is not raw:
        _last_reference[:] = [(raw, reference_check_message(raw))]
    return _last_reference[0][1]


class _OnReference(Policy):
    """A policy that decides on the reference's check of the message."""

    __slots__ = ()

    def _check(self, raw: bytes) -> _Checked:
        check = _reference_check(raw)
        if self._ruleset is not None:
            check = check._replace(rules=self._ruleset.match(raw))
        return (check, *decision_inputs(check))


def on_reference(policy: Policy) -> Policy:
    """The same policy (its tables loaded again), deciding on the reference's check."""
    copy = _OnReference.__new__(_OnReference)
    copy._load(*policy._tables)
    return copy


_REFERENCE = {name: on_reference(policy) for name, policy in POLICIES.items()}


def decision(policy: Policy, checked: _Checked) -> Tuple[object, ...]:
    """What a policy decides on a check: action, verdict, reasons, codes, findings, reply."""
    action, reasons, codes, findings, reply = policy._decide(checked)
    return (action, checked[0].verdict, reasons, codes, findings, reply)


def _is_subsequence(small: bytes, big: bytes) -> bool:
    position = 0
    for byte in small:
        position = big.find(byte, position) + 1
        if position == 0:
            return False
    return True


def _base64_kept(old: bytes, new: bytes) -> bool:
    """A base64 line re-encoded with the warning in it: its decoded bytes are kept."""
    if _BASE64_TEXT.fullmatch(old) is None or _BASE64_TEXT.fullmatch(new) is None:
        return False
    try:
        decoded_old = binascii.a2b_base64(old)
        decoded_new = binascii.a2b_base64(new)
    except binascii.Error:
        return False
    return _is_subsequence(decoded_old, decoded_new)


def _moved_fields(lines: List[bytes]) -> Tuple[List[bytes], List[bytes]]:
    """The lines less the header block's Content-* fields (each with its continuation
    lines), and those fields: what wrapping a message moves to its inner part. The header
    block is read as the email package (and the rewrite) reads it: it ends at the first
    line that is neither a field, nor a continuation, nor a ``From`` line (which ends the
    field before it: white space after it continues nothing)."""
    kept: List[bytes] = []
    moved: List[bytes] = []
    in_header, moving = True, False
    for line in lines:
        if in_header and line[:1] in (b" ", b"\t"):
            if moving:
                moved[-1] += line
                continue
        elif in_header and line.startswith(b"From "):
            moving = False
        elif in_header and _FIELD_LINE.match(line):
            moving = line.lower().startswith(b"content-")
            if moving:
                moved.append(line)
                continue
        elif in_header:
            in_header = False
        kept.append(line)
    return kept, moved


def _is_kept(old_lines: List[bytes], out: bytes) -> bool:
    """Whether the lines, joined, are a subsequence of ``out``: greedily, a line at a time
    where ``out`` goes on with it as it is, else byte by byte."""
    position = 0
    for line in old_lines:
        if out.startswith(line, position):
            position += len(line)
            continue
        for byte in line:
            position = out.find(byte, position) + 1
            if position == 0:
                return False
    return True


def kept_outside_insertions(raw: bytes, out: bytes, wrapped: bool) -> Optional[str]:
    """None if ``out`` is ``raw`` with bytes inserted (and the exceptions the rewrite
    documents: a base64 line re-encoded around the warning, a wrapped message's Content-*
    fields moved to its inner part); else what was lost."""
    old_lines = _LINE.findall(raw)
    if wrapped:
        old_lines, moved = _moved_fields(old_lines)
        for field in moved:
            if field not in out:
                return f"the Content-* field {field[:200]!r} was not moved but lost"
    if _is_kept(old_lines, out):
        return None
    # Only a base64 line re-encoded is left to explain: line by line (quadratic in the
    # worst case, and rare).
    new_lines = _LINE.findall(out)
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("equal", "insert"):
            continue
        old, new = b"".join(old_lines[i1:i2]), b"".join(new_lines[j1:j2])
        if not (_is_subsequence(old, new) or _base64_kept(old, new)):
            return f"input lines {i1}-{i2} {old[:200]!r} became {new[:200]!r}"
    return None


def _from_fields(raw: bytes) -> List[str]:
    return [
        str(value) for value in email.message_from_bytes(raw, policy=compat32).get_all("From", [])
    ]


def _text_of(part: Message) -> str:
    """A text part as a reader sees it: transfer-decoded, charset-decoded (HTML
    character references resolved). A Content-Transfer-Encoding folded or with white
    space after it is read unfolded and stripped, as readers that decode the body read
    it: the email package's compat32 compares the value as written and leaves such a
    body encoded, the sender's text as unreadable as the warning
    (fuzz/regressions/policy/folded-transfer-encoding, transfer-encoding-then-space)."""
    written = part.get("Content-Transfer-Encoding")
    if written is not None and " ".join(str(written).split()) != str(written):
        part.replace_header("Content-Transfer-Encoding", " ".join(str(written).split()))
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "us-ascii"
    try:
        codecs.lookup(charset)
    except (LookupError, ValueError):
        charset = "latin-1"
    text = payload.decode(charset, "replace")
    return html.unescape(text) if part.get_content_subtype() == "html" else text


def _needles(policy: Policy) -> Tuple[str, ...]:
    """The start of the warning's first line (up to any placeholder), and of its ASCII
    form: one of them is in every part that carries the warning."""
    warning = policy.warning
    lines = (warning.text.split("\n")[0], warning.ascii_text.split("\n")[0])
    return tuple(line.split("{")[0].strip() for line in lines if line.split("{")[0].strip())


def shows_warning(out: bytes, policy: Policy) -> bool:
    """Whether a text part of ``out``, as the ``email`` package decodes it, holds the
    policy's warning."""
    needles = _needles(policy)
    for part in email.message_from_bytes(out, policy=compat32).walk():
        if part.get_content_maintype() == "text" and not part.is_multipart():
            text = _text_of(part)
            if any(needle in text for needle in needles):
                return True
    return False


def _normalised(outcome: Outcome) -> Outcome:
    """The outcome with the wrapping boundary (random) made constant."""
    message = _BOUNDARY.sub(b"fromguard-boundary", outcome.message)
    notes = tuple(_BOUNDARY.sub(b"fromguard-boundary", n.encode()).decode() for n in outcome.notes)
    return outcome._replace(message=message, notes=notes)


def check(raw: bytes) -> None:
    """Every policy of ``POLICIES`` on ``raw``: see the module's docstring."""
    for name, policy in POLICIES.items():
        _check_policy(name, policy, raw)


def _check_policy(name: str, policy: Policy, raw: bytes) -> None:
    reference = _REFERENCE[name]
    core_check, reference_check = policy._check(raw), reference._check(raw)
    assert core_check[0].rules == reference_check[0].rules, (name, "rules", raw)
    # The core's decision inputs, and the Python reading of the core's own check.
    assert core_check[1:] == decision_inputs(core_check[0]), (name, "inputs", raw)
    assert decision(policy, core_check) == decision(policy, reference_check), (name, raw)

    outcome = policy.process(raw)
    assert _normalised(outcome) == _normalised(reference.process(raw)), (name, "outcome", raw)
    if outcome.action not in (Action.TAG, Action.WARN):
        assert outcome.message is raw, (name, raw)
        return
    out = outcome.message
    wrapped = any("wrapped in multipart/mixed" in note for note in outcome.notes)
    lost = kept_outside_insertions(raw, out, wrapped)
    assert lost is None, (name, lost, raw)
    assert _from_fields(out) == _from_fields(raw), (name, "From as email reads it", raw)
    if outcome.action is Action.WARN:
        assert shows_warning(out, policy) or any(
            _NOT_SHOWN.search(note) for note in outcome.notes
        ), (name, "warning neither shown nor explained", outcome.notes, raw)

    body_only = policy.process(raw, add_headers=False)
    assert body_only.headers == outcome.headers, (name, raw)
    header_block = raw[: body_start(raw)]
    assert body_only.message.startswith(header_block), (name, "header block changed", raw)

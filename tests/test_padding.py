"""Padding to well past the findings cap hides nothing (issue 14, "padding downgrades a
decision").

For every ``deceptive`` and ``invalid`` code of the catalogue there is a trigger: a From
value (the shortest value case in ``tests/cases/*.jsonl`` whose findings include the
code) or, for the codes of the header-block check, a message (the shortest case in
``tests/cases/messages/messages.jsonl``). Each is padded before, after and on both sides
with 1,001 comments (a header block: 1,001 extra header lines, each with a finding of
its own), which takes it well past MAX_FINDINGS. Then the verdict is never weaker than
the unpadded one, the code is still in ``codes``, and a policy that tags ``invalid`` and
rejects the code still rejects.

The engines are the Rust core and the reference; the core runs once its results carry
``codes`` (the binding that reports them lands with the core's restructuring).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest

import fromguard
import fromguard.reference
from fromguard import FINDINGS, Action, Policy, Severity
from fromguard import policy as policy_module
from fromguard._catalogue import CODE_ORDER
from fromguard.reference.limits import MAX_FINDINGS
from fromguard.reference.message import check_message as reference_check_message
from fromguard.reference.message import decision_inputs
from test_cases import CASES, case_input

PADDING = 1001
COMMENTS = b" (x)" * PADDING
# A header line with a finding of its own (obs-field-name-space) that names no checked
# field, so it changes nothing else in the block.
PAD_LINES = b"X-Pad : x\r\n" * PADDING
SIDES = ("before", "after", "both")

FLAGGED = [code for code, info in FINDINGS.items() if info.severity >= Severity.DECEPTIVE]

MESSAGE_CASES: List[Dict[str, Any]] = [
    json.loads(line)
    for line in (Path(__file__).parent / "cases" / "messages" / "messages.jsonl")
    .read_text(encoding="utf-8")
    .splitlines()
]


def as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def value_triggers() -> Dict[str, Tuple[bytes, bool, bool]]:
    """code -> (value, utf8, groups): the shortest value case reporting the code."""
    triggers: Dict[str, Tuple[bytes, bool, bool]] = {}
    for case in sorted(CASES, key=lambda c: len(as_bytes(case_input(c)))):
        for code, _, _ in case.get("findings", []) + case.get("findings_include", []):
            if code in FLAGGED and code not in triggers:
                value = as_bytes(case_input(case))
                triggers[code] = (value, case.get("utf8", True), case.get("groups", False))
    return triggers


def message_triggers() -> Dict[str, bytes]:
    """code -> message: the shortest message case reporting the code at the message level."""
    triggers: Dict[str, bytes] = {}
    for case in sorted(MESSAGE_CASES, key=lambda c: len(c["message"])):
        for code, _, _ in case["findings"]:
            if code in FLAGGED and code not in triggers:
                triggers[code] = case["message"].encode("utf-8")
    return triggers


VALUE_TRIGGERS = value_triggers()
MESSAGE_TRIGGERS = message_triggers()


def pad_value(value: bytes, side: str) -> bytes:
    before = COMMENTS + b" " if side in ("before", "both") else b""
    after = COMMENTS if side in ("after", "both") else b""
    return before + value + after


def pad_message(message: bytes, side: str) -> bytes:
    """The pad lines at the start of the header block and/or just before the empty line
    that ends it (or at the end of a message that has none)."""
    blank = min(
        (at + 1 for at in (message.find(b"\n\n"), message.find(b"\n\r\n")) if at >= 0),
        default=len(message),
    )
    head, rest = message[:blank], message[blank:]
    if not head.endswith(b"\n"):
        head += b"\r\n"
    before = PAD_LINES if side in ("before", "both") else b""
    after = PAD_LINES if side in ("after", "both") else b""
    return before + head + after + rest


def reports_codes(parse: Callable[..., Any]) -> bool:
    return hasattr(parse("a@x.example"), "codes")


def value_engine(name: str) -> Callable[..., Any]:
    """The engine's ``parse``; the core's is skipped while its results carry no codes."""
    if name == "reference":
        parse: Callable[..., Any] = fromguard.reference.parse
        return parse
    if not reports_codes(fromguard.parse):
        pytest.skip("the core's results carry no codes yet (issue 14, the binding)")
    return fromguard.parse


def message_engine(name: str) -> Callable[[bytes], Any]:
    """The engine's ``check_message``; the core's as soon as its ``parse`` reports codes
    (the binding fills both at once: until then it cannot build a MessageCheck)."""
    if name == "reference":
        return reference_check_message
    if not reports_codes(fromguard.parse):
        pytest.skip("the core's results carry no codes yet (issue 14, the binding)")
    return fromguard.check_message


ENGINES = ("core", "reference")


@pytest.mark.parametrize("engine", ENGINES)
def test_codes_are_the_codes_of_the_findings_below_the_cap(engine: str) -> None:
    """Below the cap ``codes`` is the set of the findings' codes; past it a superset; in
    catalogue order either way."""
    parse = value_engine(engine)
    for case in CASES:
        result = parse(
            case_input(case), utf8=case.get("utf8", True), groups=case.get("groups", False)
        )
        kept = {f.code for f in result.findings}
        assert list(result.codes) == sorted(result.codes, key=CODE_ORDER.__getitem__)
        if "too-many-findings" in kept:
            assert kept <= set(result.codes), case["where"]
        else:
            assert set(result.codes) == kept, case["where"]


def test_every_flagged_code_has_a_trigger() -> None:
    assert sorted(set(FLAGGED) - set(VALUE_TRIGGERS) - set(MESSAGE_TRIGGERS)) == []


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("code", sorted(VALUE_TRIGGERS))
def test_padding_a_value_hides_no_code(code: str, engine: str, side: str) -> None:
    parse = value_engine(engine)
    value, utf8, groups = VALUE_TRIGGERS[code]
    plain = parse(value, utf8=utf8, groups=groups)
    assert code in plain.codes
    padded = parse(pad_value(value, side), utf8=utf8, groups=groups)
    if side != "after":
        # The padding reached past the cap. Padding after the trigger need not: after an
        # unterminated quoted string, comment or literal it is text inside it, and after
        # 4 MiB (input-too-long) it is not read.
        assert "too-many-findings" in padded.codes
        assert len(padded.findings) == MAX_FINDINGS + 1
    assert padded.verdict >= plain.verdict
    assert code in padded.codes


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("code", sorted(MESSAGE_TRIGGERS))
def test_padding_a_header_block_hides_no_code(code: str, engine: str, side: str) -> None:
    check_message = message_engine(engine)
    message = MESSAGE_TRIGGERS[code]
    plain = check_message(message)
    assert code in plain.codes
    padded = check_message(pad_message(message, side))
    assert "too-many-findings" in padded.codes
    assert len(padded.findings) == MAX_FINDINGS + 1
    assert padded.verdict >= plain.verdict
    assert code in padded.codes


def policy_action(engine: str, code: str, message: bytes, monkeypatch: Any) -> Action:
    """What ``Policy(verdicts={"invalid": "tag"}, codes={code: "reject"})`` does with
    ``message`` when the header check is ``engine``'s."""
    policy = Policy(verdicts={"invalid": "tag"}, codes={code: "reject"})
    check = message_engine(engine)
    if engine == "reference":
        # The reference's check, and the Python reading of what a decision takes from it
        # (the policy has no rules, which only the core's check matches).
        def checked(raw: bytes, rules: Any) -> Tuple[Any, ...]:
            found = check(raw)
            return (found, *decision_inputs(found))

        monkeypatch.setattr(policy_module, "_policy_check", checked)
    return policy.process(message, add_headers=False).action


def as_message(value: bytes) -> bytes:
    return b"From: " + value + b"\r\n\r\n"


# A message carries a From value to its parse only up to a line break not followed by
# white space: that ends the field. So the escaped-line-break trigger is folded here
# (which keeps its code), and unfolded-line-break cannot reach a field's parse at all. The
# header check parses with the default profile, where a group is not allowed, so
# group-without-mailbox cannot be reported in a message either.
FOLDED_FORMS = {"escaped-line-break": b'"a\\\r\n b" <a@x.example>'}
NOT_IN_A_FIELD = ("unfolded-line-break", "group-without-mailbox")


def policy_triggers() -> Dict[str, bytes]:
    triggers = {code: value for code, (value, _, _) in VALUE_TRIGGERS.items()}
    triggers.update(FOLDED_FORMS)
    return {code: value for code, value in triggers.items() if code not in NOT_IN_A_FIELD}


POLICY_VALUE_TRIGGERS = policy_triggers()


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("code", sorted(POLICY_VALUE_TRIGGERS))
def test_padding_a_value_never_weakens_a_policy(
    code: str, engine: str, side: str, monkeypatch: Any
) -> None:
    value = POLICY_VALUE_TRIGGERS[code]
    plain = policy_action(engine, code, as_message(value), monkeypatch)
    assert plain is Action.REJECT
    padded = policy_action(engine, code, as_message(pad_value(value, side)), monkeypatch)
    assert padded is Action.REJECT


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("code", sorted(MESSAGE_TRIGGERS))
def test_padding_a_header_block_never_weakens_a_policy(
    code: str, engine: str, side: str, monkeypatch: Any
) -> None:
    message = MESSAGE_TRIGGERS[code]
    assert policy_action(engine, code, message, monkeypatch) is Action.REJECT
    padded = pad_message(message, side)
    assert policy_action(engine, code, padded, monkeypatch) is Action.REJECT


@pytest.mark.parametrize("engine", ENGINES)
def test_the_issue_example(engine: str, monkeypatch: Any) -> None:
    """Issue 14's reproduction: 1,001 comments between the sender and the address after
    it no longer lose the shadow, or turn the policy's REJECT into TAG."""
    value = b"Bank <support@bank.example>" + COMMENTS + b" <m@mallory.example>"
    result = value_engine(engine)(value)
    assert "address-in-rejected-text" not in [f.code for f in result.findings]  # past the cap
    assert "address-in-rejected-text" in result.codes
    assert ("m@mallory.example", "rejected-text") in [(s.address, s.source) for s in result.shadows]
    action = policy_action(engine, "address-in-rejected-text", as_message(value), monkeypatch)
    assert action is Action.REJECT

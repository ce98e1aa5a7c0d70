"""The header-block check (``check_message``) over the message case file.

``tests/cases/messages/messages.jsonl``: one case a line with the raw ``message`` (text,
encoded as UTF-8), the message ``verdict``, the exact sorted message-level ``findings``
(``[code, start, end]``, spans into the message) and the checked ``fields`` in order
(``[name as written, the field's single address or null]``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

import fromguard
from fromguard._catalogue import CODE_ORDER
from fromguard.reference.message import check_message as reference_check_message

CHECKERS = {"core": fromguard.check_message, "reference": reference_check_message}

CASES_FILE = Path(__file__).parent / "cases" / "messages" / "messages.jsonl"
CASES: List[Dict[str, Any]] = [
    json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines()
]


@pytest.mark.parametrize("impl_name", sorted(CHECKERS))
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_message_case(case: Dict[str, Any], impl_name: str) -> None:
    result = CHECKERS[impl_name](case["message"].encode("utf-8"))
    assert [[f.code, f.start, f.end] for f in result.findings] == case["findings"]
    assert [[f.name, f.result.address] for f in result.fields] == case["fields"]
    assert result.verdict.name.lower() == case["verdict"]
    codes = {code for code, _, _ in case["findings"]}
    assert list(result.codes) == sorted(codes, key=CODE_ORDER.__getitem__)


@pytest.mark.parametrize("impl_name", sorted(CHECKERS))
def test_field_spans_point_into_the_message(impl_name: str) -> None:
    raw = b"To: x@y.example\r\nFrom: Dr. Jane <jane@x.example>\r\n\r\n"
    field = CHECKERS[impl_name](raw).field("from")
    assert field is not None
    assert raw[field.start : field.end] == b"From: Dr. Jane <jane@x.example>"
    finding = field.result.findings[0]
    assert finding.code == "obs-phrase"
    assert raw[field.value_start + finding.start : field.value_start + finding.end] == b"."


@pytest.mark.parametrize("impl_name", sorted(CHECKERS))
def test_only_bytes(impl_name: str) -> None:
    with pytest.raises(TypeError, match="expected bytes, not str"):
        CHECKERS[impl_name]("From: a@x.example\n\n")


def test_core_matches_reference_on_every_case() -> None:
    """Field by field: the same parse of every checked field, the same findings."""
    for case in CASES:
        raw = case["message"].encode("utf-8")
        core, reference = fromguard.check_message(raw), reference_check_message(raw)
        assert (core.verdict, core.findings, core.codes, core.rules) == (
            reference.verdict,
            reference.findings,
            reference.codes,
            reference.rules,
        )
        assert len(core.fields) == len(reference.fields)
        for ours, theirs in zip(core.fields, reference.fields):
            assert ours[:4] == theirs[:4]
            assert ours.result.value == theirs.result.value
            assert ours.result.findings == theirs.result.findings
            assert ours.result.mailboxes == theirs.result.mailboxes
            assert ours.result.shadows == theirs.result.shadows
            assert ours.result.codes == theirs.result.codes


@pytest.mark.parametrize("impl_name", sorted(CHECKERS))
@pytest.mark.parametrize("byte", [b"\xa0", b"\x85"])
def test_latin1_white_space_before_the_colon(impl_name: str, byte: bytes) -> None:
    """A raw Latin-1 NBSP or NEL before the colon (the case file, text, cannot hold it):
    a second From to a parser that reads the name as Latin-1 and trims it."""
    raw = b"From: <m@mallory.example>\r\nFrom" + byte + b": <ceo@bank.example>\r\n\r\n"
    result = CHECKERS[impl_name](raw)
    assert [[f.code, f.start, f.end] for f in result.findings] == [
        ["disguised-field-name", 27, 32],
        ["malformed-field-name", 27, 32],
        ["several-from-fields", 27, 52],
    ]
    assert [f.result.address for f in result.fields] == ["m@mallory.example", "ceo@bank.example"]
    assert result.verdict.name == "INVALID"


@pytest.mark.parametrize("impl_name", sorted(CHECKERS))
def test_explained_findings_stay_in_the_field(impl_name: str) -> None:
    """A list attribution lowers the message verdict only: the From field's own result
    keeps its deceptive finding, as a bare parse of the value does."""
    raw = (
        b"From: \"'jane@gmail.example' via Group\" <group@googlegroups.com>\r\n"
        b"List-Id: <group.googlegroups.com>\r\n\r\n"
    )
    result = CHECKERS[impl_name](raw)
    assert result.verdict.name == "VALID"
    assert [f.code for f in result.findings] == ["list-attribution"]
    field = result.field("from")
    assert field is not None
    assert field.result.verdict.name == "DECEPTIVE"
    assert "address-in-display-name" in field.result.codes
    value = raw[field.value_start : field.end]
    assert fromguard.parse(value).verdict == field.result.verdict

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

from fromguard.reference.message import check_message

CASES_FILE = Path(__file__).parent / "cases" / "messages" / "messages.jsonl"
CASES: List[Dict[str, Any]] = [
    json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines()
]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_message_case(case: Dict[str, Any]) -> None:
    result = check_message(case["message"].encode("utf-8"))
    assert [[f.code, f.start, f.end] for f in result.findings] == case["findings"]
    assert [[f.name, f.result.address] for f in result.fields] == case["fields"]
    assert result.verdict.name.lower() == case["verdict"]


def test_field_spans_point_into_the_message() -> None:
    raw = b"To: x@y.example\r\nFrom: Dr. Jane <jane@x.example>\r\n\r\n"
    field = check_message(raw).field("from")
    assert field is not None
    assert raw[field.start : field.end] == b"From: Dr. Jane <jane@x.example>"
    finding = field.result.findings[0]
    assert finding.code == "obs-phrase"
    assert raw[field.value_start + finding.start : field.value_start + finding.end] == b"."


def test_only_bytes() -> None:
    with pytest.raises(TypeError):
        check_message("From: a@x.example\n\n")  # type: ignore[arg-type]

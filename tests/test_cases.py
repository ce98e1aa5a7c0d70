"""The shared grammar case files (``tests/cases/*.jsonl``), run against both implementations.

The same files are run by the Rust core's own tests (``rust/core/tests/cases.rs``). A case
holds the input (``input``, ``input_hex`` or ``input_repeat``: ``[[text, count], ...]``),
the profile (``utf8``, ``groups``) and what must come out: ``verdict``, ``syntax``,
``findings`` (the exact sorted list of ``[code, start, end]``) or ``findings_count`` with
``findings_include``, ``mailboxes`` (a subset of each mailbox's fields), ``mailbox_count``,
``address`` and ``shadows`` (the exact sorted list of ``[address, source, start, end]``).
A ``note`` says where the behaviour a case stands for comes from (a parser's source or
tests); the runners do not read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Union

import pytest

from fromguard import FINDINGS

CASES_DIR = Path(__file__).parent / "cases"


def load_cases() -> List[Dict[str, Any]]:
    cases = []
    for path in sorted(CASES_DIR.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            case = json.loads(line)
            if "verdict" in case:  # other files (encoded_words.jsonl) have runners of their own
                case["where"] = f"{path.name}:{number}"
                cases.append(case)
    return cases


CASES = load_cases()


def case_input(case: Dict[str, Any]) -> Union[bytes, str]:
    if "input_repeat" in case:
        return "".join(text * count for text, count in case["input_repeat"])
    if "input_hex" in case:
        return bytes.fromhex(case["input_hex"])
    value: str = case["input"]
    return value


def as_json(value: Any) -> Any:
    """A mailbox field as the case file writes it (tuples as lists)."""
    if isinstance(value, tuple):
        return [as_json(item) for item in value]
    return value


@pytest.mark.parametrize("case", CASES, ids=[f"{c['where']} {c['name']}" for c in CASES])
def test_case(impl: Any, case: Dict[str, Any]) -> None:
    result = impl(case_input(case), utf8=case.get("utf8", True), groups=case.get("groups", False))
    got_findings = [[f.code, f.start, f.end] for f in result.findings]
    assert result.verdict.name.lower() == case["verdict"], got_findings
    assert result.syntax.name.lower() == case["syntax"], got_findings
    if "findings" in case:
        assert got_findings == case["findings"]
    if "findings_count" in case:
        assert len(got_findings) == case["findings_count"]
    for finding in case.get("findings_include", []):
        assert finding in got_findings
    if "mailbox_count" in case:
        assert len(result.mailboxes) == case["mailbox_count"]
    if "mailboxes" in case:
        assert len(result.mailboxes) == len(case["mailboxes"])
        for expected, mailbox in zip(case["mailboxes"], result.mailboxes):
            got = {field: as_json(getattr(mailbox, field)) for field in expected}
            assert got == expected
    if "address" in case:
        assert result.address == case["address"]
    if "shadows" in case:
        assert [[s.address, s.source, s.start, s.end] for s in result.shadows] == case["shadows"]


def test_every_finding_code_has_a_case() -> None:
    """The case files (field values and whole messages) exercise every code of the
    catalogue."""
    seen = set()
    message_cases = (CASES_DIR / "messages").glob("*.jsonl")
    messages = [
        json.loads(line) for path in message_cases for line in path.read_text("utf-8").splitlines()
    ]
    for case in CASES + messages:
        for code, _, _ in case.get("findings", []) + case.get("findings_include", []):
            seen.add(code)
    assert sorted(set(FINDINGS) - seen) == []


def test_case_codes_are_in_the_catalogue() -> None:
    for case in CASES:
        for code, start, end in case.get("findings", []) + case.get("findings_include", []):
            assert code in FINDINGS, case["where"]
            assert 0 <= start <= end, case["where"]

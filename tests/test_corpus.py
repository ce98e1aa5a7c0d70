"""Real-world values: the Debian 12 ``Maintainer:`` fields (``tests/corpus/``).

Debian policy requires the From syntax there, and every value names one legitimate
sender, so each must parse to exactly one mailbox with the address written between the
last ``<`` and ``>`` (or the whole value when there are no angle brackets), and none may
get the verdict INVALID (``legacy`` is fine: ``Dale E. Martin`` is obsolete phrase syntax,
and four values end with an empty list element). One test per implementation collects
every failing line, so a regression shows all its victims at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, List, Tuple

CORPUS = Path(__file__).resolve().parent / "corpus" / "debian-maintainers.txt"


def load_values() -> List[Tuple[int, str]]:
    """(line number, value) for every line of the corpus."""
    lines = CORPUS.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [(number, value) for number, value in enumerate(lines, 1)]


def expected_address(value: str) -> str:
    """The text between the last ``<`` and the ``>`` after it, else the whole value
    (trailing list commas and white space aside)."""
    start = value.rfind("<")
    if start >= 0:
        end = value.find(">", start)
        return value[start + 1 : end]
    return value.strip().rstrip(",").strip()


def problems(value: str, result: Any) -> List[str]:
    """What is wrong with the parse of one corpus value (empty when it is right)."""
    found = []
    if result.verdict.name == "INVALID":
        codes = ", ".join(f"{f.code}@{f.start}-{f.end}" for f in result.findings)
        found.append(f"verdict INVALID [{codes}]")
    if len(result.mailboxes) != 1:
        found.append(f"{len(result.mailboxes)} mailboxes")
    elif result.mailboxes[0].addr_spec != expected_address(value):
        found.append(
            f"address {result.mailboxes[0].addr_spec!r}, expected {expected_address(value)!r}"
        )
    return found


def test_corpus_has_every_value() -> None:
    values = load_values()
    assert len(values) == 2247
    assert sum(value.endswith(",") for _, value in values) == 4
    assert expected_address("Dale E. Martin <dmartin@example.org>") == "dmartin@example.org"
    assert expected_address("a <b> <c@d>,") == "c@d"
    assert expected_address("x@y.z") == "x@y.z"


def test_debian_maintainers(impl: Callable[..., Any]) -> None:
    """Every value: one mailbox, the right address, verdict not INVALID."""
    failures = []
    for number, value in load_values():
        found = problems(value, impl(value))
        if found:
            failures.append(f"line {number}: {value!r}: {'; '.join(found)}")
    assert not failures, f"{len(failures)} of {len(load_values())} corpus values:\n" + "\n".join(
        failures
    )

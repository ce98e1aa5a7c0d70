"""The findings sink of the pure-Python reference (``rust/core/src/findings.rs``).

The grammar, the deception analysis and the header-block check report every finding
here, and nothing reads findings back: the analysis works from the grammar's output
(``tree.py``), so that the cap below can never hide anything from it.

``report`` keeps the worst severity and the worst syntax, adds the code to the set of
every code reported, and keeps the findings list: past MAX_FINDINGS the rest still count
in the verdict, the syntax and the code set but are not kept, and one
``too-many-findings`` marks where that began. Which findings are kept depends on the
order of the reports, so that order is part of the contract with the Rust core.
"""

from __future__ import annotations

from typing import List, Set, Tuple

from .._catalogue import CODE_ORDER, FINDINGS
from .._model import Finding, Severity, Syntax
from .limits import MAX_FINDINGS


class Findings:
    """What has been reported about one value (or one header block)."""

    __slots__ = ("kept", "reported", "truncated", "worst_severity", "worst_syntax")

    def __init__(self) -> None:
        self.kept: List[Finding] = []  # in the order reported, at most MAX_FINDINGS + 1
        self.truncated = False
        self.reported: Set[str] = set()  # every code reported, kept or not
        self.worst_severity = Severity.INFO
        self.worst_syntax = Syntax.STRICT

    def report(self, code: str, start: int, end: int) -> None:
        """Record a finding of ``code`` at ``data[start:end]``."""
        self._count(code)
        if len(self.kept) < MAX_FINDINGS:
            self.kept.append(_finding(code, start, end))
        elif not self.truncated:
            self.truncated = True
            self._count("too-many-findings")
            self.kept.append(_finding("too-many-findings", start, end))

    def _count(self, code: str) -> None:
        info = FINDINGS[code]
        self.worst_severity = max(self.worst_severity, info.severity)
        self.worst_syntax = max(self.worst_syntax, info.syntax)
        self.reported.add(code)

    def sorted_findings(self) -> Tuple[Finding, ...]:
        """The kept findings by (start, end, catalogue order), stable."""
        return tuple(sorted(self.kept, key=lambda f: (f.start, f.end, CODE_ORDER[f.code])))

    def codes(self) -> Tuple[str, ...]:
        """Every code reported, past the cap too, in catalogue order."""
        return tuple(sorted(self.reported, key=CODE_ORDER.__getitem__))


def _finding(code: str, start: int, end: int) -> Finding:
    info = FINDINGS[code]
    return Finding(code, info.severity, start, end, info.description)

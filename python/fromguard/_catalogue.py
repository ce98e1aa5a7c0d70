"""The finding catalogue, read from ``data/findings.tsv``.

That file is a byte-for-byte copy of ``rust/core/data/findings.tsv`` (``.ci/sync_data.py``),
from which the Rust core generates its ``Code`` enum (``rust/core/build.rs``), so the two
implementations cannot disagree on a code's severity, syntax or message.
"""

from __future__ import annotations

from importlib.resources import files as _files
from typing import Dict, Mapping, NamedTuple

from ._model import Severity, Syntax


class FindingInfo(NamedTuple):
    """What the catalogue says of one finding code."""

    severity: Severity
    syntax: Syntax
    description: str


def _load() -> Dict[str, FindingInfo]:
    text = _files("fromguard").joinpath("data/findings.tsv").read_text(encoding="utf-8")
    catalogue: Dict[str, FindingInfo] = {}
    rows = [line for line in text.splitlines() if line and not line.startswith("#")]
    header, *entries = rows
    if header.split("\t") != ["code", "severity", "syntax", "description"]:
        raise RuntimeError(f"findings.tsv: unexpected header {header!r}")
    for row in entries:
        code, severity, syntax, description = row.split("\t")
        if code in catalogue:
            raise RuntimeError(f"findings.tsv: duplicate code {code!r}")
        catalogue[code] = FindingInfo(
            Severity[severity.upper()], Syntax[syntax.upper()], description
        )
    return catalogue


FINDINGS: Mapping[str, FindingInfo] = _load()
"""Every finding code with its severity, its syntax level and a one-line description."""

CODE_ORDER: Mapping[str, int] = {code: index for index, code in enumerate(FINDINGS)}
"""A code's position in the catalogue: the last key when sorting findings."""

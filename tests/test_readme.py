"""The README's finding reference ("### Every finding code", under "## What fromguard flags,
and why") against the catalogue, rust/core/data/findings.tsv: every code has exactly one
row ``| `code` | severity | why |`` with the catalogue's severity, no row names a code the
catalogue lacks, and a row's "why" starts with "message:" exactly when the catalogue's
description does. A new code without a README row fails here.

Reads the two files only: needs neither the compiled core nor the package.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CATALOGUE = ROOT / "rust" / "core" / "data" / "findings.tsv"
HEADING = "### Every finding code"
SEVERITIES = ("info", "legacy", "deceptive", "invalid")

# | `code` | severity | why |  (no unescaped "|" inside the why cell)
ROW = re.compile(r"^\| `([a-z0-9][a-z0-9-]*)` \| ([a-z]+) \| ((?:[^|\\]|\\.)+?) \|$")
HEADER_ROW = re.compile(r"^\| code \| severity \| why \|$")
SEPARATOR_ROW = re.compile(r"^\|(?:\s*:?-+:?\s*\|)+$")


def catalogue() -> Dict[str, Tuple[str, str]]:
    """code -> (severity, description), from the catalogue file."""
    codes: Dict[str, Tuple[str, str]] = {}
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("code\t"):
            continue
        code, severity, _syntax, description = line.split("\t")
        assert code not in codes, f"{code} twice in {CATALOGUE.name}"
        codes[code] = (severity, description)
    return codes


def reference_section(text: str) -> str:
    """The README from the reference's heading to the next "## " heading."""
    assert HEADING in text, f"README.md has no {HEADING!r} heading"
    return text.split(HEADING, 1)[1].split("\n## ", 1)[0]


def reference_rows(section: str) -> Tuple[List[Tuple[str, str, str]], List[str]]:
    """The rows (code, severity, why) of the reference's tables, and the table lines that
    are neither such a row, a header row nor a separator."""
    rows: List[Tuple[str, str, str]] = []
    malformed: List[str] = []
    for line in section.splitlines():
        line = line.rstrip()
        if not line.startswith("|") or HEADER_ROW.match(line) or SEPARATOR_ROW.match(line):
            continue
        match = ROW.match(line)
        if match is None:
            malformed.append(line)
        else:
            code, severity, why = match.groups()
            rows.append((code, severity, why.strip()))
    return rows, malformed


def problems(text: str, codes: Dict[str, Tuple[str, str]]) -> List[str]:
    """Every way the README's reference departs from the catalogue, one line each."""
    rows, malformed = reference_rows(reference_section(text))
    found: List[str] = [
        f"not a `| \\`code\\` | severity | why |` row: {line}" for line in malformed
    ]
    seen: Dict[str, int] = {}
    for code, severity, why in rows:
        seen[code] = seen.get(code, 0) + 1
        if code not in codes:
            found.append(f"{code}: not in {CATALOGUE.name}")
            continue
        expected, description = codes[code]
        if severity != expected:
            found.append(f"{code}: severity {severity} in README.md, {expected} in the catalogue")
        if description.startswith("message:") != why.startswith("message:"):
            found.append(f"{code}: 'message:' in one of README.md and the catalogue only")
    found += [f"{code}: {n} rows in README.md" for code, n in seen.items() if n > 1]
    found += [f"{code}: no row in README.md" for code in codes if code not in seen]
    return found


def test_every_catalogue_code_has_one_readme_row() -> None:
    codes = catalogue()
    assert all(severity in SEVERITIES for severity, _ in codes.values())
    found = problems(README.read_text(encoding="utf-8"), codes)
    assert not found, "README.md's finding reference and the catalogue differ:\n" + "\n".join(found)


def test_the_check_catches_each_kind_of_mistake() -> None:
    """The check itself: a row removed, doubled, with another severity, an unknown code, a
    cell with a bare "|", a "message:" mark lost."""
    codes = {"alpha": ("info", "a"), "beta-2": ("invalid", "message: b")}
    good = (
        "intro\n\n"
        f"{HEADING}\n\n| code | severity | why |\n|---|---|---|\n"
        "| `alpha` | info | harmless, `a \\| b` escaped |\n"
        "| `beta-2` | invalid | message: RFC 5322 §3.6 |\n\n## Next\n| `gamma` | info | x |\n"
    )
    assert problems(good, codes) == []
    alpha = "| `alpha` | info | harmless, `a \\| b` escaped |\n"
    beta = "| `beta-2` | invalid | message: RFC 5322 §3.6 |\n"
    cases = {
        "no row": good.replace(alpha, ""),
        "2 rows": good.replace(alpha, alpha + alpha),
        "severity": good.replace("| `alpha` | info |", "| `alpha` | legacy |"),
        "not in": good.replace(beta, beta + "| `gamma` | info | x |\n"),
        "not a": good.replace("`a \\| b` escaped", "a | b"),
        "'message:'": good.replace("message: RFC", "RFC"),
    }
    for expected, text in cases.items():
        found = problems(text, codes)
        assert any(expected in line for line in found), (expected, found)

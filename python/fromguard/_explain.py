"""``explain()``: a value with a caret line under each finding and each shadow address.

One implementation serves ``fromguard.FromHeader`` (the Rust core) and the reference's
``FromHeader``: it needs only ``.value`` (the bytes parsed), ``.findings`` and
``.shadows``.

The value is drawn on one line, one cell per character, and nothing in it reaches the
terminal raw: control characters show as their Control Pictures (CR LF as ``␍␊``), and
bytes that are not UTF-8 and characters that do not print (bidi controls, which would
reorder the line, among them) as U+FFFD. Each finding's carets sit under the cells its
byte span covers; so do each shadow address's, under the text it came from, and the
address is drawn the same way.
"""

from __future__ import annotations

from typing import List, Protocol, Sequence, Tuple

from ._model import Finding, Shadow

REPLACEMENT = "\N{REPLACEMENT CHARACTER}"
DEL_PICTURE = "\N{SYMBOL FOR DELETE}"
CONTROL_PICTURES = 0x2400
"""U+2400 + n is the Control Picture of the C0 control n (U+2400 ␀ ... U+241F ␟)."""


class Explainable(Protocol):
    """What ``explain`` reads of a result."""

    @property
    def value(self) -> bytes: ...

    @property
    def findings(self) -> Sequence[Finding]: ...

    @property
    def shadows(self) -> Sequence[Shadow]: ...


def explain(result: Explainable) -> str:
    """The value on one line, then one line per finding: carets under its span, its code,
    severity and message (``(no findings)`` when there are none); then one line per
    shadow address: carets under the text it came from, the address and its source."""
    cells, columns = _cells(result.value)
    lines = ["".join(cells)]
    for finding in result.findings:
        carets = _carets(columns, len(result.value), finding.start, finding.end)
        severity = finding.severity.name.lower()
        lines.append(f"{carets}  {finding.code} ({severity}): {finding.message}")
    if not result.findings:
        lines.append("(no findings)")
    for shadow in result.shadows:
        carets = _carets(columns, len(result.value), shadow.start, shadow.end)
        address = "".join(_picture(char) for char in shadow.address)
        lines.append(f"{carets}  shadow: {address} (from {shadow.source})")
    return "\n".join(lines)


def _carets(columns: List[int], size: int, span_start: int, span_end: int) -> str:
    """Blanks up to the first cell the byte span touches, then a caret under each cell
    it touches; a zero-length span gets one caret where it stands (after the last cell
    when it is at the end)."""
    start = columns[min(span_start, size)]
    last = min(span_end, size) - 1
    end = columns[last] + 1 if last >= span_start else start + 1
    return " " * start + "^" * max(1, end - start)


def _cells(value: bytes) -> Tuple[List[str], List[int]]:
    """The cells the value is drawn in, and for each byte offset (and the end) the column
    of the cell it belongs to."""
    cells: List[str] = []
    columns: List[int] = []
    # surrogateescape turns each byte that is not part of valid UTF-8 into one lone
    # surrogate, so every character below stands for a known number of bytes.
    for char in value.decode("utf-8", "surrogateescape"):
        if "\udc80" <= char <= "\udcff":
            size = 1
            cell = REPLACEMENT
        else:
            size = len(char.encode("utf-8"))
            cell = _picture(char)
        columns.extend([len(cells)] * size)
        cells.append(cell)
    columns.append(len(cells))
    return cells, columns


def _picture(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(CONTROL_PICTURES + code)
    if code == 0x7F:
        return DEL_PICTURE
    return char if char.isprintable() else REPLACEMENT

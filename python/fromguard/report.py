"""``fromguard scan --html PATH``: the scan's evidence as one self-contained HTML page.

The page (``report.html`` beside this module) holds its style and a small vanilla script,
and the data once, as JSON in a ``<script type="application/json">`` element: the summary
(the same ``Tally`` the terminal summary prints), the messages over time by their Date
field, one row per message and what was skipped. The script draws the charts (inline
SVG), the summary tables and the list of messages, filtered, searched and paged in the
browser (100 rows a page), so that 100,000 messages stay quick; nothing is fetched: a
Content-Security-Policy allows only the page's own script and style, by their hashes.

Every value is the sender's text, hostile. It is put in the page only as JSON text with
``<``, ``>`` and ``&`` escaped (so no ``</script>`` or ``<!--`` can end the element) and
every non-ASCII character as a ``\\u`` escape, and the script writes it only as text
(``textContent``), never as markup. Text that does not print (controls, bidi controls)
is shown escaped, as the table shows it (``scan.visible``); the carets under a field are
the text ``explain()`` gives, which draws such characters as pictures.

Row layout (lists, not objects, to keep 100,000 rows small; repeated strings such as
paths, codes and explanation lines are indexes into ``strings``)::

    [path, number, verdict, action, date, from, name, address, codes, reasons, flagged,
     detail]
    detail: [fields, header findings, shadow addresses] or null (no findings)
    field:  [name, value as explain() draws it, [[column, carets, label], ...]]
    header finding: [label, excerpt]
"""

from __future__ import annotations

import base64
import collections
import datetime
import functools
import hashlib
import json
import re
from importlib import resources
from typing import IO, Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from . import __version__
from ._catalogue import FINDINGS
from ._explain import explain
from ._model import Finding, Shadow, Verdict
from .scan import (
    _SKIP_KINDS,
    HEADER_BLOCK,
    Evidence,
    FieldEvidence,
    Skipped,
    Tally,
    _by_count,
    _escape,
    visible,
)

__all__ = ["CHART_BARS", "HtmlReport"]

CHART_BARS = 15
"""The most bars the sender-domain and finding-code charts draw (the tables list all codes)."""

_SHOWN_MOST = 300  # characters of a headline value or an excerpt; the carets show it all
_CARET_LINE = re.compile(r"( *)(\^*)(.*)", re.DOTALL)


class HtmlReport:
    """Collects each message's evidence as the scan goes (as compact rows: a huge scan
    keeps no ``Evidence``) and writes the page at the end (``finish``). With
    ``only_flagged`` the list holds the flagged messages alone; the summary and the
    charts still count every message. A scan on Dask collects one for each task on the
    workers and joins them in order (``merge``): what is sent is these rows, not the
    evidence."""

    def __init__(self, only_flagged: bool = False) -> None:
        self.only_flagged = only_flagged
        self.strings: List[str] = []
        self.string_index: Dict[str, int] = {}
        self.rows: List[List[Any]] = []
        self.days: Dict[str, List[int]] = {}
        self.undated = [0] * len(Verdict)

    def add(self, item: Evidence) -> None:
        date = item.date
        when = None if date is None else date.isoformat(" ", "minutes")[:16]
        if when is None:
            self.undated[item.verdict] += 1
        else:
            self.days.setdefault(when[:10], [0] * len(Verdict))[item.verdict] += 1
        if self.only_flagged and not item.flagged:
            return
        author = item.author
        shown_from = None if author is None else visible(_elided(author.text.strip(" \t")))
        name, address = item.display_name, item.address
        self.rows.append(
            [
                self._string(item.path),
                item.number,
                self._string(item.verdict.name),
                self._string(item.action_name),
                when,
                shown_from,
                None if name is None else visible(_elided(name)),
                None if address is None else visible(address),
                [self._string(code) for code in item.codes],
                [self._string(reason) for reason in item.reasons],
                int(item.flagged),
                self._detail(item),
            ]
        )

    def merge(self, other: HtmlReport) -> None:
        """Add ``other``'s messages after these, as if each had been added here."""
        # Its strings in the order they first came, so that each new one gets the index
        # it would have had here.
        index = [self._string(text) for text in other.string_index]
        for day, counts in other.days.items():
            here = self.days.setdefault(day, [0] * len(Verdict))
            here[:] = map(sum, zip(here, counts))
        self.undated[:] = map(sum, zip(self.undated, other.undated))
        self.rows += (_reindexed(row, index) for row in other.rows)

    def _string(self, text: str) -> int:
        """The index of ``text`` (shown visibly) in the page's table of strings."""
        index = self.string_index.get(text)
        if index is None:
            index = self.string_index[text] = len(self.strings)
            self.strings.append(visible(text))
        return index

    def _detail(self, item: Evidence) -> Optional[List[Any]]:
        """The fields with findings or shadow addresses, each as ``explain()`` draws
        it, the header block's findings and the shadow addresses; None without any."""
        fields = [self._explained(f) for f in item.fields if f.findings or f.shadows]
        header = []
        for finding, excerpt in zip(item.header_findings, item.header_excerpts):
            severity = finding.severity.name.lower()
            label = f"{HEADER_BLOCK} {finding.start}-{finding.end} {finding.code}"
            label += f" ({severity}): {finding.message}"
            header.append([self._string(label), _shown_excerpt(excerpt)])
        shadows = [f"{visible(s.address)} (from {s.source})" for _, s in item.located_shadows()]
        if not fields and not header:
            return None
        return [fields, header, shadows]

    def _explained(self, field: FieldEvidence) -> List[Any]:
        """``explain()``'s text for one field: the value line, and each line under it as
        its leading blanks, its carets and the rest (repeated across messages, so kept
        once in ``strings``)."""
        value, lines = _explain_lines(field.value, field.findings, field.shadows)
        marks = [[blanks, carets, self._string(label)] for blanks, carets, label in lines]
        return [self._string(field.name), value, marks]

    def finish(
        self,
        out: IO[str],
        tally: Tally,
        skipped: Sequence[Skipped],
        files: int,
        paths: Sequence[str],
        policy: bool,
    ) -> None:
        """Write the page to ``out``: ``files`` is how many files held mail, ``paths`` what was
        scanned, ``policy`` whether one decided the actions."""
        kinds = collections.Counter(item.kind for item in skipped)
        failed = len(skipped) - sum(kinds[kind] for kind, _ in _SKIP_KINDS)
        codes = sorted(tally.codes.items(), key=_by_count)
        data = {
            "version": __version__,
            "generated": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"
            ),
            "paths": [visible(path) for path in paths],
            "policy": policy,
            "onlyFlagged": self.only_flagged,
            "summary": {
                "messages": tally.messages,
                "files": files,
                "flagged": tally.flagged,
                "verdicts": [[v.name, tally.verdicts[v]] for v in Verdict],
                "actions": sorted(tally.actions.items(), key=_by_count) if policy else [],
                "codes": [[code, _severity(code), n] for code, n in codes],
                "domains": [
                    [visible(domain), n]
                    for domain, n in sorted(tally.domains.items(), key=_by_count)[:CHART_BARS]
                ],
                "skipped": [[label, kinds[kind]] for kind, label in _SKIP_KINDS]
                + [["failed to check", failed]],
            },
            "timeline": {
                "days": sorted(self.days.items()),
                "undated": self.undated,
            },
            "strings": self.strings,
            "rows": self.rows,
            "skipped": [
                [visible(item.path), item.number, item.kind, visible(item.reason)]
                for item in skipped
            ],
        }
        out.write(_page(data, "fromguard scan: " + ", ".join(map(visible, paths))))
        out.flush()


def _reindexed(row: List[Any], index: List[int]) -> List[Any]:
    """A row of another report (the layout above), its strings given by ``index``: their
    indexes here, by their indexes there."""
    path, number, verdict, action, when, shown, name, address, codes, reasons, flagged, detail = row
    if detail is not None:
        fields, header, shadows = detail
        detail = [
            [
                [
                    index[field],
                    value,
                    [[blanks, carets, index[label]] for blanks, carets, label in marks],
                ]
                for field, value, marks in fields
            ],
            [[index[label], excerpt] for label, excerpt in header],
            shadows,
        ]
    return [
        index[path],
        number,
        index[verdict],
        index[action],
        when,
        shown,
        name,
        address,
        [index[code] for code in codes],
        [index[reason] for reason in reasons],
        flagged,
        detail,
    ]


def _shown_excerpt(excerpt: bytes) -> str:
    """The text a header-block finding spans, as the table shows it (white space alone
    escaped, or it would not show), its middle elided (a line too long can be the whole
    message)."""
    text = _elided(excerpt.decode("utf-8", "backslashreplace"))
    return visible(text) if text.strip() else "".join(map(_escape, text))


def _elided(text: str) -> str:
    """``text`` with its middle elided past _SHOWN_MOST characters: a From value or a
    display name can be 60 KB, and the list shows it above the carets, which show it all."""
    if len(text) <= _SHOWN_MOST:
        return text
    return text[: _SHOWN_MOST // 2] + "\u2026" + text[-_SHOWN_MOST // 2 :]


@functools.lru_cache(maxsize=4096)  # explain() is pure Python; a sender's value recurs
def _explain_lines(
    value: bytes, findings: Tuple[Finding, ...], shadows: Tuple[Shadow, ...]
) -> Tuple[str, Tuple[Tuple[int, int, str], ...]]:
    """``explain()``'s value line, and each line under it as its leading blanks, its
    carets and the rest."""
    first, *lines = explain(_Explained(value, findings, shadows)).split("\n")
    marks = []
    for line in lines:
        match = _CARET_LINE.fullmatch(line)
        assert match is not None  # the pattern matches any line
        blanks, carets, label = match.groups()
        marks.append((len(blanks), len(carets), label))
    return first, tuple(marks)


class _Explained(NamedTuple):
    value: bytes
    findings: Tuple[Finding, ...]
    shadows: Tuple[Shadow, ...]


def _severity(code: str) -> str:
    info = FINDINGS.get(code)
    return "unknown" if info is None else info.severity.name.lower()


_TEMPLATE_PARTS = re.compile(r"<(style|script)>(.*?)</\1>", re.DOTALL)


def _page(data: Dict[str, Any], title: str) -> str:
    """The page for ``data``: the template with the data embedded as JSON and a
    Content-Security-Policy that allows only the template's own style and script."""
    template = resources.files("fromguard").joinpath("report.html").read_text(encoding="utf-8")
    hashes: Dict[str, List[str]] = {"style": [], "script": []}
    for match in _TEMPLATE_PARTS.finditer(template):
        digest = hashlib.sha256(match.group(2).encode("utf-8")).digest()
        hashes[match.group(1)].append(f"'sha256-{base64.b64encode(digest).decode('ascii')}'")
    policy = (
        "default-src 'none'; img-src data:; "
        f"style-src {' '.join(hashes['style'])}; script-src {' '.join(hashes['script'])}"
    )
    replacements = {
        "{{CSP}}": policy,
        "{{TITLE}}": _html_text(title),
        "{{DATA}}": _script_json(data),
    }
    return re.sub(r"\{\{[A-Z]+\}\}", lambda m: replacements[m.group()], template)


def _script_json(data: Any) -> str:
    """JSON that cannot end or alter the ``<script>`` element holding it: ``<``, ``>``
    and ``&`` as ``\\u`` escapes, and (``ensure_ascii``) every non-ASCII character too."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _html_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

"""``fromguard scan PATH...``: check every message in .eml files, mbox files and Maildir
folders (directories recursively) with a policy, and report.

Sources. A PATH that is a file is read as an mbox when its first line starts with
``From `` and as one message otherwise. A directory is walked recursively (symlinked
directories are not followed): a Maildir (a directory with ``cur/`` and ``new/``) gives
every file in ``new/`` and ``cur/`` (``tmp/`` is skipped); elsewhere, ``.eml`` files,
``.mbox``/``.mbx`` files and files whose first line starts with ``From `` are read, other
files are ignored (and counted). Files are read as bytes; an mbox is split on lines that
start with ``From `` (but not ``From :``) while it is read line by line, so a huge mbox is never held in
memory whole (one message at a time is). ``>From`` lines are left as they are.

Problems. A file that cannot be read, an empty file, a ``.mbox`` file that does not start
with a ``From `` line and an empty message in an mbox are reported on stderr, counted in
the summary and skipped. A message whose check fails (a bug: ``fromguard.InternalError``,
or any other exception) is reported the same way, counted as failed, and the scan goes
on with the next message. A PATH argument that does not exist or cannot be read at all
makes the exit status 2 (after the other paths are scanned), and so does a failed
message: the scan could not say whether it is clean.

Exit status: 0 when every message is ``VALID`` or ``LEGACY`` and accepted, 1 when a
message is flagged (another verdict, or another action), 2 for a usage error, an
unreadable PATH argument or a message whose check failed.
"""

from __future__ import annotations

import collections
import csv
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import IO, Any, Counter, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from ._errors import Failure
from ._model import Verdict
from .policy import Action, Policy

EXIT_CLEAN = 0
EXIT_FLAGGED = 1
EXIT_ERROR = 2

FORMATS = ("table", "jsonl", "csv")
FIELDS = ("path", "index", "from", "verdict", "action", "codes", "reasons")
MBOX_SUFFIXES = (".mbox", ".mbx")
MESSAGE_SUFFIXES = (".eml",)
TOP_DOMAINS = 10


class Row(NamedTuple):
    """One checked message. ``number`` is the message's number in its mbox (from 1; the
    ``index`` of the JSON and CSV output), None for a file that holds one message."""

    path: str
    number: Optional[int]
    sender: Optional[str]
    verdict: Verdict
    action: Action
    codes: Tuple[str, ...]
    reasons: Tuple[str, ...]

    @property
    def flagged(self) -> bool:
        return self.verdict > Verdict.LEGACY or self.action is not Action.ACCEPT

    def as_json(self) -> Dict[str, Any]:
        return {
            "path": self.path,
            "index": self.number,
            "from": self.sender,
            "verdict": self.verdict.name.lower(),
            "action": self.action.name.lower(),
            "codes": list(self.codes),
            "reasons": list(self.reasons),
        }


class Problem(NamedTuple):
    """A file or mbox message that was skipped: ``kind`` is unreadable or malformed, or
    for a message whose check failed the ``Failure`` kind (internal or error)."""

    path: str
    number: Optional[int]
    kind: str
    reason: str


def show_path(path: "os.PathLike[str] | str") -> str:
    """A path as text: bytes that are not UTF-8 shown as \\x escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _printable(text: str) -> str:
    """Text as it is, or repr'd when it holds characters that do not print (a bidi
    control would reorder the terminal line)."""
    return text if text.isprintable() else repr(text)


# -- Finding the files ----------------------------------------------------------------


class _Source(NamedTuple):
    path: Path


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def _walk(
    path: Path, problems: List[Problem], ignored: List[Path], every: bool = False
) -> Iterator[_Source]:
    """The files under a directory, in name order (``every``: all of them are messages,
    as in a Maildir's ``cur/`` and ``new/``)."""
    maildir = _is_maildir(path)
    try:
        entries = sorted(os.scandir(path), key=lambda entry: entry.name)
    except OSError as error:
        problems.append(Problem(show_path(path), None, "unreadable", _reason(error)))
        return
    for entry in entries:
        child = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            if maildir and entry.name == "tmp":
                continue
            if maildir and entry.name in ("cur", "new"):
                yield from _walk(child, problems, ignored, every=True)
                continue
            yield from _walk(child, problems, ignored, every)
        elif entry.is_symlink() and not os.path.exists(child):
            problems.append(Problem(show_path(child), None, "unreadable", "broken symlink"))
        elif every:
            yield _Source(child)
        elif child.suffix.lower() in MESSAGE_SUFFIXES + MBOX_SUFFIXES:
            yield _Source(child)
        elif _starts_with_from_line(child):
            yield _Source(child)
        else:
            ignored.append(child)


def _starts_with_from_line(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            return _is_separator(file.readline(1000))
    except OSError:
        return True  # read it to report why it cannot be read


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


# -- Reading the messages -------------------------------------------------------------


class _Message(NamedTuple):
    number: Optional[int]
    raw: bytes
    size: int  # bytes of the file this message took, From_ line included


def _messages(source: _Source, problems: List[Problem]) -> Iterator[_Message]:
    """The messages of one file; problems are recorded and the rest skipped."""
    name = show_path(source.path)
    try:
        with open(source.path, "rb") as file:
            first = file.readline()
            if not first:
                problems.append(Problem(name, None, "malformed", "empty file"))
                return
            if _is_separator(first):
                yield from _mbox(file, first, name, problems)
                return
            if source.path.suffix.lower() in MBOX_SUFFIXES:
                problems.append(
                    Problem(name, None, "malformed", "mbox file does not start with a 'From ' line")
                )
                return
            rest = file.read()
            yield _Message(None, first + rest, len(first) + len(rest))
    except OSError as error:
        problems.append(Problem(name, None, "unreadable", _reason(error)))


def _mbox(file: IO[bytes], first: bytes, name: str, problems: List[Problem]) -> Iterator[_Message]:
    """Split on lines starting ``From `` (the separator itself is not passed on)."""
    index = 1
    size = len(first)
    lines: List[bytes] = []
    for line in file:
        if _is_separator(line):
            yield from _mbox_message(index, lines, size, name, problems)
            index += 1
            size = len(line)
            lines = []
        else:
            size += len(line)
            lines.append(line)
    yield from _mbox_message(index, lines, size, name, problems)


def _is_separator(line: bytes) -> bool:
    """An mbox ``From `` line; ``From :`` (a header field, obs-from) is not one."""
    return line.startswith(b"From ") and line[5:6] not in (b"", b":", b" ", b"\t", b"\r", b"\n")


def _mbox_message(
    index: int, lines: List[bytes], size: int, name: str, problems: List[Problem]
) -> Iterator[_Message]:
    raw = b"".join(lines)
    if not raw.strip():
        problems.append(Problem(name, index, "malformed", "empty message in mbox"))
        # Still counts toward progress.
        yield _Message(index, b"", size)
        return
    yield _Message(index, raw, size)


# -- Checking -------------------------------------------------------------------------


def check(policy: Policy, path: str, index: Optional[int], raw: bytes) -> Row:
    """One message's row: the policy's decision (a report: the message is not rewritten)
    and the first From field's address, from one header check."""
    check = policy._check(raw)
    decision = policy._decide(check)
    author = check.field("from")
    sender = None if author is None else author.result.address
    return Row(
        path, index, sender, check.verdict, decision.action, decision.codes, decision.reasons
    )


# -- Output ---------------------------------------------------------------------------


class _Progress:
    """A one-line progress bar on stderr, by bytes read; only on a terminal."""

    WIDTH = 30

    def __init__(self, stream: IO[str], total: int) -> None:
        self.stream = stream
        self.total = max(total, 1)
        self.done = 0
        self.messages = 0
        self.shown = 0.0
        self.visible = False

    def advance(self, size: int) -> None:
        self.done += size
        self.messages += 1
        now = time.monotonic()
        if now - self.shown >= 0.1:
            self.shown = now
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {fraction:4.0%} {self.messages} messages")
            self.stream.flush()
            self.visible = True

    def clear(self) -> None:
        if self.visible:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.visible = False


def _spreadsheet_safe(cell: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula: the sender is the attacker's
    text (a local part may start with "=", "+", "-" or "@"), so such cells get a leading
    apostrophe, as OWASP's CSV injection guidance recommends."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


class _Writer:
    def __init__(self, out: IO[str], fmt: str) -> None:
        self.out = out
        self.fmt = fmt
        self.csv: Any = None
        if fmt == "csv":
            self.csv = csv.writer(out, lineterminator="\n")
            self.csv.writerow(FIELDS)
        elif fmt == "table":
            out.write(f"{'VERDICT':<10} {'ACTION':<10} {'FROM':<36} {'MESSAGE':<30} CODES\n")

    def row(self, row: Row) -> None:
        if self.fmt == "jsonl":
            self.out.write(json.dumps(row.as_json()) + "\n")
        elif self.fmt == "csv":
            index = "" if row.number is None else str(row.number)
            self.csv.writerow(
                (
                    _spreadsheet_safe(row.path),
                    index,
                    _spreadsheet_safe(row.sender or ""),
                    row.verdict.name.lower(),
                    row.action.name.lower(),
                    " ".join(row.codes),
                    " ".join(row.reasons),
                )
            )
        else:
            sender = "(none)" if row.sender is None else _printable(row.sender)
            if len(sender) > 36:
                sender = sender[:35] + "…"
            where = _printable(row.path) + ("" if row.number is None else f"#{row.number}")
            self.out.write(
                f"{row.verdict.name:<10} {row.action.name.lower():<10} {sender:<36} "
                f"{where:<30} {' '.join(row.codes) or '-'}\n"
            )
        self.out.flush()


class Tally:
    """What the summary counts, kept as the rows go by (a huge mbox's rows are not kept)."""

    def __init__(self) -> None:
        self.messages = 0
        self.flagged = 0
        self.verdicts: Counter[Verdict] = collections.Counter()
        self.actions: Counter[Action] = collections.Counter()
        self.codes: Counter[str] = collections.Counter()
        self.domains: Counter[str] = collections.Counter()

    def add(self, row: Row) -> None:
        self.messages += 1
        self.verdicts[row.verdict] += 1
        self.actions[row.action] += 1
        self.codes.update(row.codes)
        if row.flagged:
            self.flagged += 1
            if row.sender and "@" in row.sender:
                self.domains[row.sender.rpartition("@")[2].lower()] += 1


def summary(tally: Tally, problems: Sequence[Problem], files: int, ignored: int) -> str:
    """Counts per verdict, action and finding code (messages that have it), the skipped
    files and messages, and the sender domains of the most flagged messages."""
    kinds = collections.Counter(problem.kind for problem in problems)
    lines = [
        "",
        f"Summary: {tally.messages} messages in {files} files, {tally.flagged} flagged",
        f"skipped: {kinds['unreadable']} unreadable, {kinds['malformed']} malformed,"
        f" {kinds['internal'] + kinds['error']} failed to check"
        f"; ignored: {ignored} files that are not mail",
        "verdicts:",
    ]
    lines += [f"  {verdict.name.lower():<12} {tally.verdicts[verdict]:>6}" for verdict in Verdict]
    lines.append("actions:")
    lines += [f"  {action.name.lower():<12} {tally.actions[action]:>6}" for action in Action]
    codes = sorted(tally.codes.items(), key=_by_count)
    lines.append("finding codes (messages):" if codes else "finding codes: (none)")
    lines += [f"  {code:<40} {n:>6}" for code, n in codes]
    top = sorted(tally.domains.items(), key=_by_count)[:TOP_DOMAINS]
    lines.append("top flagged sender domains:" if top else "top flagged sender domains: (none)")
    lines += [f"  {_printable(domain):<40} {n:>6}" for domain, n in top]
    return "\n".join(lines) + "\n"


def _by_count(item: Tuple[str, int]) -> Tuple[int, str]:
    return (-item[1], item[0])


# -- The command ----------------------------------------------------------------------


def run(
    paths: Sequence[Path],
    policy: Policy,
    fmt: str = "table",
    out: Optional[IO[str]] = None,
    err: Optional[IO[str]] = None,
) -> int:
    """Scan ``paths``, write the report to ``out`` and problems to ``err``; returns the
    exit status."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    status = EXIT_CLEAN
    problems: List[Problem] = []
    ignored: List[Path] = []
    sources: List[_Source] = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError as error:
            err.write(f"fromguard scan: {show_path(path)}: {_reason(error)}\n")
            status = EXIT_ERROR
            continue
        if stat.S_ISDIR(mode):
            if not os.access(path, os.R_OK | os.X_OK):
                err.write(f"fromguard scan: {show_path(path)}: Permission denied\n")
                status = EXIT_ERROR
                continue
            sources.extend(_walk(path, problems, ignored))
        else:
            if not os.access(path, os.R_OK):
                err.write(f"fromguard scan: {show_path(path)}: Permission denied\n")
                status = EXIT_ERROR
                continue
            sources.append(_Source(path))
    for problem in problems:  # found while walking
        _report(err, problem)
    reported = len(problems)

    progress: Optional[_Progress] = None
    if err.isatty():
        total = 0
        for source in sources:
            try:
                total += source.path.stat().st_size
            except OSError:
                pass
        progress = _Progress(err, total)

    writer = _Writer(out, fmt)
    tally = Tally()
    files = 0
    for source in sources:
        files += 1
        name = show_path(source.path)
        for message in _messages(source, problems):
            if progress is not None:
                progress.advance(message.size)
            if not message.raw:
                continue
            try:
                row = check(policy, name, message.number, message.raw)
            except Exception as error:  # one message must not stop the scan
                failure = Failure.of(error)
                problems.append(Problem(name, message.number, failure.kind, failure.text))
                status = EXIT_ERROR
                continue
            tally.add(row)
            if progress is not None and out.isatty():
                progress.clear()
            writer.row(row)
        if len(problems) > reported:
            if progress is not None:
                progress.clear()
            for problem in problems[reported:]:
                _report(err, problem)
            reported = len(problems)
    if progress is not None:
        progress.clear()

    text = summary(tally, problems, files, len(ignored))
    (out if fmt == "table" else err).write(text)
    out.flush()
    if status == EXIT_CLEAN and tally.flagged:
        status = EXIT_FLAGGED
    return status


def _report(err: IO[str], problem: Problem) -> None:
    where = problem.path + ("" if problem.number is None else f"#{problem.number}")
    err.write(f"fromguard scan: {where}: skipped ({problem.kind}): {problem.reason}\n")

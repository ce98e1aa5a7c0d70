"""``fromguard scan PATH...``: find the mail in files and folders, check every message's
header block with a policy, and report the evidence.

Finding mail. Mail is recognised by its content, never by a file name: every regular file
under a directory (walked recursively, in name order; symlinked directories are not
followed) and every file named on the command line is sniffed from a bounded prefix
(``SNIFF_BYTES``), so a huge file that is not mail is never read whole:

- a first line ``From <sender> ...`` makes the file an mbox when it carries a time of
  day (``From a@b Mon Nov  2 09:00:00 2026``) or a header field follows it (a text that
  starts ``From the man page:`` is not one);
- a header block makes it one message (MH folders, the SpamAssassin corpus, exports):
  the first line, unfolded, is a header field (a name of printable ASCII, optional white
  space, a colon), and one of the lines up to the first empty line is a ``From`` field,
  or every one is a field (or its continuation) and one of them a field every message
  has (``Received``, ``Subject``, ``To``, ``Message-ID``, ...: ``key: value`` lines
  alone are as often a configuration file, and ``Date:`` starts git logs too);
- a file in a Maildir's ``cur/`` or ``new/`` is a message whatever its content (its
  ``tmp/`` holds mail being delivered, and is left alone, as are MH's ``.mh_sequences``
  and ``.mh_profile``);
- a gzip, bzip2 or xz file is read through its decompressor, and sniffed and read as
  what it holds.

Everything else is skipped and listed with the reason (empty, binary, an archive, no
header block), and so is a file that cannot be read and an empty message in an mbox. An
mbox is read line by line (one message at a time in memory) and split on a ``From ``
line at its start or after an empty line that is followed by a header field or carries a
date (``From a@b Mon Nov  2 09:00:00 2026``): a body line ``From here on...`` that the
writer did not quote as ``>From`` does not split a message.

Evidence. Each message gives one ``Evidence`` record, built by ``evidence`` alone; the
table, JSON Lines and CSV writers and the HTML report (``report.py``) only render it. It
holds the verdict, the policy's action and reasons, and every checked field (From,
Sender, Reply-To, Resent-From) as written, with its mailboxes, findings and shadow
addresses (spans are byte offsets into the field's value), the header block's own
findings (spans into the message) and its Date field as written.
Without a policy the action is ``report``. Text bound for a terminal or a CSV file goes
through ``visible``: a control character, a bidi control or any other character that
does not print is shown as an escape (``\\x00``, ``\\u202e``), never written raw.

Exit status: 0 when every message is ``VALID`` or ``LEGACY`` and accepted, 1 when a
message is flagged (another verdict, or another action), 2 for a usage error, an
unreadable PATH argument, a message whose check failed, or, with ``fail_on_skipped``,
anything skipped.
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import csv
import dataclasses
import datetime
import email.utils
import errno
import functools
import gzip
import io
import json
import lzma
import os
import re
import shutil
import stat
import sys
import time
import typing
import unicodedata
import zlib
from pathlib import Path
from typing import (
    IO,
    Any,
    Callable,
    Counter,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
)

from ._errors import Failure
from ._model import Finding, HeaderField, Mailbox, Severity, Shadow, Verdict
from .policy import Action, Policy, _Checked

if typing.TYPE_CHECKING:  # report.py imports this module: at run time it is imported late
    from .report import HtmlReport

__all__ = [
    "CSV_COLUMNS",
    "EXIT_CLEAN",
    "EXIT_ERROR",
    "EXIT_FLAGGED",
    "FORMATS",
    "HEADER_BLOCK",
    "MIN_WIDTH",
    "REPORT_ONLY",
    "SNIFF_BYTES",
    "Evidence",
    "FieldEvidence",
    "Skipped",
    "Tally",
    "check",
    "evidence",
    "run",
    "show_path",
    "summary",
    "visible",
]

EXIT_CLEAN = 0
EXIT_FLAGGED = 1
EXIT_ERROR = 2

FORMATS = ("table", "jsonl", "csv")
SNIFF_BYTES = 64 * 1024
MIN_WIDTH = 40  # the narrowest table: its heading and the verdict and action columns
_TOP_DOMAINS = 10
HEADER_BLOCK = "header"  # how the table and CSV name the field of a header-block finding
REPORT_ONLY = "report"  # the action shown when no policy decides one


# -- Records --------------------------------------------------------------------------


class Skipped(NamedTuple):
    """A file or mbox message that was not checked, and why. ``kind``: ``not-mail``,
    ``unreadable``, ``malformed`` (an empty message in an mbox), or for a message whose
    check failed the ``Failure`` kind (``internal`` or ``error``)."""

    path: str
    number: Optional[int]
    kind: str
    reason: str

    def as_json(self) -> Dict[str, Any]:
        return {
            "record": "skipped",
            "path": self.path,
            "index": self.number,
            "kind": self.kind,
            "reason": self.reason,
        }


@dataclasses.dataclass(frozen=True)
class FieldEvidence:
    """One checked field: its name as written (white space before the colon dropped),
    its value as written (folds included: the spans of ``findings`` and ``shadows`` are
    byte offsets into it), and its mailboxes."""

    name: str
    value: bytes
    mailboxes: Tuple[Mailbox, ...]
    findings: Tuple[Finding, ...]
    shadows: Tuple[Shadow, ...]

    @classmethod
    def of(cls, field: HeaderField) -> "FieldEvidence":
        result = field.result
        return cls(
            field.name.rstrip(" \t"),
            result.value,
            result.mailboxes,
            result.findings,
            result.shadows,
        )

    @property
    def text(self) -> str:
        """The value as text: bytes that are not UTF-8 as ``\\x`` escapes."""
        return self.value.decode("utf-8", "backslashreplace")


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What the scan found in one message, for every report format. ``number`` is the
    message's number in its mbox (from 1), None for a file that holds one message;
    ``action`` is None without a policy (the scan only reports); ``codes`` are every
    code reported, past the findings limit too; ``header_findings`` are the header
    block's own (spans into the raw message, whose bytes ``header_excerpts`` holds for
    each of them); ``date_value`` is the first Date field's value as written (None: no
    Date field), and ``date`` its time."""

    path: str
    number: Optional[int]
    verdict: Verdict
    action: Optional[Action]
    reasons: Tuple[str, ...]
    codes: Tuple[str, ...]
    fields: Tuple[FieldEvidence, ...]
    header_findings: Tuple[Finding, ...]
    header_excerpts: Tuple[bytes, ...]
    date_value: Optional[bytes] = None

    @property
    def author(self) -> Optional[FieldEvidence]:
        """The first From field."""
        return next((f for f in self.fields if f.name.lower() == "from"), None)

    @property
    def address(self) -> Optional[str]:
        """The From field's single author's addr-spec (None for none or several)."""
        author = self.author
        return author.mailboxes[0].addr_spec if author and len(author.mailboxes) == 1 else None

    @property
    def display_name(self) -> Optional[str]:
        """The display name of the From field's first mailbox, decoded."""
        author = self.author
        return author.mailboxes[0].display_name if author and author.mailboxes else None

    @property
    def date(self) -> Optional[datetime.datetime]:
        """The Date field's time in UTC, or None: the date is the sender's claim, and a
        missing or unparsable one is common (one without a zone, ``-0000``, is read as
        UTC). Parsed when asked for: only some reports show it."""
        if self.date_value is None:
            return None
        try:
            date = email.utils.parsedate_to_datetime(self.date_value.decode("ascii", "replace"))
            if date.tzinfo is None:
                date = date.replace(tzinfo=datetime.timezone.utc)
            return date.astimezone(datetime.timezone.utc)
        except (TypeError, ValueError, OverflowError, IndexError):
            return None

    @property
    def flagged(self) -> bool:
        acted = self.action is not None and self.action is not Action.ACCEPT
        return self.verdict > Verdict.LEGACY or acted

    @property
    def action_name(self) -> str:
        return REPORT_ONLY if self.action is None else self.action.name.lower()

    def located_findings(self) -> Iterator[Tuple[Optional[FieldEvidence], Finding]]:
        """Every finding with its field (None: the header block), fields in order."""
        for finding in self.header_findings:
            yield None, finding
        for field in self.fields:
            for finding in field.findings:
                yield field, finding

    def located_shadows(self) -> Iterator[Tuple[FieldEvidence, Shadow]]:
        for field in self.fields:
            for shadow in field.shadows:
                yield field, shadow

    def as_json(self) -> Dict[str, Any]:
        author = self.author
        return {
            "record": "message",
            "path": self.path,
            "index": self.number,
            "verdict": self.verdict.name.lower(),
            "action": self.action_name,
            "reasons": list(self.reasons),
            "codes": list(self.codes),
            "date": None if self.date is None else self.date.isoformat(),
            "from_value": None if author is None else author.text,
            "display_name": self.display_name,
            "address": self.address,
            "fields": [
                {
                    "field": field.name,
                    "value": field.text,
                    "mailboxes": [
                        {"display_name": m.display_name, "addr_spec": m.addr_spec}
                        for m in field.mailboxes
                    ],
                }
                for field in self.fields
            ],
            "findings": [
                {
                    "field": None if field is None else field.name,
                    "code": finding.code,
                    "severity": finding.severity.name.lower(),
                    "start": finding.start,
                    "end": finding.end,
                    "message": finding.message,
                }
                for field, finding in self.located_findings()
            ],
            "shadows": [
                {"field": field.name, **shadow._asdict()}
                for field, shadow in self.located_shadows()
            ],
        }


def evidence(
    path: str,
    number: Optional[int],
    raw: bytes,
    checked: _Checked,
    policy: Optional[Policy],
) -> Evidence:
    """The one place a message's evidence is built: from its header check and, given a
    policy, that policy's decision on it (a report: the message is not rewritten)."""
    check = checked[0]
    decision = (policy or _no_policy())._decide(checked)
    return Evidence(
        path,
        number,
        check.verdict,
        None if policy is None else decision.action,
        decision.reasons,
        decision.codes,
        tuple(FieldEvidence.of(field) for field in check.fields),
        check.findings,
        tuple(raw[f.start : f.end] for f in check.findings),
        _date_value(raw),
    )


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_DATE_FIELD = re.compile(rb"(?im)^date[ \t]*:(.*(?:\r?\n[ \t].*)*)")


def _date_value(raw: bytes) -> Optional[bytes]:
    """The value of the header block's first Date field, folds included."""
    end = _HEADER_END.search(raw)
    field = _DATE_FIELD.search(raw, 0, len(raw) if end is None else end.start())
    return None if field is None else field.group(1)


def check(policy: Optional[Policy], path: str, number: Optional[int], raw: bytes) -> Evidence:
    """Check one message (one core call, the policy's rules matched on it)."""
    return evidence(path, number, raw, (policy or _no_policy())._check(raw), policy)


@functools.lru_cache(maxsize=None)
def _no_policy() -> Policy:
    """What checks a message and collects its codes when no policy decides."""
    return Policy()


def show_path(path: "os.PathLike[str] | str") -> str:
    """A path as text: bytes that are not UTF-8 shown as \\x escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: str) -> str:
    """Text with every character that does not print (controls, bidi controls, format
    characters, spaces other than the ASCII space) shown as a Python-style escape, so
    that nothing written to a terminal or a spreadsheet can move, hide or reorder text."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    """One character as a Python-style escape (``\\n``, ``\\x00``, ``\\u202e``)."""
    code = ord(char)
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _shown(data: bytes) -> str:
    """Bytes as visible text (not UTF-8: \\x escapes)."""
    return visible(data.decode("utf-8", "backslashreplace"))


# -- Finding the mail -----------------------------------------------------------------


_Location = Union[Path, str]  # a local path, or an fsspec URL (``dask_scan``)
_Stream = Union[IO[bytes], io.BufferedIOBase]  # a file, or a decompressor reading one


class _Entry(NamedTuple):
    """A file or directory as its file system reports it. ``kind``: ``dir``, ``file``,
    ``other`` (not a regular file) or ``error`` (``error`` says why it cannot be read)."""

    location: _Location
    name: str
    kind: str
    symlink: bool
    size: int
    error: str = ""


class _Files(Protocol):
    """Where the mail is read: the local file system (``_LocalFiles``) or, for a scan
    on Dask, an fsspec one. Instances travel to the workers: they must pickle."""

    def entry(self, location: _Location) -> _Entry:
        """A PATH argument; raises OSError when it cannot be read."""

    def entries(self, location: _Location) -> List[_Entry]:
        """A directory's entries in name order; raises OSError."""

    def open(self, location: _Location) -> IO[bytes]:
        """The file's bytes as stored (seekable)."""


class _LocalFiles:
    """The local file system (and what is mounted in it)."""

    def entry(self, location: _Location) -> _Entry:
        status = os.stat(location)
        is_dir = stat.S_ISDIR(status.st_mode)
        if not os.access(location, os.R_OK | (os.X_OK if is_dir else 0)):
            raise PermissionError(errno.EACCES, "Permission denied")
        kind = "dir" if is_dir else "file"
        return _Entry(location, os.path.basename(location), kind, False, status.st_size)

    def entries(self, location: _Location) -> List[_Entry]:
        found = []
        for entry in sorted(os.scandir(location), key=lambda entry: entry.name):
            child = entry.path  # a str: a Path costs more to make and to pickle
            try:
                status = os.stat(child)
            except OSError as error:
                reason = "broken symlink" if entry.is_symlink() else _reason(error)
                found.append(_Entry(child, entry.name, "error", False, 0, reason))
                continue
            if stat.S_ISDIR(status.st_mode):
                kind = "dir"
            else:
                kind = "file" if stat.S_ISREG(status.st_mode) else "other"
            found.append(_Entry(child, entry.name, kind, entry.is_symlink(), status.st_size))
        return found

    def open(self, location: _Location) -> IO[bytes]:
        return open(location, "rb")


_LOCAL = _LocalFiles()


class _Found(NamedTuple):
    """A file to sniff (``in_maildir``: in a Maildir's ``cur/`` or ``new/``)."""

    files: _Files
    entry: _Entry
    in_maildir: bool


class _Source(NamedTuple):
    """A file that holds mail: ``mbox`` or one message, stored as it is or compressed
    (``compression``: ``gzip``, ``bzip2`` or ``xz``); ``size``: the bytes stored."""

    files: _Files
    path: _Location
    mbox: bool
    compression: Optional[str]
    size: int


_Sniffed = Union[_Source, Skipped]
_Listed = Union[_Found, Skipped]

_LAYOUT_FILES = frozenset({".mh_sequences", ".mh_profile"})  # MH's own, never mail

_COMPRESSIONS = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))
_DECOMPRESSORS: Dict[str, Callable[[IO[bytes]], _Stream]] = {
    "gzip": lambda file: gzip.GzipFile(fileobj=file),
    "bzip2": bz2.BZ2File,
    "xz": lzma.LZMAFile,
}


# What reading a file can raise: zlib.error for some damaged gzip data, not an OSError.
_READ_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)


@contextlib.contextmanager
def _reading(files: _Files, location: _Location, compression: Optional[str]) -> Iterator[_Stream]:
    """A file's bytes, decompressed (the stored file is closed with them)."""
    with files.open(location) as stored:
        if compression is None:
            yield stored
        else:
            with _DECOMPRESSORS[compression](stored) as file:
                yield file


_NOT_MAIL_MAGIC = (
    (b"PK\x03\x04", "a zip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd file"),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"SQLite format 3\x00", "an SQLite database"),
)

_FIELD = re.compile(rb"[!-9;-~]+[ \t]*:")
_FROM_FIELD = re.compile(rb"(?i)from[ \t]*:")
_MESSAGE_FIELD = re.compile(
    rb"(?i)(?:sender|reply-to|resent-from|to|cc|subject|message-id|received"
    rb"|return-path|delivered-to|mime-version)[ \t]*:"
)
_DATED = re.compile(rb"\d{1,2}:\d\d")


def _sniff(found: _Found) -> _Sniffed:
    """What a file holds, from at most SNIFF_BYTES of it (decompressed, if it is)."""
    files, entry, in_maildir = found
    path = entry.location
    name = show_path(path)
    try:
        with files.open(path) as file:
            head = file.read(SNIFF_BYTES)
    except OSError as error:
        return Skipped(name, None, "unreadable", _reason(error))
    compression = next((c for magic, c in _COMPRESSIONS if head.startswith(magic)), None)
    if compression is not None:
        try:
            with _reading(files, path, compression) as file:
                head = file.read(SNIFF_BYTES)
        except _READ_ERRORS as error:
            reason = f"{compression}-compressed: {_reason(error)}"
            return Skipped(name, None, "unreadable", reason)
    source = functools.partial(_Source, files, path, compression=compression, size=entry.size)
    inside = "" if compression is None else f" ({compression}-compressed)"
    if not head:
        return Skipped(name, None, "not-mail", "empty file" + inside)
    first, _, rest = head.partition(b"\n")
    if _is_separator(first + b"\n") and (_DATED.search(first) or _FIELD.match(rest)):
        return source(mbox=True)
    if in_maildir:
        return source(mbox=False)
    why = _why_not_a_header_block(head, complete=len(head) < SNIFF_BYTES)
    if why is None:
        return source(mbox=False)
    if compression is None:
        kind = next((kind for magic, kind in _NOT_MAIL_MAGIC if head.startswith(magic)), None)
        if kind is None and head[257:262] == b"ustar":
            kind = "a tar archive"
        if kind is None and b"\x00" in head:
            kind = "a binary file (NUL bytes)"
        if kind is not None:
            return Skipped(name, None, "not-mail", kind)
    return Skipped(name, None, "not-mail", why + inside)


def _why_not_a_header_block(head: bytes, complete: bool) -> Optional[str]:
    """None when ``head`` starts with a header block (see the module's docstring), else
    why not. A line cut by the end of an incomplete prefix is not judged."""
    lines = head.split(b"\n")
    if not complete and len(lines) > 1:
        lines.pop()
    logical: List[bytes] = []  # unfolded lines up to the empty line
    for line in lines:
        line = line.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t") and logical:
            logical[-1] += line
        else:
            logical.append(line)
    if not logical or not _FIELD.match(logical[0]):
        return "no header block or mbox 'From ' line at the start"
    if any(_FROM_FIELD.match(line) for line in logical):
        return None
    for number, line in enumerate(logical[1:], start=2):
        if not _FIELD.match(line):
            return f"header line {number} is not a field, and no From field"
    if not any(_MESSAGE_FIELD.match(line) for line in logical):
        # "key: value" lines alone are a config file as often as a message, and "Date:"
        # starts git and HTTP logs too.
        return "fields, but none a message has (Received, Subject, To, Message-ID, ...)"
    return None


def _is_separator(line: bytes) -> bool:
    """An mbox ``From `` line; ``From :`` (a header field, obs-from) is not one."""
    return line.startswith(b"From ") and line[5:6] not in (b"", b":", b" ", b"\t", b"\r", b"\n")


def _walk(files: _Files, path: _Location, in_maildir: bool = False) -> Iterator[_Listed]:
    """Every file under a directory, in name order (``in_maildir``: a Maildir's ``cur/``
    or ``new/``), to be sniffed."""
    try:
        entries = files.entries(path)
    except OSError as error:
        yield Skipped(show_path(path), None, "unreadable", _reason(error))
        return
    maildir = {"cur", "new"} <= {entry.name for entry in entries if entry.kind == "dir"}
    for entry in entries:
        if entry.kind == "error":
            yield Skipped(show_path(entry.location), None, "unreadable", entry.error)
        elif entry.kind == "dir":
            if entry.symlink or (maildir and entry.name == "tmp"):
                continue
            yield from _walk(files, entry.location, maildir and entry.name in ("cur", "new"))
        elif entry.name in _LAYOUT_FILES:
            continue
        elif entry.kind == "file":
            yield _Found(files, entry, in_maildir)
        else:
            yield Skipped(show_path(entry.location), None, "not-mail", "not a regular file")


class _Listing:
    """The files under ``paths`` as the walk finds them, and what it skipped, in order
    (a Dask scan sniffs the first while the walk goes on). PATH arguments that cannot be
    read are reported on ``err``; ``status`` is then EXIT_ERROR, once the walk is done."""

    def __init__(
        self,
        paths: Sequence[_Location],
        err: IO[str],
        files_for: Callable[[_Location], _Files],
    ) -> None:
        self.paths, self.err, self.files_for = paths, err, files_for
        self.status = EXIT_CLEAN

    def __iter__(self) -> Iterator[_Listed]:
        for path in self.paths:
            files = self.files_for(path)
            try:
                top = files.entry(path)
            except OSError as error:
                self.err.write(f"fromguard scan: {visible(show_path(path))}: {_reason(error)}\n")
                self.status = EXIT_ERROR
                continue
            if top.kind == "dir":
                yield from _walk(files, path)
            else:
                yield _Found(files, top, False)


def _listing(
    paths: Sequence[_Location], err: IO[str], files_for: Callable[[_Location], _Files]
) -> Tuple[List[_Listed], int]:
    """Every file of ``_Listing``, and its status."""
    listing = _Listing(paths, err, files_for)
    return list(listing), listing.status


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


# -- Reading the messages -------------------------------------------------------------


class _Message(NamedTuple):
    number: Optional[int]
    raw: bytes
    size: int  # bytes this message took, its From_ line included (decompressed)


def _messages(
    source: _Source, skipped: List[Skipped], span: Optional[Tuple[int, int]] = None
) -> Iterator[_Message]:
    """The messages of one file, or those of an uncompressed mbox that start in the byte
    range ``span`` (see ``_mbox_range``; numbered from 1 in the range); what cannot be
    read is recorded in ``skipped``."""
    name = show_path(source.path)
    try:
        with _reading(source.files, source.path, source.compression) as file:
            if not source.mbox:
                raw = file.read()
                yield _Message(None, raw, len(raw))
                return
            lines = iter(file) if span is None else _mbox_range(file, *span)
            first = next(lines, b"")
            if not first and span is not None:
                return  # no message starts in the range
            for number, (message, size) in enumerate(_split_mbox(lines, len(first)), start=1):
                raw = b"".join(message)
                if not raw.strip():
                    skipped.append(Skipped(name, number, "malformed", "empty message in mbox"))
                    raw = b""  # still counts toward progress
                yield _Message(number, raw, size)
    except _READ_ERRORS as error:
        skipped.append(Skipped(name, None, "unreadable", _reason(error)))


_BLANK = (b"\n", b"\r\n")


def _mbox_range(file: _Stream, start: int, end: int) -> Iterator[bytes]:
    """The lines of the messages of an mbox that start in the byte range [start, end):
    from the first From_ line at or after ``start`` (the file's first line for 0) that
    splits, to the first one at or after ``end`` that splits. Such a line is one after an
    empty line that carries a time of day or is followed by a header field: one that
    ``_split_mbox`` always splits at, whatever came before it. Consecutive ranges thus
    give every message once, as the whole file does."""
    position = 0
    blank = False  # whether the line before the next one read is empty
    if start > 0:
        # Up to the first line at or after ``start``, from 3 bytes before ``start``:
        # enough to tell whether the line before that one is empty.
        back = min(start, 3)
        file.seek(start - back)
        before = file.read(back)
        if before[-1:] != b"\n":
            before += file.readline()
        position = start - back + len(before)
        whole = start - back == 0
        blank = before.endswith((b"\n\n", b"\n\r\n")) or (whole and before in _BLANK)
    inside = start == 0
    held: Optional[bytes] = None  # a From_ line after an empty line, not yet judged
    held_at = 0
    for line in file:
        if held is not None:
            splits = _DATED.search(held) or _FIELD.match(line)
            if splits and (inside or held_at >= end):
                return  # the next range's first line
            inside = inside or bool(splits)
            if inside:
                yield held
            held = None
        if blank and (not inside or position >= end) and _is_separator(line):
            held, held_at = line, position
        elif inside:
            yield line
        blank = line in _BLANK
        position += len(line)
    if held is not None:  # the file's last line: it splits when it carries a time of day
        if inside and not _DATED.search(held):
            yield held
        elif not inside and held_at < end and _DATED.search(held):
            yield held


def _split_mbox(file: Iterable[bytes], first_size: int) -> Iterator[Tuple[List[bytes], int]]:
    """The lines of each message of an mbox whose first From_ line was read (``file``:
    the lines after it), and the bytes it took. A From_ line separates only at the start
    or after an empty line, and only when the next line is a header field or the line
    carries a time of day: it is held until the next line is seen."""
    lines: List[bytes] = []
    size = first_size
    held: Optional[bytes] = None
    for line in file:
        if held is not None:
            if _FIELD.match(line) or _DATED.search(held):
                yield lines, size
                lines, size = [], len(held)
            else:
                lines.append(held)
                size += len(held)
            held = None
        if _is_separator(line) and (not lines or lines[-1] in (b"\n", b"\r\n")):
            held = line
            continue
        lines.append(line)
        size += len(line)
    if held is not None:
        if _DATED.search(held):
            yield lines, size
            lines, size = [], len(held)
        else:
            lines.append(held)
            size += len(held)
    yield lines, size


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


def _columns(text: str) -> int:
    """Terminal columns ``text`` (visible text) takes: wide East Asian characters two,
    combining marks none."""
    if text.isascii():  # the usual case, and visible text is printable
        return len(text)
    return len(text) + sum(_char_columns(c) - 1 for c in _NON_ASCII.findall(text))


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


@functools.lru_cache(maxsize=4096)
def _char_columns(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _head(text: str, width: int) -> str:
    """The longest start of ``text`` that fits ``width`` columns."""
    if text.isascii():
        return text[: max(width, 0)]
    used = 0
    for index, char in enumerate(text):
        used += _char_columns(char)
        if used > width:
            return text[:index]
    return text


def _tail(text: str, width: int) -> str:
    return _head(text[::-1], width)[::-1]


def _elide(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns: its middle replaced by "…" when too long."""
    if _columns(text) <= width:
        return text
    if width < 1:
        return ""
    room = width - 1
    return _head(text, (room + 1) // 2) + "…" + _tail(text, room // 2)


def _fit(before: str, kept: str, after: str, width: int) -> str:
    """``before + kept + after`` in ``width`` columns, eliding the middle of ``before``
    and of ``after``; when ``kept`` alone does not fit, the middle of the whole."""
    if width <= 0 or _columns(before + kept + after) <= width:
        return before + kept + after
    room = width - _columns(kept)
    if room < min(1, len(before)) + min(1, len(after)):  # ``kept`` cannot be whole
        return _elide(before + kept + after, width)
    before_room = min(_columns(before), room // 2 if after else room)
    after_room = room - before_room
    if _columns(after) < after_room:
        before_room += after_room - _columns(after)
        after_room = _columns(after)
    return _elide(before, before_room) + kept + _elide(after, after_room)


def _wrap(text: str, width: int) -> List[str]:
    """``text`` in lines of ``width`` columns, broken at spaces (dropped), and inside a
    word only when it is longer than a line."""
    lines: List[str] = []
    while True:
        piece = _head(text, width) or text[:1]  # a wide character wider than the line
        rest = text[len(piece) :]
        if not rest:
            return [*lines, piece]
        if rest.startswith(" "):
            lines.append(piece)
            text = rest[1:]
            continue
        space = piece.rfind(" ")
        if space > 0:
            lines.append(piece[:space])
            text = text[space + 1 :]
        else:
            lines.append(piece)
            text = rest


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _columns(text))


def _spreadsheet_safe(cell: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula: the sender is the attacker's
    text (a local part may start with "=", "+", "-" or "@"), so such cells get a leading
    apostrophe, as OWASP's CSV injection guidance recommends."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def _where(item: Union[Evidence, Skipped]) -> str:
    return item.path + ("" if item.number is None else f"#{item.number}")


def _field_label(field: Optional[FieldEvidence]) -> str:
    return HEADER_BLOCK if field is None else field.name


def _finding_note(field: Optional[FieldEvidence], finding: Finding) -> str:
    """A finding in a line: field, span, code and severity."""
    severity = finding.severity.name.lower()
    return f"{_field_label(field)} {finding.start}-{finding.end} {finding.code} ({severity})"


def _shadow_note(field: FieldEvidence, shadow: Shadow) -> Tuple[str, str, str]:
    """A shadow address in a line: field, span, address and source, the address apart."""
    where = f"{field.name} {shadow.start}-{shadow.end} shadow "
    return where, visible(shadow.address), f" (from {shadow.source})"


CSV_COLUMNS = (
    "path",
    "index",
    "verdict",
    "action",
    "reasons",
    "from_value",
    "display_name",
    "address",
    "shadows",
    "findings",
    "codes",
)


class _TableWriter:
    """One line per message (verdict, action, message, the From value as written), and
    under a flagged one its decoded name and address, each finding with the text it
    spans, each shadow address and the policy's reasons. Lines fit ``width`` columns
    (0: no limit): a long From value wraps under its column, and one that would take
    more than VALUE_LINES lines, like a long excerpt, loses its middle, never the span
    of its worst finding."""

    VERDICT = 9
    ACTION = 10
    INDENT = "    "
    LEAST = 20  # fewer columns beside a lead than this, and the text goes below it
    VALUE_LINES = 3

    def __init__(self, out: IO[str], heading: bool, *, width: int, where: int) -> None:
        self.out = out
        self.width = width
        self.where = where
        if heading:
            head = f"{'VERDICT':<{self.VERDICT}} {'ACTION':<{self.ACTION}} "
            out.write(head + _pad("MESSAGE", self.where) + " FROM\n")

    @staticmethod
    def where_for(width: int, sources: Sequence[_Source]) -> int:
        """The MESSAGE column's width: the longest path, cut to a share of ``width``."""
        longest = max(
            (
                _columns(visible(show_path(s.path))) + (len("#0000") if s.mbox else 0)
                for s in sources
            ),
            default=len("MESSAGE"),
        )
        return min(longest, max(12, width * 3 // 10)) if width else longest

    def row(self, item: Evidence) -> None:
        number = "" if item.number is None else f"#{item.number}"
        where = _elide(visible(item.path), self.where - len(number)) + number
        lead = f"{item.verdict.name:<{self.VERDICT}} {item.action_name:<{self.ACTION}} "
        lead += _pad(where, self.where) + " "
        lines = self._wrapped(lead, self._value_parts(item.author), self.VALUE_LINES)
        if item.flagged:
            for note, parts in self._details(item):
                lines += self._wrapped(self.INDENT + note, parts, 1)
        self.out.write("".join(line + "\n" for line in lines))

    def _wrapped(self, lead: str, parts: Tuple[str, str, str], most: int) -> List[str]:
        """``lead`` then the text ``parts`` (before, kept, after) wrapped on at most
        ``most`` lines beside it, the middle elided only when more would be needed; on
        the next lines instead when fewer than LEAST columns are left beside it."""
        if not self.width:
            return [lead + "".join(parts)]
        if not any(parts):
            return [_elide(lead, self.width)]
        room = self.width - _columns(lead)
        indent = " " * _columns(lead)
        lines: List[str] = []
        if room < self.LEAST:
            lines.append(_elide(lead.rstrip(), self.width))
            indent = self.INDENT * (2 if lead.startswith(self.INDENT) else 1)
            room = max(self.width - len(indent), 1)
            lead = indent
        budget = room * most
        while True:  # breaking at spaces takes room: elide more until ``most`` lines do
            pieces = _wrap(_fit(*parts, budget), room)
            if len(pieces) <= most or budget <= room:
                break
            budget -= max(room // 2, 1)
        lines.append(lead + pieces[0])
        lines += [indent + piece for piece in pieces[1:]]
        return lines

    @staticmethod
    def _value_parts(field: Optional[FieldEvidence]) -> Tuple[str, str, str]:
        """A field's value as written (leading white space dropped) around the span of
        its worst finding (info ones aside) or, failing one, its first shadow address."""
        if field is None:
            return "(no From field)", "", ""
        value = field.value
        skip = len(value) - len(value.lstrip(b" \t"))
        spans = [
            (int(f.severity), -f.start, f.start, f.end)
            for f in field.findings
            if f.end > f.start and f.severity > Severity.INFO
        ]
        spans += [(-1, -s.start, s.start, s.end) for s in field.shadows]
        _, _, start, end = max(spans, default=(0, 0, skip, skip))
        start, end = max(start, skip), max(end, skip)
        return _shown(value[skip:start]), _shown(value[start:end]), _shown(value[end:])

    @staticmethod
    def _details(item: Evidence) -> Iterator[Tuple[str, Tuple[str, str, str]]]:
        """The lines under a flagged message: a note, and the evidence it points at."""
        author = item.author
        for mailbox in () if author is None else author.mailboxes:
            name = mailbox.display_name
            note = f"{author.name}: address {visible(mailbox.addr_spec)}"  # type: ignore[union-attr]
            if name is None:
                yield note, ("", "", "")
            else:
                yield note + ", name ", ("", "", f'"{visible(name)}"')
        excerpts = iter(item.header_excerpts)
        for field, finding in item.located_findings():
            text = next(excerpts) if field is None else field.value[finding.start : finding.end]
            note = _finding_note(field, finding)
            if not text:
                yield note, ("", "", "")
            else:  # white space alone is shown escaped, or it would not show at all
                shown = _shown(text) if text.strip() else "".join(_escape(c) for c in text.decode())
                yield note + ": ", ("", "", shown)
        for field, shadow in item.located_shadows():
            where, address, source = _shadow_note(field, shadow)
            yield where, ("", address, source)
        if item.reasons:
            yield f"policy: {item.action_name} for ", ("", "", ", ".join(item.reasons))

    def skipped(self, item: Skipped) -> None:
        """Skipped files are listed on stderr, not in the table."""


class _JsonWriter:
    def __init__(self, out: IO[str], heading: bool) -> None:
        self.out = out

    def row(self, item: Evidence) -> None:
        self.out.write(json.dumps(item.as_json()) + "\n")

    def skipped(self, item: Skipped) -> None:
        self.out.write(json.dumps(item.as_json()) + "\n")


class _CsvWriter:
    def __init__(self, out: IO[str], heading: bool) -> None:
        self.csv = csv.writer(out, lineterminator="\n")
        if heading:
            self.csv.writerow(CSV_COLUMNS)

    def row(self, item: Evidence) -> None:
        author = item.author
        findings = [_finding_note(field, finding) for field, finding in item.located_findings()]
        shadows = ["".join(_shadow_note(field, shadow)) for field, shadow in item.located_shadows()]
        cells = (
            item.path,
            "" if item.number is None else str(item.number),
            item.verdict.name.lower(),
            item.action_name,
            " ".join(item.reasons),
            "" if author is None else author.text,
            item.display_name or "",
            item.address or "",
            "; ".join(shadows),
            "; ".join(findings),
            " ".join(item.codes),
        )
        self.csv.writerow([_spreadsheet_safe(visible(cell)) for cell in cells])

    def skipped(self, item: Skipped) -> None:
        """Skipped files are listed on stderr, not in the CSV."""


class Tally:
    """What the summary counts, kept as the messages go by (a huge mbox's evidence is
    not kept)."""

    def __init__(self) -> None:
        self.messages = 0
        self.flagged = 0
        self.verdicts: Counter[Verdict] = collections.Counter()
        self.actions: Counter[str] = collections.Counter()
        self.codes: Counter[str] = collections.Counter()
        self.domains: Counter[str] = collections.Counter()

    def add(self, item: Evidence) -> None:
        self.messages += 1
        self.verdicts[item.verdict] += 1
        self.actions[item.action_name] += 1
        self.codes.update(item.codes)
        if item.flagged:
            self.flagged += 1
            address = item.address
            if address and "@" in address:
                self.domains[address.rpartition("@")[2].lower()] += 1

    def merge(self, other: Tally) -> None:
        """Count ``other``'s messages too (a part of the scan counted elsewhere)."""
        self.messages += other.messages
        self.flagged += other.flagged
        self.verdicts.update(other.verdicts)
        self.actions.update(other.actions)
        self.codes.update(other.codes)
        self.domains.update(other.domains)


_SKIP_KINDS = (("unreadable", "unreadable"), ("not-mail", "not mail"), ("malformed", "malformed"))
_SKIPPED_KINDS = frozenset(kind for kind, _ in _SKIP_KINDS)


def summary(tally: Tally, skipped: Sequence[Skipped], files: int, policy: bool = True) -> str:
    """Counts per verdict, action and finding code (messages that have it), what was
    skipped, and the sender domains of the most flagged messages."""
    kinds = collections.Counter(item.kind for item in skipped)
    failed = sum(1 for item in skipped if _failed(item))
    counts = ", ".join(f"{kinds[kind]} {label}" for kind, label in _SKIP_KINDS)
    lines = [
        "",
        f"Summary: {tally.messages} messages in {files} files, {tally.flagged} flagged",
        f"skipped: {counts}, {failed} failed to check",
        "verdicts:",
    ]
    lines += [f"  {verdict.name.lower():<12} {tally.verdicts[verdict]:>6}" for verdict in Verdict]
    if policy:
        lines.append("actions:")
        names = [action.name.lower() for action in Action]
        lines += [f"  {name:<12} {tally.actions[name]:>6}" for name in names]
    codes = sorted(tally.codes.items(), key=_by_count)
    lines.append("finding codes (messages):" if codes else "finding codes: (none)")
    lines += [f"  {code:<40} {n:>6}" for code, n in codes]
    top = sorted(tally.domains.items(), key=_by_count)[:_TOP_DOMAINS]
    lines.append("top flagged sender domains:" if top else "top flagged sender domains: (none)")
    lines += [f"  {_pad(visible(domain), 40)} {n:>6}" for domain, n in top]
    return "\n".join(lines) + "\n"


def _by_count(item: Tuple[str, int]) -> Tuple[int, str]:
    return (-item[1], item[0])


# -- The command ----------------------------------------------------------------------


def run(
    paths: Sequence[Path],
    policy: Optional[Policy] = None,
    fmt: str = "table",
    out: Optional[IO[str]] = None,
    err: Optional[IO[str]] = None,
    *,
    only_flagged: bool = False,
    fail_on_skipped: bool = False,
    width: Optional[int] = None,
    html: Optional[IO[str]] = None,
) -> int:
    """Scan ``paths`` and write the report to ``out``, what was skipped to ``err``;
    returns the exit status. Without ``policy`` the scan reports and decides nothing.
    ``width``: the table's width in columns (None: the terminal's, 0: no limit; at
    least MIN_WIDTH). ``html``: where to write the HTML report too (``report.py``)."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    listed, status = _listing(paths, err, lambda path: _LOCAL)
    sniffed = [item if isinstance(item, Skipped) else _sniff(item) for item in listed]
    sources = [item for item in sniffed if isinstance(item, _Source)]
    skipped = [item for item in sniffed if isinstance(item, Skipped)]
    steps = (step for source in sources for step in _steps(policy, source))
    return _report(
        sources,
        skipped,
        steps,
        policy is not None,
        fmt,
        out,
        err,
        status,
        only_flagged=only_flagged,
        fail_on_skipped=fail_on_skipped,
        width=width,
        html=html,
        paths=[show_path(path) for path in paths],
    )


class _Step(NamedTuple):
    """One message read (``size``: the bytes it took; None after the last message of a
    file) and what it gave, in order: the records of what was skipped, then its
    evidence."""

    size: Optional[int]
    results: Tuple[Union[Skipped, Evidence], ...]


def _steps(
    policy: Optional[Policy], source: _Source, span: Optional[Tuple[int, int]] = None
) -> Iterator[_Step]:
    """Every message of a file (or of an mbox's byte range, see ``_messages``) checked."""
    return _checked(policy, show_path(source.path), _read(source, span))


class _Read(NamedTuple):
    """A message read (None after the last message of a file), after the records of
    what was skipped before it."""

    skipped: Tuple[Skipped, ...]
    message: Optional[_Message]


def _read(source: _Source, span: Optional[Tuple[int, int]] = None) -> Iterator[_Read]:
    """Every message of a file (or of an mbox's byte range), not yet checked: a scan on
    Dask reads an mbox range in one task and checks it in another, and raw mail is far
    cheaper to move between workers than evidence."""
    skipped: List[Skipped] = []
    for message in _messages(source, skipped, span):
        read = _Read(tuple(skipped), message)
        skipped.clear()
        yield read
    if skipped:  # the file could not be read (further)
        yield _Read(tuple(skipped), None)


def _checked(policy: Optional[Policy], name: str, reads: Iterable[_Read]) -> Iterator[_Step]:
    """The messages read from the file ``name`` checked."""
    for skipped, message in reads:
        results: List[Union[Skipped, Evidence]] = list(skipped)
        if message is None:
            yield _Step(None, tuple(results))
            continue
        if message.raw:
            try:
                results.append(check(policy, name, message.number, message.raw))
            except Exception as error:  # one message must not stop the scan
                failure = Failure.of(error)
                results.append(Skipped(name, message.number, failure.kind, failure.text))
        yield _Step(message.size, tuple(results))


def _failed(item: Skipped) -> bool:
    """Whether the record is of a message whose check failed."""
    return item.kind not in _SKIPPED_KINDS


def _report(
    sources: Sequence[_Source],
    skipped: List[Skipped],
    steps: Iterable[_Step],
    policy: bool,
    fmt: str,
    out: IO[str],
    err: IO[str],
    status: int,
    *,
    only_flagged: bool,
    fail_on_skipped: bool,
    width: Optional[int],
    html: Optional[IO[str]] = None,
    paths: Sequence[str] = (),
) -> int:
    """Write the report of ``steps`` over ``sources`` (``skipped``: what the walk
    skipped), as ``run`` documents; ``status``: the walk's; ``paths``: the scanned
    paths as the HTML report's heading names them."""
    rows = _Rows(_writer_for(fmt, width, sources)(out, True), out, err, only_flagged)
    if html is not None:
        from .report import HtmlReport

        rows.page, rows.page_out, rows.paths = HtmlReport(only_flagged), html, paths
    for item in skipped:  # found while walking
        rows.skip(item)
    if err.isatty():
        rows.progress = _Progress(err, sum(source.size for source in sources))
    for step in steps:
        rows.add(step)
    return _finish(rows, len(sources), policy, fmt, out, err, status, fail_on_skipped)


_Writer = Union[_TableWriter, _JsonWriter, _CsvWriter]


def _writer_for(
    fmt: str, width: Optional[int], sources: Sequence[_Source]
) -> Callable[[IO[str], bool], _Writer]:
    """What makes the report's writer, given the output and whether to write the
    heading: it pickles, for a scan on Dask to write rows on its workers."""
    if fmt == "jsonl":
        return _JsonWriter
    if fmt == "csv":
        return _CsvWriter
    columns = shutil.get_terminal_size().columns if width is None else width
    columns = columns and max(columns, MIN_WIDTH)
    where = _TableWriter.where_for(columns, sources)
    return functools.partial(_TableWriter, width=columns, where=where)


class _Rows:
    """The report of the steps as they come: each message's row, each skipped file
    or message (listed on ``err``, and as a record in JSON Lines), and the tally."""

    def __init__(self, writer: _Writer, out: IO[str], err: IO[str], only_flagged: bool) -> None:
        self.writer = writer
        self.out = out
        self.err = err
        self.only_flagged = only_flagged
        self.progress: Optional[_Progress] = None
        self.tally = Tally()
        self.skipped: List[Skipped] = []
        self.failed = False  # a message's check failed
        # The HTML report, when one is asked for: its data, where it goes and the paths
        # its heading names.
        self.page: Optional[HtmlReport] = None
        self.page_out: Optional[IO[str]] = None
        self.paths: Sequence[str] = ()

    def skip(self, item: Skipped) -> None:
        if self.progress is not None:
            self.progress.clear()
        self.err.write(f"fromguard scan: {visible(_where(item))}: skipped ({item.kind}): ")
        self.err.write(visible(item.reason) + "\n")
        self.writer.skipped(item)
        self.skipped.append(item)
        self.failed = self.failed or _failed(item)

    def add(self, step: _Step) -> None:
        if self.progress is not None and step.size is not None:
            self.progress.advance(step.size)
        item: Optional[Evidence] = None
        for result in step.results:  # the skipped first, in the order of the messages
            if isinstance(result, Evidence):
                item = result
            else:
                self.skip(result)
        if item is None:
            return
        self.tally.add(item)
        if self.page is not None:
            self.page.add(item)
        if self.only_flagged and not item.flagged:
            return
        if self.progress is not None and self.out.isatty():
            self.progress.clear()
        self.writer.row(item)


def _finish(
    rows: _Rows,
    files: int,
    policy: bool,
    fmt: str,
    out: IO[str],
    err: IO[str],
    status: int,
    fail_on_skipped: bool,
) -> int:
    """The summary after the rows, and the exit status."""
    if rows.progress is not None:
        rows.progress.clear()
    text = summary(rows.tally, rows.skipped, files, policy)
    (out if fmt == "table" else err).write(text)
    out.flush()
    if rows.page is not None and rows.page_out is not None:
        rows.page.finish(rows.page_out, rows.tally, rows.skipped, files, rows.paths, policy)
    if rows.failed:
        status = EXIT_ERROR
    if status == EXIT_CLEAN and rows.skipped and fail_on_skipped:
        status = EXIT_ERROR
    if status == EXIT_CLEAN and rows.tally.flagged:
        status = EXIT_FLAGGED
    return status

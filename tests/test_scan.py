"""``fromguard scan``: every input kind, every output format, the summary, exit codes,
broken files, a policy, and the bundled sample mailbox."""

from __future__ import annotations

import bz2
import collections
import csv
import gzip
import io
import json
import lzma
import os
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any, Dict, List

import pytest

from fromguard import scan as scan_module
from fromguard._core import _inject_panic
from fromguard.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample.mbox"
EXCHANGE = ROOT / "examples" / "policies" / "exchange.toml"

CLEAN = b"From: Alice <alice@example.org>\nTo: b@example.net\nSubject: hi\n\nHello.\n"
LEGACY = b"From: Dr. Jane Doe <jane@example.org>\nSubject: hi\n\nHello.\n"
DECEPTIVE = b'From: "ceo@bank.example" <m@mallory.example>\nSubject: pay\n\nPay now.\n'
INVALID = b"From: Bank <ceo@bank.example> <m@mallory.example>\nSubject: pay\n\nPay.\n"


def mbox(*messages: bytes) -> bytes:
    return b"".join(
        b"From sender@example.org Mon Nov  2 09:00:00 2026\n" + m + b"\n" for m in messages
    )


def scan(capsys: pytest.CaptureFixture[str], *argv: str) -> "tuple[int, str, str]":
    status = main(["scan", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def jsonl(capsys: pytest.CaptureFixture[str], *argv: str) -> "tuple[int, List[Dict[str, Any]]]":
    status, out, _ = scan(capsys, "--format", "jsonl", *argv)
    return status, [json.loads(line) for line in out.splitlines()]


# -- Input kinds ----------------------------------------------------------------------


def test_eml_file_clean_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.eml").write_bytes(CLEAN)
    status, out, err = scan(capsys, str(tmp_path / "a.eml"))
    assert status == 0
    assert "VALID" in out and "report" in out and "alice@example.org" in out
    assert "Summary: 1 messages in 1 files, 0 flagged" in out
    assert "accept" not in out  # no policy: nothing is decided
    assert err == ""


def test_legacy_is_not_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.eml").write_bytes(LEGACY)
    status, rows = jsonl(capsys, str(tmp_path / "a.eml"))
    assert status == 0
    assert rows[0]["verdict"] == "legacy" and rows[0]["codes"] == ["obs-phrase"]


def test_mbox_is_split_and_indexed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = b"From: Alice <alice@example.org>\n\nHi\n>From the quoted line\n"
    path = tmp_path / "box"  # no suffix: recognised by its first line
    path.write_bytes(mbox(body, DECEPTIVE, INVALID))
    status, rows = jsonl(capsys, str(path))
    assert status == 1
    assert [(r["index"], r["verdict"]) for r in rows] == [
        (1, "valid"),
        (2, "deceptive"),
        (3, "invalid"),
    ]
    assert rows[1]["address"] == "m@mallory.example"
    assert "address-in-display-name" in rows[1]["codes"]


def test_obs_from_line_is_not_an_mbox_separator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.mbox"
    path.write_bytes(mbox(b"From : Dave <dave@example.org>\n\nHi\n"))
    status, rows = jsonl(capsys, str(path))
    assert status == 0
    assert len(rows) == 1 and rows[0]["verdict"] == "legacy"
    assert rows[0]["address"] == "dave@example.org"


def test_maildir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1700000000.1.host:2,S").write_bytes(CLEAN)
    (maildir / "new" / "1700000001.2.host").write_bytes(DECEPTIVE)
    (maildir / "tmp" / "1700000002.3.host").write_bytes(INVALID)  # being delivered: skipped
    status, rows = jsonl(capsys, str(maildir))
    assert status == 1
    assert sorted(r["verdict"] for r in rows) == ["deceptive", "valid"]
    assert all(r["index"] is None for r in rows)


def test_nested_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "one.eml").write_bytes(CLEAN)
    (tmp_path / "a" / "b" / "c" / "two.EML").write_bytes(LEGACY)
    (tmp_path / "a" / "b" / "archive.mbox").write_bytes(mbox(CLEAN, CLEAN))
    (tmp_path / "a" / "b" / "notes.txt").write_bytes(b"not mail\n")  # skipped, and listed
    status, out, err = scan(capsys, str(tmp_path))
    assert status == 0, err
    assert "Summary: 4 messages in 3 files, 0 flagged" in out
    assert "skipped: 0 unreadable, 1 not mail, 0 malformed, 0 failed to check" in out
    assert "notes.txt: skipped (not-mail): no header block" in err


# -- Mail found by content -------------------------------------------------------------

PROTON = (
    b'From: "Proton Mail Alert notification@proton.me" <jbkellyjowl@gmail.com>\n'
    b"Subject: Unusual sign-in\n\nVerify now.\n"
)
SPAM_ASSASSIN = b"Return-Path: <x@example.net>\nReceived: from mx\n\tby mx.example\n" + PROTON
BODY_FROM = b"From: Ann <ann@example.org>\nSubject: s\n\nHi\n\nFrom here on, at 10 we meet.\n"


def build_mixed_tree(root: Path) -> Dict[str, List[str]]:
    """Every layout the scan reads, and files it must skip; returns the verdicts each
    mail file should give, in order."""
    (root / "inbox.eml").write_bytes(CLEAN)
    spam = root / "spam"  # the SpamAssassin corpus: bare names, some with a From_ line
    spam.mkdir()
    (spam / "00001.7c53336b37003a9286aba55d2945844c").write_bytes(mbox(LEGACY))
    (spam / "00002.9c4069e25e1ef370c078db7ee85ff9ac").write_bytes(SPAM_ASSASSIN)
    mh = root / "mh" / "inbox"  # MH: numbered files and the folder's sequences
    mh.mkdir(parents=True)
    (mh / ".mh_sequences").write_bytes(b"unseen: 2-3\ncur: 1\n")
    (mh / "1").write_bytes(CLEAN.replace(b"\n", b"\r\n"))
    (mh / "2").write_bytes(DECEPTIVE)
    (mh / "3").write_bytes(INVALID)
    maildir = root / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1700000000.1.host:2,S").write_bytes(CLEAN)
    (maildir / "cur" / "1700000001.2.host:2,RS").write_bytes(INVALID)
    (maildir / "new" / "1700000002.3.host").write_bytes(DECEPTIVE)
    (maildir / "tmp" / "1700000003.4.host").write_bytes(b"half delivered")
    archive = root / "archive"
    archive.mkdir()
    quoted = CLEAN + b"\n>From the quoted line\n"  # mboxrd
    (archive / "quoted.mbox").write_bytes(mbox(quoted, LEGACY))
    (archive / "unquoted").write_bytes(mbox(BODY_FROM, DECEPTIVE))  # mboxo: body not quoted
    (archive / "old.mbox.gz").write_bytes(gzip.compress(mbox(CLEAN, INVALID, LEGACY)))
    (archive / "one.eml.gz").write_bytes(gzip.compress(DECEPTIVE))
    (archive / "two.eml.bz2").write_bytes(bz2.compress(LEGACY))
    (archive / "three.xz").write_bytes(lzma.compress(mbox(INVALID, CLEAN)))
    junk = root / "junk"
    junk.mkdir()
    (junk / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (junk / "backup.zip").write_bytes(b"PK\x03\x04" + bytes(100))
    (junk / "notes.txt").write_bytes(b"Shopping list\nmilk\n")
    (junk / "readme").write_bytes(b"Title: a readme\nwith text, not fields\n")
    (junk / "empty").write_bytes(b"")
    (junk / "config.yaml").write_bytes(b"name: fromguard\nversion: 1\n")
    (junk / "git.log").write_bytes(
        b"Author: Ann <a@example.org>\nDate:   Thu Feb 9 2023\n\n  fix\n"
    )
    (junk / "man.txt").write_bytes(b"From the man page:\n  less opens a file\n")
    (junk / "broken.gz").write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    (junk / "damaged.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(30))  # zlib.error, no OSError
    with open(junk / "huge.bin", "wb") as file:
        file.truncate(64 << 20)  # sparse: 64 MiB of NUL bytes
    return {
        "inbox.eml": ["valid"],
        "spam/00001.7c53336b37003a9286aba55d2945844c": ["legacy"],
        "spam/00002.9c4069e25e1ef370c078db7ee85ff9ac": ["deceptive"],
        "mh/inbox/1": ["valid"],
        "mh/inbox/2": ["deceptive"],
        "mh/inbox/3": ["invalid"],
        "Maildir/cur/1700000000.1.host:2,S": ["valid"],
        "Maildir/cur/1700000001.2.host:2,RS": ["invalid"],
        "Maildir/new/1700000002.3.host": ["deceptive"],
        "archive/quoted.mbox": ["valid", "legacy"],
        "archive/unquoted": ["valid", "deceptive"],
        "archive/old.mbox.gz": ["valid", "invalid", "legacy"],
        "archive/one.eml.gz": ["deceptive"],
        "archive/two.eml.bz2": ["legacy"],
        "archive/three.xz": ["invalid", "valid"],
    }


SKIPPED_IN_MIXED_TREE = {
    "junk/broken.gz": "unreadable: gzip-compressed: Unknown compression method",
    "junk/damaged.gz": "unreadable: gzip-compressed: Error -3 while decompressing data: "
    "invalid stored block lengths",
    "junk/photo.png": "a PNG image",
    "junk/backup.zip": "a zip archive",
    "junk/notes.txt": "no header block or mbox 'From ' line at the start",
    "junk/readme": "header line 2 is not a field, and no From field",
    "junk/config.yaml": "fields, but none a message has (Received, Subject, To, Message-ID, ...)",
    "junk/git.log": "fields, but none a message has (Received, Subject, To, Message-ID, ...)",
    "junk/man.txt": "no header block or mbox 'From ' line at the start",
    "junk/empty": "empty file",
    "junk/huge.bin": "a binary file (NUL bytes)",
}


BYTES_READ: "collections.Counter[str]" = collections.Counter()


class _CountingFile(io.FileIO):
    """A file that adds every byte read from it to ``BYTES_READ``, under its name."""

    def readinto(self, buffer: Any) -> Any:
        count = super().readinto(buffer)
        BYTES_READ[os.path.basename(str(self.name))] += count or 0
        return count


def test_mail_is_found_by_content_in_every_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = build_mixed_tree(tmp_path)
    monkeypatch.setattr(
        scan_module,
        "open",
        lambda path, mode: io.BufferedReader(_CountingFile(path)),
        raising=False,
    )
    BYTES_READ.clear()
    status, records = jsonl(capsys, str(tmp_path))
    assert status == 1
    found: Dict[str, List[str]] = {}
    skipped: Dict[str, str] = {}
    for record in records:
        name = Path(record["path"]).relative_to(tmp_path).as_posix()
        if record["record"] == "skipped":
            kind = "" if record["kind"] == "not-mail" else record["kind"] + ": "
            skipped[name] = kind + record["reason"]
        else:
            found.setdefault(name, []).append(record["verdict"])
    assert found == expected
    assert skipped == SKIPPED_IN_MIXED_TREE
    # The display name's spoof is in the evidence of the SpamAssassin-style file.
    spoof = next(r for r in records if r["path"].endswith("00002.9c4069e25e1ef370c078db7ee85ff9ac"))
    assert spoof["display_name"] == "Proton Mail Alert notification@proton.me"
    assert spoof["address"] == "jbkellyjowl@gmail.com"
    assert [s["address"] for s in spoof["shadows"]] == ["notification@proton.me"]
    # A file that is not mail is judged from a bounded prefix, never read whole.
    assert 0 < BYTES_READ["huge.bin"] <= scan_module.SNIFF_BYTES + 8192
    capsys.readouterr()
    assert main(["scan", "--fail-on-skipped", "--format", "jsonl", str(tmp_path)]) == 2
    summary = capsys.readouterr().err
    assert "Summary: 20 messages in 15 files, 9 flagged" in summary
    assert "skipped: 2 unreadable, 9 not mail, 0 malformed, 0 failed to check" in summary
    assert "huge.bin: skipped (not-mail): a binary file (NUL bytes)" in summary


def test_a_folder_of_one_spoof_named_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "2").write_bytes(PROTON)
    status, out, _ = scan(capsys, "--width", "0", str(tmp_path))
    assert status == 1
    assert "Summary: 1 messages in 1 files, 1 flagged" in out
    assert ' "Proton Mail Alert notification@proton.me" <jbkellyjowl@gmail.com>\n' in out
    assert 'From: address jbkellyjowl@gmail.com, name "Proton Mail Alert notificat' in out
    assert "shadow notification@proton.me (from display-name)" in out


def test_a_mbox_splits_only_on_from_lines_that_start_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A body line ``From ...`` after an empty line splits only when it carries a time of
    day or a header field follows it; a ``From `` line inside a paragraph never does."""
    body = b"From: Ann <ann@example.org>\n\nHi\nFrom me, with love\n\nFrom nowhere\nbye\n"
    dated = b"From ann@example.org Tue Nov  3 10:00:00 2026\n\n"  # an empty message
    (tmp_path / "box").write_bytes(mbox(body) + dated + mbox(LEGACY))
    status, records = jsonl(capsys, str(tmp_path / "box"))
    assert status == 0
    assert [(r["record"], r["index"]) for r in records] == [
        ("message", 1),
        ("skipped", 2),
        ("message", 3),
    ]
    assert records[1]["reason"] == "empty message in mbox"


# -- Evidence in every format ----------------------------------------------------------


def test_the_field_of_each_finding_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = (
        b'From: Ann <ann@example.org>\nReply-To: "ceo@bank.example" <x@mallory.example>\n\n.\n'
    )
    (tmp_path / "a.eml").write_bytes(message)
    status, (row,) = jsonl(capsys, str(tmp_path))
    assert status == 1
    assert [(f["field"], f["code"]) for f in row["findings"]] == [
        ("Reply-To", "address-in-display-name")
    ]
    assert row["shadows"][0]["field"] == "Reply-To"
    assert [f["field"] for f in row["fields"]] == ["From", "Reply-To"]
    assert row["address"] == "ann@example.org"
    _, out, _ = scan(capsys, "--width", "0", str(tmp_path))
    assert '    Reply-To 1-19 address-in-display-name (deceptive): "ceo@bank.example"\n' in out
    _, out, _ = scan(capsys, "--format", "csv", str(tmp_path))
    (cells,) = csv.DictReader(io.StringIO(out))
    assert cells["findings"] == "Reply-To 1-19 address-in-display-name (deceptive)"
    assert cells["shadows"] == "Reply-To 1-19 shadow ceo@bank.example (from display-name)"


def test_the_policy_and_its_reasons_are_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "box").write_bytes(mbox(CLEAN, DECEPTIVE))
    status, out, _ = scan(capsys, "--width", "0", "--policy", str(EXCHANGE), str(tmp_path))
    assert status == 1
    lines = out.splitlines()
    assert lines[1].split()[:2] == ["VALID", "accept"]
    assert lines[2].split()[:2] == ["DECEPTIVE", "warn"]
    assert "    policy: warn for verdict:deceptive" in lines
    assert "actions:\n  accept            1\n  tag               0\n  warn              1\n" in out


def test_only_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "box").write_bytes(mbox(CLEAN, LEGACY, DECEPTIVE))
    status, out, err = scan(capsys, "--format", "jsonl", "--only-flagged", str(tmp_path))
    assert status == 1
    assert [json.loads(line)["index"] for line in out.splitlines()] == [3]
    assert "Summary: 3 messages in 1 files, 1 flagged" in err
    _, out, _ = scan(capsys, "--only-flagged", "--width", "0", str(tmp_path))
    assert "#3" in out and "#1" not in out and "#2" not in out


def _columns(line: str) -> int:
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
        for c in line
    )


def test_the_table_fits_the_width_and_keeps_the_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "and-another-one"
    deep.mkdir(parents=True)
    name = b"x" * 150
    (deep / "long.eml").write_bytes(
        b'From: "' + name + b'" <a@b.example> <m@mallory.example>\n\n.\n'
    )
    cjk = "\u7530\u4e2d\u592a\u90ce\u55b6\u696d\u90e8" * 8  # wide characters
    (tmp_path / "w.eml").write_bytes(f'From: "{cjk}" <t@example.jp>\n\n.\n'.encode())
    for width in (100, 72, 50, 40):
        status, out, _ = scan(capsys, "--width", str(width), str(tmp_path))
        assert status == 1
        table = out[: out.index("\nSummary:")].splitlines()
        assert all(_columns(line) <= width for line in table), (width, table)
        rows = [line for line in table[1:] if not line.startswith(" ")]
        from_column = table[0].index("FROM")
        for row in rows:  # the value beside the row starts in the FROM column, or below it
            assert len(row) <= from_column or row[from_column - 1 : from_column + 1] == ' "'
        start = out.index("g.eml")  # the middle of long.eml's path may be elided
        block = out[start : out.index("From:", start)]
        assert "<m@mallory.example>" in block  # the span of text-after-address, whole
        assert "…" in block
    _, out, _ = scan(capsys, "--width", "0", str(tmp_path))
    assert (name.decode() + '" <a@b.example> <m@mallory.example>') in out


def test_no_control_character_is_written_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = (
        b'From: "Bank \xe2\x80\xae\x1b[31mred" <ceo@bank.example\x00>\n'
        b"Reply-To: a\rb@example.org\n\n.\n"
    )
    (tmp_path / "line\nbreak.eml").write_bytes(hostile)
    (tmp_path / "bell\x07.txt").write_bytes(b"\x07not mail\n")
    for fmt in ("table", "csv"):
        _, out, err = scan(capsys, "--format", fmt, "--width", "0", str(tmp_path))
        report = out[: out.index("\nSummary:")] if fmt == "table" else out
        for text in (report, err):
            shown = text.replace("\n", "")
            assert all(c.isprintable() for c in shown), (fmt, text)
        assert "\\x00" in report and "\\u202e" in report and "\\x1b[31m" in report
        assert "line\\nbreak.eml" in report and "bell\\x07.txt: skipped" in err
    _, out, _ = scan(capsys, "--format", "jsonl", str(tmp_path))
    (message,) = [r for r in map(json.loads, out.splitlines()) if r["record"] == "message"]
    assert message["from_value"] == ' "Bank \u202e\x1b[31mred" <ceo@bank.example\x00>'


# -- Formats and summary --------------------------------------------------------------


def test_jsonl_gives_the_date_in_utc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dated = b"Date: Mon, 02 Nov 2026 09:00:00 +0100\n" + INVALID
    (tmp_path / "dated.eml").write_bytes(dated)
    (tmp_path / "garbled.eml").write_bytes(b"Date: someday\n" + INVALID)
    _, out, _ = scan(capsys, "--format", "jsonl", str(tmp_path))
    dates = {Path(r["path"]).name: r["date"] for r in map(json.loads, out.splitlines())}
    assert dates == {"dated.eml": "2026-11-02T08:00:00+00:00", "garbled.eml": None}


def test_jsonl_fields_and_summary_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.eml").write_bytes(INVALID)
    status, out, err = scan(capsys, "--format", "jsonl", str(tmp_path / "x.eml"))
    assert status == 1
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["record"] == "message"
    assert row["path"] == str(tmp_path / "x.eml")
    assert row["verdict"] == "invalid" and row["action"] == "report"
    assert "text-after-address" in row["codes"]
    assert row["reasons"] == []
    assert row["from_value"] == " Bank <ceo@bank.example> <m@mallory.example>"
    assert (row["display_name"], row["address"]) == ("Bank", "ceo@bank.example")
    assert row["date"] is None  # no Date field
    assert {"field": "From", "code": "text-after-address", "severity": "invalid"}.items() <= (
        next(f for f in row["findings"] if f["code"] == "text-after-address").items()
    )
    assert row["shadows"] == [
        {
            "field": "From",
            "address": "m@mallory.example",
            "source": "rejected-text",
            "start": 25,
            "end": 44,
        }
    ]
    assert "Summary: 1 messages in 1 files, 1 flagged" in err
    assert "top flagged sender domains:\n  bank.example" in err


def test_csv_parsed_back_to_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "box.mbox").write_bytes(mbox(CLEAN, DECEPTIVE))
    report = tmp_path / "report.csv"
    status, out, err = scan(capsys, "--format", "csv", "--output", str(report), str(tmp_path))
    assert status == 1
    assert out == ""
    assert "Summary: 2 messages" in err
    rows = list(csv.DictReader(io.StringIO(report.read_text(encoding="utf-8"))))
    assert [(r["index"], r["address"], r["verdict"]) for r in rows] == [
        ("1", "alice@example.org", "valid"),
        ("2", "m@mallory.example", "deceptive"),
    ]
    assert rows[1]["codes"] == "address-in-display-name"
    assert rows[1]["display_name"] == "ceo@bank.example"
    assert rows[1]["from_value"] == ' "ceo@bank.example" <m@mallory.example>'
    assert rows[1]["shadows"] == "From 1-19 shadow ceo@bank.example (from display-name)"
    assert rows[1]["findings"] == "From 1-19 address-in-display-name (deceptive)"
    assert rows[0]["action"] == "report"


def test_csv_cells_cannot_become_spreadsheet_formulas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = b"From: =1+2|cmd!A0@evil.example\nTo: b@example.org\n\nhi\n"
    (tmp_path / "a.eml").write_bytes(hostile)
    status, out, _ = scan(capsys, "--format", "csv", str(tmp_path))
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["address"] == "'=1+2|cmd!A0@evil.example"
    assert status in (0, 1)


def test_summary_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "box.mbox").write_bytes(mbox(CLEAN, LEGACY, DECEPTIVE, DECEPTIVE, INVALID))
    status, out, _ = scan(capsys, str(tmp_path / "box.mbox"))
    assert status == 1
    summary = out[out.index("Summary:") :]
    assert "Summary: 5 messages in 1 files, 3 flagged" in summary
    for line in ("valid             1", "legacy            1", "deceptive         2"):
        assert f"  {line}\n" in summary
    assert "  invalid           1\n" in summary
    assert "actions:" not in summary  # no policy, no actions
    codes = summary[summary.index("finding codes") :]
    assert "  address-in-display-name" in codes and codes.count("obs-phrase") == 1
    domains = summary[summary.index("top flagged sender domains:") :].splitlines()
    assert domains[1].split() == ["mallory.example", "2"]
    assert domains[2].split() == ["bank.example", "1"]


# -- Exit codes and broken input ------------------------------------------------------


def test_missing_path_exits_2_but_scans_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.eml").write_bytes(CLEAN)
    status, out, err = scan(capsys, str(tmp_path / "nope"), str(tmp_path / "a.eml"))
    assert status == 2
    assert "nope" in err
    assert "Summary: 1 messages" in out


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["scan"])
    assert exit.value.code == 2
    with pytest.raises(SystemExit) as exit:
        main(["scan", "--format", "xml", str(tmp_path)])
    assert exit.value.code == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('[verdicts]\ninvalid = "explode"\n# fromguard-policy: end\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exit:
        main(["scan", "--policy", str(bad), str(tmp_path)])
    assert exit.value.code == 2
    assert "bad.toml:2" in capsys.readouterr().err


def test_unreadable_file_is_reported_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.eml").write_bytes(CLEAN)
    locked = tmp_path / "locked.eml"
    locked.write_bytes(DECEPTIVE)
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything: use a broken symlink
            locked.chmod(0o644)
            locked.unlink()
            locked.symlink_to(tmp_path / "gone.eml")
        status, out, err = scan(capsys, str(tmp_path))
    finally:
        if locked.exists():
            locked.chmod(0o644)
    assert status == 0
    assert "locked.eml: skipped (unreadable)" in err
    assert "Summary: 1 messages" in out
    assert "skipped: 1 unreadable, 0 not mail, 0 malformed" in out


def test_broken_symlink_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.eml").write_bytes(DECEPTIVE)
    (tmp_path / "dangling.eml").symlink_to(tmp_path / "gone.eml")
    status, out, err = scan(capsys, str(tmp_path))
    assert status == 1
    assert "dangling.eml: skipped (unreadable): broken symlink" in err
    assert "skipped: 1 unreadable" in out
    assert main(["scan", "--fail-on-skipped", str(tmp_path)]) == 2


def test_malformed_mbox_empty_file_and_empty_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "junk.mbox").write_bytes(b"this is not an mbox\n" + CLEAN)
    (tmp_path / "empty.eml").write_bytes(b"")
    (tmp_path / "holes.mbox").write_bytes(
        mbox(CLEAN) + b"From x@example.org Mon Nov  2 09:00:00 2026\n\n" + mbox(LEGACY)
    )
    status, out, err = scan(capsys, str(tmp_path))
    assert status == 0
    assert "junk.mbox: skipped (not-mail): no header block" in err
    assert "empty.eml: skipped (not-mail): empty file" in err
    assert "holes.mbox#2: skipped (malformed): empty message in mbox" in err
    assert "holes.mbox#3" in out
    assert "Summary: 2 messages in 1 files, 0 flagged" in out
    assert "skipped: 0 unreadable, 2 not mail, 1 malformed" in out


def test_a_message_whose_check_fails_is_reported_and_the_scan_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "box.mbox").write_bytes(mbox(CLEAN, LEGACY, DECEPTIVE))
    _inject_panic(LEGACY + b"\n")  # the second message, as the scan reads it, panics the core
    try:
        status, out, err = scan(capsys, str(tmp_path / "box.mbox"))
    finally:
        _inject_panic(None)
    assert status == 2  # the scan cannot say the mailbox is clean
    assert "box.mbox#2: skipped (internal): InternalError: fromguard failed in check_message" in err
    assert "box.mbox#1" in out and "box.mbox#2" not in out and "box.mbox#3" in out
    assert "Summary: 2 messages in 1 files, 1 flagged" in out
    assert "skipped: 0 unreadable, 0 not mail, 0 malformed, 1 failed to check" in out


def test_binary_garbage_is_skipped_whatever_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "garbage.eml").write_bytes(bytes(range(256)) * 4)
    status, rows = jsonl(capsys, str(tmp_path / "garbage.eml"))
    assert status == 0
    assert rows == [
        {
            "record": "skipped",
            "path": str(tmp_path / "garbage.eml"),
            "index": None,
            "kind": "not-mail",
            "reason": "a binary file (NUL bytes)",
        }
    ]
    assert main(["scan", "--fail-on-skipped", str(tmp_path)]) == 2


# -- Policy ---------------------------------------------------------------------------


def test_exchange_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "box.mbox").write_bytes(mbox(CLEAN, LEGACY, DECEPTIVE, INVALID))
    status, rows = jsonl(capsys, "--policy", str(EXCHANGE), str(tmp_path / "box.mbox"))
    assert status == 1
    assert [(r["verdict"], r["action"], r["reasons"]) for r in rows] == [
        ("valid", "accept", []),
        ("legacy", "accept", []),
        ("deceptive", "warn", ["verdict:deceptive"]),
        ("invalid", "warn", ["verdict:invalid"]),
    ]


def test_an_accepting_policy_action_other_than_accept_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('[codes]\nobs-phrase = "tag"\n# fromguard-policy: end\n', encoding="utf-8")
    (tmp_path / "a.eml").write_bytes(LEGACY)
    status, rows = jsonl(capsys, "--policy", str(policy), str(tmp_path / "a.eml"))
    assert status == 1
    assert rows[0]["action"] == "tag" and rows[0]["reasons"] == ["code:obs-phrase"]


# -- The bundled sample, through the installed command -----------------------------------


SAMPLE_VERDICTS = {
    # valid: plain text, MIME alternative, encoded-word name, bare address, a Sender
    # other than the From (a mailing list does that: reported, not flagged), a brand name
    # from an outside domain (grammar-valid: only the strict policy's rules catch it)
    "valid": [1, 2, 3, 4, 31, 32],
    # legacy: obs-phrase, obs-from ``From :``
    "legacy": [5, 6],
    # invalid: two From fields, name folded before the colon, several authors without
    # Sender, text after the angle-addr, colon trick, unquoted address as name, unbalanced
    # quote, group, no From, NUL and bare CR, backslash outside quotes, line over 998
    # octets, bad dots
    "invalid": [7, 8, 9, 10, 11, 12, 15, 17, 21, 23, 26, 27, 28],
    # deceptive: quoted address as name, address in a comment, Q-encoded address as name,
    # look-alike punycode, bidi control, percent hack to another domain, B-encoded angle
    # address in a MIME message, encoded-word in a quoted name, route to another domain,
    # domain literal that is not an IP, quoted local part holding an address
    "deceptive": [13, 14, 16, 18, 19, 20, 22, 24, 25, 29, 30],
}


def scan_sample(*options: str) -> "tuple[List[Dict[str, Any]], str]":
    """The bundled sample through the installed command, as JSON Lines."""
    result = subprocess.run(
        [sys.executable, "-m", "fromguard.cli", "scan", "--format", "jsonl", *options, str(SAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "skipped: 0 unreadable, 0 not mail, 0 malformed" in result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def test_bundled_sample() -> None:
    """32 messages, one per header attack class and a few clean ones; the Subject of
    each says what it shows."""
    rows, _ = scan_sample()
    assert [r["index"] for r in rows] == list(range(1, 33))
    verdicts: Dict[str, List[int]] = {}
    for row in rows:
        verdicts.setdefault(row["verdict"], []).append(row["index"])
    assert verdicts == SAMPLE_VERDICTS
    codes = {r["index"]: r["codes"] for r in rows}
    assert codes[6] == ["obs-field-name-space"]  # From : is a field, not a separator
    assert "several-from-fields" in codes[7]
    assert "folded-field-name" in codes[8]
    assert "several-authors-without-sender" in codes[9]
    assert "no-from" in codes[21]
    assert "confusable-domain" in codes[18]
    assert "bidi-control" in codes[19]
    assert codes[23] == ["nul", "bare-cr"]
    assert codes[27] == ["line-too-long"]
    assert codes[31] == ["sender-differs"]
    assert codes[32] == []


def test_bundled_sample_through_every_action() -> None:
    """The strict example policy over the sample: every action, chosen by verdicts, finding
    codes and rules, end to end through the command."""
    rows, summary = scan_sample("--policy", str(ROOT / "examples" / "policies" / "strict.toml"))
    actions = {r["index"]: (r["action"], r["reasons"]) for r in rows}
    for index in SAMPLE_VERDICTS["invalid"]:
        assert actions[index][0] == "reject"
    assert actions[9] == ("reject", ["verdict:invalid", "code:several-authors-without-sender"])
    assert actions[19] == ("reject", ["code:bidi-control"])  # deceptive, but rejected
    assert actions[18] == ("quarantine", ["verdict:deceptive", "rule:lookalike-of-our-domain"])
    for index in set(SAMPLE_VERDICTS["deceptive"]) - {18, 19}:
        assert actions[index] == ("quarantine", ["verdict:deceptive"])
    assert actions[6] == ("tag", ["code:obs-field-name-space"])
    assert actions[31] == ("tag", ["code:sender-differs"])
    assert actions[32] == ("warn", ["rule:impersonates-our-brand"])
    for index in (1, 2, 3, 4, 5):
        assert actions[index] == ("accept", [])
    counts = "  accept            5\n  tag               2\n  warn              1\n"
    assert "actions:\n" + counts + "  quarantine       10\n  reject           14\n" in summary
    # The Exchange preset warns on everything invalid or deceptive, and on nothing else.
    rows, _ = scan_sample("--policy", str(EXCHANGE))
    warned = sorted(r["index"] for r in rows if r["action"] == "warn")
    assert warned == sorted(SAMPLE_VERDICTS["invalid"] + SAMPLE_VERDICTS["deceptive"])
    assert {r["action"] for r in rows} == {"accept", "warn"}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    from fromguard import Policy
    from fromguard.scan import run

    (tmp_path / "box.mbox").write_bytes(mbox(CLEAN, CLEAN))
    out, err = io.StringIO(), _Terminal()
    assert run([tmp_path], Policy(), "jsonl", out=out, err=err) == 0
    assert err.getvalue().startswith("\r[#") and " 1 messages" in err.getvalue()
    assert "\r\x1b[K" in err.getvalue()  # cleared before the summary
    quiet = io.StringIO()
    assert run([tmp_path], Policy(), "jsonl", out=io.StringIO(), err=quiet) == 0
    assert "\r" not in quiet.getvalue()


def test_the_readme_shows_the_table_the_scan_prints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    intro = "`fromguard scan --width 100 examples/sample.mbox`"
    block = readme[readme.index("```text\n", readme.index(intro)) + len("```text\n") :]
    monkeypatch.chdir(ROOT)  # the path as the README shows it: the column's width follows it
    status = main(["scan", "--width", "100", "examples/sample.mbox"])
    table = capsys.readouterr().out.split("\n\nSummary:")[0] + "\n"
    assert status == 1
    assert block[: block.index("```")] == table


def test_all_is_exact() -> None:
    """What the HTML report and other renderers may build on: every public name the module
    defines, and nothing else."""
    defined = {
        name
        for name, value in vars(scan_module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", scan_module.__name__) == scan_module.__name__
        and not isinstance(value, type(scan_module))
    }
    assert sorted(scan_module.__all__) == sorted(defined)


def test_a_table_written_to_a_file_is_not_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    value = b'"' + b"Bank " * 60 + b'" <m@mallory.example>'
    (tmp_path / "a.eml").write_bytes(b"From: " + value + b"\nSubject: s\n\n.\n")
    report = tmp_path / "report.txt"
    assert main(["scan", "--output", str(report), str(tmp_path / "a.eml")]) == 0
    assert value.decode() in report.read_text(encoding="utf-8")
    for width in ("-1", "39"):
        with pytest.raises(SystemExit) as exit:
            main(["scan", "--width", width, str(tmp_path)])
        assert exit.value.code == 2
        assert "--width must be 0 (no limit) or at least 40" in capsys.readouterr().err

"""``fromguard scan``: every input kind, every output format, the summary, exit codes,
broken files, a policy, and the bundled sample mailbox."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

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
    assert "VALID" in out and "alice@example.org" in out
    assert "Summary: 1 messages in 1 files, 0 flagged" in out
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
    assert rows[1]["from"] == "m@mallory.example"
    assert "address-in-display-name" in rows[1]["codes"]


def test_obs_from_line_is_not_an_mbox_separator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.mbox"
    path.write_bytes(mbox(b"From : Dave <dave@example.org>\n\nHi\n"))
    status, rows = jsonl(capsys, str(path))
    assert status == 0
    assert len(rows) == 1 and rows[0]["verdict"] == "legacy"
    assert rows[0]["from"] == "dave@example.org"


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
    (tmp_path / "a" / "b" / "notes.txt").write_bytes(b"not mail\n")  # ignored
    status, out, err = scan(capsys, str(tmp_path))
    assert status == 0, err
    assert "Summary: 4 messages in 3 files, 0 flagged" in out
    assert "ignored: 1 files that are not mail" in out


# -- Formats and summary --------------------------------------------------------------


def test_jsonl_fields_and_summary_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.eml").write_bytes(INVALID)
    status, out, err = scan(capsys, "--format", "jsonl", str(tmp_path / "x.eml"))
    assert status == 1
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert set(row) == {"path", "index", "from", "verdict", "action", "codes", "reasons"}
    assert row["path"] == str(tmp_path / "x.eml")
    assert row["verdict"] == "invalid" and row["action"] == "accept"
    assert "text-after-address" in row["codes"]
    assert row["reasons"] == []
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
    assert [(r["index"], r["from"], r["verdict"]) for r in rows] == [
        ("1", "alice@example.org", "valid"),
        ("2", "m@mallory.example", "deceptive"),
    ]
    assert rows[1]["codes"] == "address-in-display-name"
    assert rows[0]["action"] == "accept"


def test_csv_cells_cannot_become_spreadsheet_formulas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = b"From: =1+2|cmd!A0@evil.example\nTo: b@example.org\n\nhi\n"
    (tmp_path / "a.eml").write_bytes(hostile)
    status, out, _ = scan(capsys, "--format", "csv", str(tmp_path))
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["from"] == "'=1+2|cmd!A0@evil.example"
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
    assert "  accept            5\n" in summary
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
    bad.write_text('[verdicts]\ninvalid = "explode"\n', encoding="utf-8")
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
    assert "skipped: 1 unreadable, 0 malformed" in out


def test_broken_symlink_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.eml").write_bytes(DECEPTIVE)
    (tmp_path / "dangling.eml").symlink_to(tmp_path / "gone.eml")
    status, out, err = scan(capsys, str(tmp_path))
    assert status == 1
    assert "dangling.eml: skipped (unreadable): broken symlink" in err
    assert "skipped: 1 unreadable" in out


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
    assert "junk.mbox: skipped (malformed): mbox file does not start with a 'From ' line" in err
    assert "empty.eml: skipped (malformed): empty file" in err
    assert "holes.mbox#2: skipped (malformed): empty message in mbox" in err
    assert "holes.mbox#3" in out
    assert "Summary: 2 messages in 3 files, 0 flagged" in out
    assert "skipped: 0 unreadable, 3 malformed" in out


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
    assert "skipped: 0 unreadable, 0 malformed, 1 failed to check" in out


def test_binary_garbage_is_a_message_without_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "garbage.eml").write_bytes(bytes(range(256)) * 4)
    status, rows = jsonl(capsys, str(tmp_path / "garbage.eml"))
    assert status == 1
    assert rows[0]["verdict"] == "invalid" and rows[0]["from"] is None


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
    policy.write_text('[codes]\nobs-phrase = "tag"\n', encoding="utf-8")
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
    assert "skipped: 0 unreadable, 0 malformed" in result.stderr
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

"""The ``fromguard`` command line (``fromguard.cli``)."""

from __future__ import annotations

import importlib.metadata
import io
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import fromguard
from fromguard.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample-from.txt"


def test_check_a_valid_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "Jane Doe <jane@example.org>"]) == 0
    out = capsys.readouterr().out
    assert "verdict:   VALID" in out
    assert "address:   jane@example.org" in out
    assert "'Jane Doe' <jane@example.org>" in out
    assert out.rstrip().endswith("(no findings)")


def test_legacy_exits_0_and_shows_the_finding(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "Dr. Jane Doe <jane@example.org>"]) == 0
    out = capsys.readouterr().out
    assert "verdict:   LEGACY" in out
    assert "  ^  obs-phrase (legacy): " in out


def test_the_bundled_sample_is_flagged(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--file", str(SAMPLE)]) == 1
    out = capsys.readouterr().out
    assert "text-after-address" in out
    # The file's own line break is not part of the value.
    assert "trailing-line-break" not in out


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    # Two authors: several-authors makes it deceptive (exit 1).
    assert main(["check", "--json", "Dr. A <a@b.example>, c@d.example"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "deceptive"
    assert result["syntax"] == "obsolete"
    assert result["address"] is None
    assert [m["addr_spec"] for m in result["mailboxes"]] == ["a@b.example", "c@d.example"]
    assert result["findings"][0]["code"] == "obs-phrase"
    assert result["findings"][0]["severity"] == "legacy"
    assert (result["utf8"], result["groups"]) == (True, False)


def test_profile_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "Team: a@b.example;"]) == 1
    assert main(["check", "--groups", "Team: a@b.example;"]) == 0
    capsys.readouterr()
    main(["check", "--json", "--no-utf8", "Jörg <a@b.example>"])
    codes = [f["code"] for f in json.loads(capsys.readouterr().out)["findings"]]
    assert "utf8-not-enabled" in codes


def test_final_line_break_of_a_file_is_dropped(tmp_path: Path) -> None:
    for ending in (b"\n", b"\r\n", b""):
        path = tmp_path / "value.txt"
        path.write_bytes(b"a@b.example" + ending)
        assert main(["check", "--file", str(path)]) == 0


@pytest.mark.parametrize(
    "argv",
    [[], ["check"], ["check", "a@b", "--file", "x"], ["nonsense"], ["check", "--file"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_unreadable_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.txt"
    with pytest.raises(SystemExit) as exit:
        main(["check", "--file", str(missing)])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert str(missing) in err
    assert "Traceback" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"fromguard {fromguard.__version__}"


def test_installed_command_reports_the_distribution_version() -> None:
    """The console script an installation puts beside the interpreter, the package and the
    distribution metadata give one version."""
    try:
        installed = importlib.metadata.version("fromguard")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("fromguard is not installed, only importable from the checkout")
    # Where the installation put the console scripts: beside the interpreter in a venv,
    # Scripts\ beside it in a Windows installation.
    command = shutil.which("fromguard", path=sysconfig.get_path("scripts"))
    assert command is not None, "the fromguard console script is not installed"
    done = subprocess.run([command, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"fromguard {installed}"
    assert fromguard.__version__ == installed


def test_runs_as_a_module() -> None:
    command = [sys.executable, "-m", "fromguard.cli", "check", "a@b.example (x)"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "comment (info)" in done.stdout


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


@pytest.mark.parametrize("argv", [["-"], ["--file", "-"]])
def test_standard_input(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Bytes, not text: Latin-1 in a name is what the core judges (legacy), and the final
    # line break belongs to the input, not the value.
    _stdin(monkeypatch, b"J\xf6rg <j@example.org>\n")
    assert main(["check", "--json", *argv]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["value"] == "J\\xf6rg <j@example.org>"
    assert result["verdict"] == "legacy"


@pytest.mark.parametrize("name", ["From:", "from :", "Reply-To:", "RESENT-FROM:", "Sender:"])
def test_a_field_name_is_not_part_of_the_value(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--json", f"{name} Jane <jane@example.org>"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["value"] == " Jane <jane@example.org>"
    assert f"note: {name!r} is a field name, not part of the value" in captured.err


def test_as_is_checks_the_field_name_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--as-is", "--json", "From: Jane <jane@example.org>"]) == 1
    captured = capsys.readouterr()
    assert "unterminated-group" in [f["code"] for f in json.loads(captured.out)["findings"]]
    assert captured.err == ""


def test_a_name_that_only_starts_like_a_field_is_the_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "--json", "Fromage Shop <shop@example.org>"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["value"] == "Fromage Shop <shop@example.org>"
    assert captured.err == ""


def test_json_has_the_shadows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", '"ceo@bank.example" <m@mallory.example>']) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["shadows"] == [
        {"address": "ceo@bank.example", "source": "display-name", "start": 0, "end": 18}
    ]
    assert result["mailboxes"][0]["display_name"] == "ceo@bank.example"


# -- fromguard policy check -----------------------------------------------------------

POLICIES = Path(__file__).resolve().parent.parent / "examples" / "policies"


def test_policy_check_prints_what_the_policy_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(POLICIES / "strict.toml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{POLICIES / 'strict.toml'}: ok, a whole policy"
    reply = "550 5.7.1 Message not accepted: the From header is not RFC 5322 compliant"
    assert lines[1:6] == [
        "verdicts:",
        "  valid      accept",
        "  legacy     accept",
        "  deceptive  quarantine",
        f"  invalid    reject ({reply})",
    ]
    assert "  sender-differs                  tag" in lines
    assert (
        "  lookalike-of-our-domain  domain           "
        "(?i)^(?:xn--|.*-bank\\.example$|bank\\.example\\.)  quarantine"
    ) in lines
    assert "  X-Fromguard-Action: {action} ({reasons})" in lines
    assert lines[-1] == "  The address it was sent from: <{sender}>"


def test_policy_check_json_is_the_effective_policy(capsys: pytest.CaptureFixture[str]) -> None:
    path = POLICIES / "exchange.toml"
    assert main(["policy", "check", "--json", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {
        "ok": True,
        "path": str(path),
        "policy": fromguard.Policy.from_toml(path).effective(),
    }
    assert printed["policy"]["verdicts"]["invalid"] == "warn"


def test_policy_check_compares_with_the_old_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new.toml"
    new.write_text(
        (POLICIES / "strict.toml")
        .read_text(encoding="utf-8")
        .replace('deceptive = "quarantine"', 'deceptive = "warn"'),
        encoding="utf-8",
    )
    old = str(POLICIES / "strict.toml")
    assert main(["policy", "check", str(new), "--compare", old]) == 0
    out = capsys.readouterr().out
    assert out.endswith(
        f"changes from {old}:\n  verdict deceptive: quarantine -> warn\n"
        "  weaker now: verdict:deceptive\n"
    )
    assert main(["policy", "check", str(new), "--compare", old, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == {
        "verdicts": {"deceptive": {"old": "quarantine", "new": "warn"}},
        "weakened": ["verdict:deceptive"],
    }
    assert main(["policy", "check", old, "--compare", old]) == 0
    assert capsys.readouterr().out.endswith(f"no changes from {old}\n")


def test_policy_check_names_the_file_and_line_of_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.toml"
    cut.write_bytes((POLICIES / "strict.toml").read_bytes()[:1000])
    last_line = cut.read_bytes().rstrip().count(b"\n") + 1
    assert main(["policy", "check", str(cut)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        f"fromguard policy check: {cut}:{last_line}: the file does not end with the line "
        "'# fromguard-policy: end'"
    )
    empty = tmp_path / "empty.toml"
    empty.write_bytes(b"")
    assert main(["policy", "check", "--json", str(empty)]) == 2
    printed = json.loads(capsys.readouterr().out)
    assert (printed["ok"], printed["path"], printed["line"]) == (False, str(empty), None)
    assert printed["error"].startswith(f"{empty}: the file is empty")
    assert main(["policy", "check", str(cut), "--compare", str(POLICIES / "strict.toml")]) == 2
    assert main(["policy", "check", str(POLICIES / "strict.toml"), "--compare", str(cut)]) == 2
    assert f"{cut}:{last_line}:" in capsys.readouterr().err


def test_a_reader_that_stops_early_ends_the_scan_quietly(tmp_path: Path) -> None:
    """``fromguard scan ... | head``: no traceback, the status a shell gives for SIGPIPE."""
    mbox = tmp_path / "big.mbox"
    mbox.write_bytes(SAMPLE.with_name("sample.mbox").read_bytes() * 200)  # > a pipe's buffer
    scan = subprocess.Popen(
        [sys.executable, "-m", "fromguard.cli", "scan", str(mbox)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert scan.stdout is not None and scan.stderr is not None
    assert scan.stdout.readline().startswith(b"VERDICT")
    scan.stdout.close()
    assert (scan.wait(timeout=120), scan.stderr.read()) == (141, b"")

"""The ``fromguard`` command line (``fromguard.cli``)."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
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
    command = shutil.which("fromguard", path=str(Path(sys.executable).parent))
    assert command is not None, "the fromguard console script is not installed"
    done = subprocess.run([command, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"fromguard {installed}"
    assert fromguard.__version__ == installed


def test_runs_as_a_module() -> None:
    command = [sys.executable, "-m", "fromguard.cli", "check", "a@b.example (x)"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "comment (info)" in done.stdout

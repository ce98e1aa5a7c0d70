"""``fuzz/campaign.py``'s loop, with a stand-in for ``cargo fuzz run`` that prints what
libFuzzer prints: targets run to their goal in slices, ``--jobs`` of them at once, a
target below its goal given the jobs no other target needs, its further runs writing to
their own directories, moved into its corpus after; a target stops at its first saved
failure, a slice cut short is counted from its log when the campaign starts again (its
record as the campaign wrote it before ``--jobs`` too), and the summary shows each
target's state."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Prints a status line and the final stats as libFuzzer does (PER_SLICE executions),
# records when it ran, writes a find (named by its content, as libFuzzer does) to the
# first of its corpus directories, and records a run begun while another writes to the
# same directory; ``crashing`` saves an input and fails.
FAKE_FUZZER = """
import os, sys, time
from pathlib import Path
target, runs, artifacts, executions, crashing, *corpora = sys.argv[1:]
lock = Path(corpora[0] + ".lock")
try:
    os.close(os.open(lock, os.O_CREAT | os.O_EXCL))
except FileExistsError:  # a second run writing to one directory: noted, and done at once
    with open(runs, "a") as out:
        out.write(f"overlap {target} {time.monotonic()}\\n")
    print(f"stat::number_of_executed_units: {executions}")
    sys.exit(0)
with open(runs, "a") as out:
    out.write(f"start {target} {time.monotonic()}\\n")
Path(corpora[0], f"find-{os.getpid()}").write_bytes(b"found")
Path(corpora[0], "shared").write_bytes(b"found by every run")
time.sleep(1.3)  # longer than the loop's poll, so a slice is seen running
print(f"#{executions}\\tREDUCE cov: 17 ft: 40 corp: 9/1Kb exec/s: 1000", flush=True)
with open(runs, "a") as out:
    out.write(f"end {target} {time.monotonic()}\\n")
lock.unlink()
if crashing == "yes":
    Path(artifacts, "crash-0123").write_bytes(b"x")
    sys.exit(1)
print(f"stat::number_of_executed_units: {executions}")
"""
PER_SLICE = 1000


def load_campaign(home: Path, monkeypatch: pytest.MonkeyPatch, targets: List[str]) -> ModuleType:
    """campaign.py with its files under ``home`` and ``targets`` run by the stand-in."""
    spec = importlib.util.spec_from_file_location("campaign", ROOT / "fuzz" / "campaign.py")
    assert spec is not None and spec.loader is not None
    campaign = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(campaign)
    fuzz = home / "fuzz"
    for target in targets:
        (fuzz / "corpus" / target).mkdir(parents=True)
    (fuzz / "policy_fuzz.py").write_text("")  # found, and its interpreter probed for atheris
    fake = home / "fake_fuzzer.py"
    fake.write_text(FAKE_FUZZER)
    runs = home / "runs.txt"

    def slice_command(
        target: str, args: argparse.Namespace, seconds: int, corpora: List[Path]
    ) -> List[str]:
        crashing = "yes" if target == "crashes" else "no"
        artifacts = fuzz / "artifacts" / target
        return [sys.executable, str(fake), target, str(runs), str(artifacts), str(PER_SLICE),
                crashing, *map(str, corpora)]  # fmt: skip

    monkeypatch.setattr(campaign, "ROOT", home)
    monkeypatch.setattr(campaign, "FUZZ", fuzz)
    monkeypatch.setattr(campaign, "HOME", fuzz / "campaign")
    monkeypatch.setattr(campaign, "STATE", fuzz / "campaign" / "state.json")
    monkeypatch.setattr(campaign, "PID", fuzz / "campaign" / "campaign.pid")
    monkeypatch.setattr(campaign, "LOGS", fuzz / "campaign" / "logs")
    monkeypatch.setattr(campaign, "EXTRA", fuzz / "campaign" / "extra")
    monkeypatch.setattr(campaign, "cargo_targets", lambda: list(targets))
    monkeypatch.setattr(campaign, "has_atheris", lambda python: False)
    monkeypatch.setattr(campaign, "slice_command", slice_command)
    return campaign


def options(jobs: int, goal: int) -> argparse.Namespace:
    return argparse.Namespace(
        goal=goal, policy_goal=1, slice=1, python=sys.executable, targets=None,
        no_trace_compares=True, jobs=jobs,
    )  # fmt: skip


def runs_of(home: Path) -> List[Tuple[str, float, float]]:
    """Each run of the stand-in: (target, start, end); none wrote to a directory while
    another did."""
    starts: Dict[str, List[float]] = {}
    found = []
    for line in (home / "runs.txt").read_text().splitlines():
        event, target, when = line.split()
        assert event != "overlap", f"two runs of {target} wrote to one directory at once"
        if event == "start":
            starts.setdefault(target, []).append(float(when))
        else:
            found.append((target, starts[target].pop(0), float(when)))
    return found


def test_two_jobs_run_two_targets_at_once_to_their_goals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = ["parse", "rules", "crashes"]
    campaign = load_campaign(tmp_path, monkeypatch, targets)
    probes: List[str] = []  # the targets are found once a campaign (a probe is a process)
    monkeypatch.setattr(campaign, "has_atheris", lambda python: bool(probes.append(python)))
    campaign.run(options(jobs=2, goal=3 * PER_SLICE))
    assert probes == [sys.executable]

    state = json.loads(campaign.STATE.read_text())
    assert state["current"] == [] and state["settings"]["jobs"] == 2
    for target in ("parse", "rules"):
        entry = state["targets"][target]
        assert entry["executions"] == 3 * PER_SLICE and entry["slices"] == 3
        assert entry["stopped"] == "goal reached"
        assert (entry["cov"], entry["ft"]) == (17, 40)
    crashed = state["targets"]["crashes"]
    assert crashed["slices"] == 1 and crashed["stopped"] == "failure: crash-0123"

    runs = runs_of(tmp_path)
    assert len(runs) == 7
    overlapping = [
        (a, b) for a, sa, ea in runs for b, sb, eb in runs if a < b and sa < eb and sb < ea
    ]
    assert overlapping  # two targets did run at once
    moments = sorted({start for _, start, _ in runs})
    assert all(sum(s <= m < e for _, s, e in runs) <= 2 for m in moments)  # and never three

    campaign.summary(options(jobs=2, goal=3 * PER_SLICE))
    table = capsys.readouterr().out
    assert "campaign: not running" in table
    rows = {line.split()[0]: line for line in table.splitlines()[1:] if line.split()}
    assert "goal reached" in rows["parse"] and "3,000" in rows["parse"]
    assert "failure: crash-0123" in rows["crashes"] and "1/0/0" in rows["crashes"]
    assert table.rstrip().endswith("fuzz/artifacts/crashes/crash-0123")


def test_the_last_target_below_its_goal_takes_every_job_its_finds_moved_to_its_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = load_campaign(tmp_path, monkeypatch, ["parse"])
    campaign.run(options(jobs=2, goal=4 * PER_SLICE))
    runs = runs_of(tmp_path)
    assert len(runs) == 4
    assert any(sa < eb and sb < ea for (_, sa, ea), (_, sb, eb) in zip(runs, runs[1:]))
    entry = json.loads(campaign.STATE.read_text())["targets"]["parse"]
    assert entry["slices"] == 4 and entry["executions"] == 4 * PER_SLICE
    corpus = campaign.FUZZ / "corpus" / "parse"
    finds = sorted(path.name for path in corpus.iterdir())
    assert len(finds) == 5 and finds[-1] == "shared"  # four runs' own finds, one shared
    assert not campaign.EXTRA.exists() or not list(campaign.EXTRA.iterdir())
    logs = sorted(path.name for path in campaign.LOGS.iterdir())
    assert logs == [f"parse-{n:04d}.log" for n in range(1, 5)]


def test_a_further_run_cut_short_has_its_finds_moved_when_the_campaign_starts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = load_campaign(tmp_path, monkeypatch, ["parse"])
    left = campaign.EXTRA / "parse-0007"
    left.mkdir(parents=True)
    (left / "find-1").write_bytes(b"found")
    campaign.run(options(jobs=1, goal=PER_SLICE))
    assert (campaign.FUZZ / "corpus" / "parse" / "find-1").read_bytes() == b"found"
    assert not left.exists()


@pytest.mark.parametrize("record", ["one mapping", "a list"])
def test_a_slice_cut_short_is_counted_when_the_campaign_starts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: str
) -> None:
    campaign = load_campaign(tmp_path, monkeypatch, ["parse"])
    log = tmp_path / "cut.log"
    log.write_bytes(b"INFO: ...\n#700\tNEW    cov: 12 ft: 30 corp: 5/100b exec/s: 700\n")
    current: Any = {"target": "parse", "log": str(log), "start": time.time() - 5}
    campaign.save_state(
        {"targets": {}, "current": current if record == "one mapping" else [current]}
    )
    campaign.run(options(jobs=1, goal=700 + PER_SLICE))

    entry = json.loads(campaign.STATE.read_text())["targets"]["parse"]
    assert entry["executions"] == 700 + PER_SLICE
    assert entry["slices"] == 2 and entry["elapsed"] >= 5
    assert entry["stopped"] == "goal reached"

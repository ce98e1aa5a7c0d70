"""A resumable fuzz campaign: every target to a goal of executions, in the background.

    python3 fuzz/campaign.py                 # start (or resume) in the background
    python3 fuzz/campaign.py --summary       # where each target stands
    python3 fuzz/campaign.py --stop          # stop it (the counts so far are kept)
    python3 fuzz/campaign.py --clear TARGET  # a target stopped by a failure runs again

Targets: every ``[[bin]]`` of fuzz/Cargo.toml (a target added there joins the campaign
the next time it starts), and ``policy`` (fuzz/policy_fuzz.py, atheris) when the
``--python`` interpreter can import atheris. Runs are slices of ``--slice`` seconds,
round-robin over the targets below their goal, ``--jobs`` processes at a time (one by
default) under ``nice -n 19``
(the machine is shared): ``cargo fuzz run -O -s none`` (release, no debug assertions,
overflow checks on, no sanitizer: see fuzz/README.md; with ``--no-trace-compares``, without
the comparison tracing that takes two thirds of a run's time once the corpus covers what
it can: for the long haul to the goal, after the coverage has levelled off; a switch
rebuilds the targets) on fuzz/corpus/<target>/, which
each slice resumes from and adds to. A target's corpus has one owner: with more jobs than
targets below their goal, a target's further runs read its corpus and write what they find
to a directory of their own (fuzz/campaign/extra/<target>-NNNN/), moved into the corpus when
the run ends. State and logs live in fuzz/campaign/ (not in git):
``state.json`` holds each target's executions, edges, features and elapsed time, written
after every slice; a slice cut short by ``--stop`` or a reboot is counted from its log
when the campaign starts again. A target stops at its goal or at its first crash,
timeout or out-of-memory; the summary lists the saved input (fuzz/artifacts/<target>/).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
HOME = FUZZ / "campaign"
STATE = HOME / "state.json"
PID = HOME / "campaign.pid"
LOGS = HOME / "logs"
EXTRA = HOME / "extra"
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a program SIGPIPE ends
POLICY = "policy"

DEFAULT_GOAL = 30_000_000
DEFAULT_POLICY_GOAL = 500_000
DEFAULT_SLICE = 600
# Longest input per target: a From value needs no more than 4 KiB to reach every path
# (the limits are tested by the hostile-input tests), a message more for its header
# block; every cost is linear in the length, and libFuzzer grows lengths slowly anyway.
MAX_LEN = {"parse": 4096, POLICY: 4096}
DEFAULT_MAX_LEN = 16384
TIMEOUT = 5  # seconds per input: the core is linear, anything near this is a finding
FAILURE_KINDS = ("crash", "timeout", "oom", "leak")

_STATUS_LINE = re.compile(rb"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/", re.MULTILINE)
_EXECUTED = re.compile(rb"stat::number_of_executed_units: (\d+)")


def cargo_targets() -> List[str]:
    """The fuzz targets fuzz/Cargo.toml declares, in its order."""
    text = (FUZZ / "Cargo.toml").read_text(encoding="utf-8")
    names = []
    for block in re.split(r"(?m)^\[\[bin\]\]\s*$", text)[1:]:
        found = re.search(r'(?m)^name\s*=\s*"([^"]+)"', block)
        if found:
            names.append(found.group(1))
    return names


def has_atheris(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import atheris"], capture_output=True, env=python_env())
    return probe.returncode == 0


def python_env() -> Dict[str, str]:
    """The environment of the policy target: this checkout's fromguard first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "python"), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


def load_state() -> Dict[str, Any]:
    if STATE.exists():
        state: Dict[str, Any] = json.loads(STATE.read_text(encoding="utf-8"))
        return state
    return {"targets": {}, "current": None}


def save_state(state: Dict[str, Any]) -> None:
    HOME.mkdir(parents=True, exist_ok=True)
    temporary = STATE.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    temporary.replace(STATE)


def target_state(state: Dict[str, Any], target: str) -> Dict[str, Any]:
    entry: Dict[str, Any] = state["targets"].setdefault(
        target,
        {"executions": 0, "elapsed": 0.0, "slices": 0, "cov": None, "ft": None,
         "stopped": None},
    )  # fmt: skip
    return entry


def read_log(log: Path) -> Dict[str, Optional[int]]:
    """What a slice's log says: executions (the final count, or the last status line's
    for a slice cut short), and the last edges, features and corpus size."""
    data = log.read_bytes() if log.exists() else b""
    status = list(_STATUS_LINE.finditer(data))
    executed = _EXECUTED.search(data)
    found: Dict[str, Optional[int]] = {"executions": 0, "cov": None, "ft": None, "corp": None}
    if status:
        last = status[-1]
        found.update(
            executions=int(last.group(1)),
            cov=int(last.group(2)),
            ft=int(last.group(3)),
            corp=int(last.group(4)),
        )
    if executed:
        found["executions"] = int(executed.group(1))
    return found


def credit(state: Dict[str, Any], target: str, log: Path, elapsed: float) -> None:
    entry = target_state(state, target)
    found = read_log(log)
    entry["executions"] += found["executions"] or 0
    entry["elapsed"] += elapsed
    entry["slices"] += 1
    for key in ("cov", "ft"):
        if found[key] is not None:
            entry[key] = found[key]


def artifacts(target: str) -> List[Path]:
    directory = FUZZ / "artifacts" / target
    if not directory.is_dir():
        return []
    return sorted(
        path
        for path in directory.iterdir()
        if any(path.name.startswith(kind + "-") for kind in FAILURE_KINDS)
    )


def slice_command(
    target: str, args: argparse.Namespace, seconds: int, corpora: List[Path]
) -> List[str]:
    """The run of one slice; ``corpora``: the directory its finds go to, then any read."""
    artifact_prefix = f"{FUZZ / 'artifacts' / target}/"
    options = [
        f"-max_total_time={seconds}",
        f"-timeout={TIMEOUT}",
        f"-artifact_prefix={artifact_prefix}",
        "-print_final_stats=1",
        # libFuzzer re-reads only the directory it writes to, which no other run writes.
        "-reload=0",
        f"-max_len={MAX_LEN.get(target, DEFAULT_MAX_LEN)}",
    ]
    nice = ["nice", "-n", "19"]
    if target == POLICY:
        return [*nice, args.python, str(FUZZ / "policy_fuzz.py"), *map(str, corpora), *options]
    build = ["--no-trace-compares"] if args.no_trace_compares else []
    return [*nice, "cargo", "fuzz", "run", "-O", "-s", "none", *build, target,
            *map(str, corpora), "--", *options]  # fmt: skip


def ensure_corpus(target: str) -> None:
    """A target without a corpus directory yet is seeded by seed.py (which knows the
    targets it has seeds for); any other starts from an empty one."""
    corpus = FUZZ / "corpus" / target
    if not corpus.is_dir():
        subprocess.run([sys.executable, str(FUZZ / "seed.py")], cwd=ROOT, check=False)
    corpus.mkdir(parents=True, exist_ok=True)
    (FUZZ / "artifacts" / target).mkdir(parents=True, exist_ok=True)


def goal_of(target: str, args: argparse.Namespace) -> int:
    return int(args.policy_goal if target == POLICY else args.goal)


def targets_of(args: argparse.Namespace) -> List[str]:
    targets = cargo_targets()
    if (FUZZ / "policy_fuzz.py").exists() and has_atheris(args.python):
        targets.append(POLICY)
    if args.targets:
        wanted = args.targets.split(",")
        targets = [target for target in targets if target in wanted]
    return targets


def fold(extra: Path) -> None:
    """Move what a further run of a target found into the target's corpus (libFuzzer
    names an input by its hash: a name already there is the same input)."""
    corpus = FUZZ / "corpus" / extra.name.rsplit("-", 1)[0]
    for found in extra.iterdir():
        if (corpus / found.name).exists():
            found.unlink()
        else:
            found.replace(corpus / found.name)
    extra.rmdir()


class Slice:
    """One target's run under way: its process, log, start, and, for a further run of a
    target whose corpus another run owns, the directory its finds go to."""

    def __init__(self, target: str, log: Path, args: argparse.Namespace, owner: bool) -> None:
        self.target = target
        self.log = log
        self.start = time.time()
        corpus = FUZZ / "corpus" / target
        self.extra = None if owner else EXTRA / log.stem
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
        corpora = [corpus] if self.extra is None else [self.extra, corpus]
        env = (
            python_env()
            if target == POLICY
            else dict(os.environ, RUSTC_BOOTSTRAP="1", CARGO_BUILD_JOBS="1")
        )
        with log.open("wb") as out:
            self.child = subprocess.Popen(
                slice_command(target, args, args.slice, corpora),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def interrupt(self) -> None:
        """End the run early; libFuzzer prints its stats on SIGINT."""
        if self.child.poll() is not None:
            return
        os.killpg(self.child.pid, signal.SIGINT)
        try:
            self.child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.child.pid, signal.SIGKILL)
            self.child.wait()


def run(args: argparse.Namespace) -> None:
    """The campaign loop (in the background process): up to ``--jobs`` slices at once,
    of as many targets as are below their goal."""
    LOGS.mkdir(parents=True, exist_ok=True)
    state = load_state()
    state["settings"] = {
        "goal": args.goal,
        "policy_goal": args.policy_goal,
        "no_trace_compares": args.no_trace_compares,
        "jobs": args.jobs,
    }
    for current in current_slices(state):  # slices cut short: count what their logs show
        credit(state, current["target"], Path(current["log"]), time.time() - current["start"])
    for extra in sorted(EXTRA.iterdir()) if EXTRA.is_dir() else []:
        fold(extra)
    state["current"] = []
    save_state(state)
    # Set by SIGTERM (--stop): the slices under way end and are counted. (Only the
    # handler sets it; the loop reads it without a lock.)
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    targets = targets_of(args)  # once: the loop polls every second
    running: List[Slice] = []
    # A target whose run failed without a saved input (a build that fails, a crash before
    # any input ran) waits a minute before its next turn, not hammering a shared machine.
    not_before: Dict[str, float] = {}

    def runs(target: str) -> List[Slice]:
        return [under_way for under_way in running if under_way.target == target]

    def needs_another(target: str) -> bool:
        """Whether a run more of the target would be needed if its runs under way each
        did as many executions as its slices have on average."""
        entry = target_state(state, target)
        executions, slices = int(entry["executions"]), int(entry["slices"])
        per_slice = executions / slices if slices else 0
        return goal_of(target, args) - executions > len(runs(target)) * per_slice

    def record() -> None:
        state["current"] = [
            {"target": under_way.target, "log": str(under_way.log), "start": under_way.start}
            for under_way in running
        ]
        save_state(state)

    while True:
        for under_way in list(running):
            if stopping.is_set():
                under_way.interrupt()
            if under_way.child.poll() is None:
                continue
            running.remove(under_way)
            target = under_way.target
            credit(state, target, under_way.log, time.time() - under_way.start)
            if under_way.extra is not None:
                fold(under_way.extra)
            if under_way.child.returncode != 0 and not artifacts(target) and not stopping.is_set():
                entry = target_state(state, target)
                entry["errors"] = entry.get("errors", 0) + 1
                entry["last_error"] = str(under_way.log)
                not_before[target] = time.time() + 60
            record()
        if stopping.is_set():
            break
        pending = []
        for target in targets:
            entry = target_state(state, target)
            if entry["stopped"] is None and artifacts(target):
                entry["stopped"] = "failure: " + ", ".join(p.name for p in artifacts(target))
            if entry["stopped"] is None and entry["executions"] >= goal_of(target, args):
                entry["stopped"] = "goal reached"
            if entry["stopped"] is None:
                pending.append(target)
        if not pending and not running:
            break
        ready = [target for target in pending if not_before.get(target, 0) <= time.time()]
        while len(running) < args.jobs:
            ready = [target for target in ready if needs_another(target)]
            if not ready:
                break
            # Fewest runs under way, then fewest slices: every target runs before any runs
            # twice, and the rotation goes on where it was after a restart.
            target = min(ready, key=lambda t: (len(runs(t)), int(target_state(state, t)["slices"])))
            ensure_corpus(target)
            owned = any(under_way.extra is None for under_way in runs(target))
            number = int(target_state(state, target)["slices"]) + len(runs(target)) + 1
            running.append(Slice(target, LOGS / f"{target}-{number:04d}.log", args, not owned))
            record()
        time.sleep(1)
    record()
    PID.unlink(missing_ok=True)


def current_slices(state: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The slices under way as the state records them (one mapping before ``--jobs``)."""
    current = state.get("current") or []
    return [current] if isinstance(current, dict) else list(current)


def running_pid() -> Optional[int]:
    if not PID.exists():
        return None
    pid = int(PID.read_text().strip())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def start(args: argparse.Namespace) -> None:
    pid = running_pid()
    if pid is not None:
        print(f"the campaign is already running (pid {pid}); --summary to see it")
        return
    HOME.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--foreground",
               f"--goal={args.goal}", f"--policy-goal={args.policy_goal}",
               f"--slice={args.slice}", f"--python={args.python}"]  # fmt: skip
    if args.targets:
        command.append(f"--targets={args.targets}")
    if args.no_trace_compares:
        command.append("--no-trace-compares")
    command.append(f"--jobs={args.jobs}")
    with (HOME / "campaign.log").open("ab") as out:
        child = subprocess.Popen(
            ["nohup", "nice", "-n", "19", *command],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    PID.write_text(f"{child.pid}\n")
    print(f"campaign started (pid {child.pid}); logs in {LOGS.relative_to(ROOT)}/")


def stop_campaign() -> None:
    pid = running_pid()
    if pid is None:
        print("no campaign running")
        return
    os.kill(pid, signal.SIGTERM)
    print(f"stopping the campaign (pid {pid}): the current slice ends within a minute")


def _to_go(entry: Dict[str, Any], goal: int, runs: int) -> str:
    """Run time left to the goal at the rate so far of its own slices, ``runs`` at once
    (the campaign takes about that times the targets still running per job)."""
    left = goal - entry["executions"]
    if left <= 0 or not entry["executions"]:
        return "-"
    return f"{left / (entry['executions'] / entry['elapsed']) / max(1, runs) / 3600:.1f} h"


def summary(args: argparse.Namespace) -> None:
    state = load_state()
    vars(args).update(state.get("settings", {}))  # the goals the campaign runs with
    pid = running_pid()
    current = current_slices(state)
    if pid is None:
        print("campaign: not running")
    else:
        doing = "".join(f", now {c['target']} ({c['log']})" for c in current)
        tracing = ", without comparison tracing" if args.no_trace_compares else ""
        print(f"campaign: running (pid {pid}){doing}{tracing}")
    header = ("target", "executions", "goal", "edges", "features", "corpus", "failures",
              "elapsed", "exec/s", "to go", "status")  # fmt: skip
    rows = [header]
    names = list(dict.fromkeys([*targets_of(args), *state["targets"]]))
    for target in names:
        entry = target_state(state, target)
        executions = entry["executions"]
        under_way = [Path(c["log"]) for c in current if c["target"] == target]
        for log in under_way:  # the slices under way so far
            executions += read_log(log)["executions"] or 0
        corpus = FUZZ / "corpus" / target
        failures = artifacts(target)
        kinds = [sum(p.name.startswith(kind + "-") for p in failures) for kind in FAILURE_KINDS]
        times = f" x{len(under_way)}" if len(under_way) > 1 else ""
        # A target left out of the run (--targets) is not stopped at its goal by the loop.
        done = "goal reached" if executions >= goal_of(target, args) else "pending"
        status = entry["stopped"] or (f"running{times}" if under_way else done)
        elapsed = entry["elapsed"]
        rows.append((
            target,
            f"{executions:,}",
            f"{goal_of(target, args):,}",
            str(entry["cov"] or "-"),
            str(entry["ft"] or "-"),
            f"{sum(1 for _ in corpus.iterdir()):,}" if corpus.is_dir() else "-",
            "/".join(map(str, kinds[:3])),
            f"{elapsed / 3600:.1f} h",
            f"{entry['executions'] / elapsed:,.0f}" if elapsed else "-",
            _to_go(entry, goal_of(target, args), len(under_way)),
            status,
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print("failures: crashes/timeouts/ooms, saved under fuzz/artifacts/<target>/;")
    print("to go: run time to the goal at the rate so far of the target's own slices,")
    print("       as many at once as are under way")
    for target in names:
        for path in artifacts(target):
            print(f"  {path.relative_to(ROOT)}")


def clear(target: str) -> None:
    """A stopped target runs again: once its failure is a regression input and fixed,
    the saved input is removed (fuzz/artifacts/<target>/ must hold none) and its stop
    forgotten. Only while no campaign runs (the campaign writes the state)."""
    if running_pid() is not None:
        sys.exit("stop the campaign first (--stop)")
    if artifacts(target):
        sys.exit(f"{target}: first move its saved inputs to fuzz/regressions/{target}/")
    state = load_state()
    target_state(state, target)["stopped"] = None
    save_state(state)
    print(f"{target}: runs again when the campaign starts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--goal", type=float, default=DEFAULT_GOAL,
                        help="executions per cargo-fuzz target (default 3e7)")  # fmt: skip
    parser.add_argument("--policy-goal", type=float, default=DEFAULT_POLICY_GOAL,
                        help="executions of the policy target (default 5e5)")  # fmt: skip
    parser.add_argument("--slice", type=int, default=DEFAULT_SLICE,
                        help="seconds per run before the next target's turn")  # fmt: skip
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter for policy_fuzz.py (with atheris)")  # fmt: skip
    parser.add_argument("--targets", help="comma-separated subset of the targets")
    parser.add_argument("--no-trace-compares", action="store_true",
                        help="build the cargo-fuzz targets without comparison tracing: about"
                        " 3x the executions once coverage has levelled off")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once, one process each (default 1)")  # fmt: skip
    parser.add_argument("--summary", action="store_true", help="print where each stands")
    parser.add_argument("--stop", action="store_true", help="stop the running campaign")
    parser.add_argument("--clear", metavar="TARGET", help="let a stopped target run again")
    parser.add_argument("--foreground", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        if args.summary:
            summary(args)
        elif args.stop:
            stop_campaign()
        elif args.clear:
            clear(args.clear)
        elif args.foreground:
            run(args)
        else:
            start(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``--summary | head``): nothing more can be written, not
        # even what is buffered, so stdout goes to /dev/null lest the flush at exit raise
        # again; the status is a shell's for a program SIGPIPE ends, as fromguard's own.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)


if __name__ == "__main__":
    main()

"""``import fromguard``, ``fromguard check`` and ``fromguard scan`` where the services'
packages are missing: a Windows wheel has no ``grp`` or ``pwd``, and the ``test`` extra
that the wheel jobs install has no pymilter, aiohttp, aiosmtpd, Dask or prometheus-client.
Each test runs a fresh interpreter in which those modules cannot be imported (``None`` in
``sys.modules``), so that nothing this process imported hides an import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample.mbox"

# What only the services need: POSIX's user and group databases, and the packages of the
# milter, serve, smtp and dask extras (pymilter installs the modules milter and Milter).
MISSING = (
    "grp",
    "pwd",
    "milter",
    "Milter",
    "aiohttp",
    "aiosmtpd",
    "dask",
    "distributed",
    "fsspec",
    "prometheus_client",
)

SERVICE_MODULES = ("milter", "serve", "smtp", "_service", "dask_scan")


def run_without_extras(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter where every module of ``MISSING`` fails to
    import; it prints, as its last line, the fromguard modules it ended with."""
    prelude = f"import sys\nfor name in {MISSING!r}:\n    sys.modules[name] = None\n"
    epilogue = (
        "\nimport json\n"
        "print(json.dumps(sorted(n for n in sys.modules if n.startswith('fromguard.'))))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + code + epilogue], capture_output=True, text=True
    )


def imported_modules(done: subprocess.CompletedProcess[str]) -> list[str]:
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return modules


def services_imported(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [m for m in imported_modules(done) if m.rpartition(".")[2] in SERVICE_MODULES]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``fromguard.cli.main(args)`` without the extras; it prints ``status N``, N what
    ``main`` returned or the code it exited with."""
    return run_without_extras(
        "from fromguard.cli import main\n"
        "try:\n"
        f"    status = main({list(args)!r})\n"
        "except SystemExit as exit:\n"
        "    status = exit.code\n"
        "print('status', status)\n"
    )


def test_the_blocked_modules_really_cannot_be_imported() -> None:
    names = ", ".join(MISSING)
    done = run_without_extras(
        "failed = []\n"
        f"for name in {MISSING!r}:\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        failed.append(name)\n"
        "print(', '.join(failed))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == names


def test_import_fromguard_and_its_cli() -> None:
    done = run_without_extras("import fromguard, fromguard.cli, fromguard.scan\n")
    assert done.returncode == 0, done.stderr
    assert "fromguard.cli" in imported_modules(done)
    assert not services_imported(done), imported_modules(done)


def test_check() -> None:
    done = run_cli("check", "Jane Doe <jane@example.org>")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "verdict:   VALID"
    assert "status 0" in lines
    assert not services_imported(done)


def test_scan() -> None:
    done = run_cli("scan", "--format", "jsonl", str(SAMPLE))
    assert done.returncode == 0, done.stderr
    assert "status 1" in done.stdout.splitlines()  # the sample holds flagged messages
    assert not services_imported(done)


def test_help_lists_the_services_without_importing_them() -> None:
    done = run_cli("--help")
    assert done.returncode == 0, done.stderr
    assert "status 0" in done.stdout.splitlines()
    for command in ("check", "scan", "milter", "serve", "smtp-filter"):
        assert f"    {command} " in done.stdout or f"    {command}\n" in done.stdout, command
    assert not services_imported(done)


def test_a_service_that_cannot_import_is_a_usage_error() -> None:
    done = run_cli("milter", "--policy", "policy.toml")
    assert done.returncode == 0, done.stderr
    assert "status 2" in done.stdout.splitlines()
    assert done.stderr.splitlines()[-1].startswith(
        "fromguard: error: milter cannot run on this system: "
    ), done.stderr
    assert "grp" in done.stderr

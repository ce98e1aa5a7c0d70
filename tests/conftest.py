"""Shared pytest fixtures.

``impl`` runs a test once per implementation of ``parse``: ``core`` (``fromguard.parse``,
the Rust extension) and ``reference`` (``fromguard.reference.parse``, pure Python). The
core is never skipped: when the extension does not import, every ``core`` test fails
with the import error (use ``-k reference`` while working on the reference alone).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

PYTHON_DIR = Path(__file__).resolve().parent.parent / "python"

# Run from a checkout without installing: use the sources under python/ (where
# `maturin develop` also puts the built extension).
if importlib.util.find_spec("fromguard") is None:
    sys.path.insert(0, str(PYTHON_DIR))


def _import_reference() -> Any:
    """``fromguard.reference``, even while ``fromguard/__init__.py`` cannot import (the
    extension not built yet): then the package's modules are loaded without its
    ``__init__``, so the reference still runs and only the ``core`` tests fail."""
    try:
        return importlib.import_module("fromguard.reference")
    except ImportError:
        if "fromguard" in sys.modules and hasattr(sys.modules["fromguard"], "parse"):
            raise
        where = PYTHON_DIR / "fromguard"
        spec = importlib.util.spec_from_file_location(
            "fromguard", where / "__init__.py", submodule_search_locations=[str(where)]
        )
        assert spec is not None
        sys.modules["fromguard"] = importlib.util.module_from_spec(spec)  # not executed
        for name in [n for n in sys.modules if n.startswith("fromguard.")]:
            del sys.modules[name]
        return importlib.import_module("fromguard.reference")


def _core_parse() -> Callable[..., Any]:
    try:
        import fromguard

        parse: Callable[..., Any] = getattr(fromguard, "parse")  # noqa: B009 (no stub before the core exists)
    except Exception as error:  # ImportError, AttributeError: the core is not built
        pytest.fail(f"the Rust core (fromguard.parse) is not available: {error!r}", pytrace=False)
    return parse


@pytest.fixture(params=["core", "reference"])
def impl(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """The ``parse`` function of one implementation (ids ``core`` and ``reference``)."""
    if request.param == "core":
        return _core_parse()
    parse: Callable[..., Any] = _import_reference().parse
    return parse


@pytest.fixture(scope="module", params=["core", "reference"])
def rewrite(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """The MIME rewrite of one engine (ids ``core``: ``fromguard._mime.rewrite``, the Rust
    core's; ``reference``: ``fromguard.reference.mime.rewrite``). Module-scoped, so that
    hypothesis tests can take it."""
    if request.param == "core":
        try:
            from fromguard._core import _rewrite  # noqa: F401 (the core is built)
            from fromguard._mime import rewrite as core_rewrite
        except Exception as error:  # ImportError: the core is not built
            pytest.fail(f"the Rust core's rewrite is not available: {error!r}", pytrace=False)
        return core_rewrite
    _import_reference()
    from fromguard.reference.mime import rewrite as reference_rewrite

    return reference_rewrite


@pytest.fixture
def policy_engine(
    rewrite: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """``Policy.process`` with the rewrite of one engine (``rewrite``'s ids)."""
    monkeypatch.setattr("fromguard._mime.rewrite", rewrite)
    return rewrite


# --- the services' tests (marker `services`) -----------------------------------------

# The test modules that need the test-services extra (pymilter, aiohttp, aiosmtpd, Dask,
# prometheus-client) and a POSIX system: every test in them is marked `services`. Where
# that extra is not installed (the wheel jobs but Linux x86_64's), they are deselected with
# -m "not services"; and where such a module cannot even be imported (no dask, no grp on
# Windows), it is collected as one test that fails with the import error, so that it is
# deselected with the rest, or fails, never skips. (A module missing here fails .ci/run's
# run of .ci/test_wheel.py, whose venv has no test-services extra.)
SERVICE_MODULES = frozenset(
    {
        "test_dask_object_storage.py",
        "test_dask_scan.py",
        "test_deployment.py",
        "test_exim.py",
        "test_milter.py",
        "test_pool.py",  # the milter's decision pool: POSIX signals (SIGHUP, pthread_sigmask)
        "test_postfix.py",
        "test_rspamd.py",
        "test_serve.py",
        "test_smtp_filter.py",
        "test_smtp_sessions.py",
    }
)


def pytest_pycollect_makemodule(
    module_path: Path, parent: pytest.Collector
) -> Optional[pytest.Module]:
    if module_path.name not in SERVICE_MODULES:
        return None
    module: pytest.Module = _ServiceModule.from_parent(parent, path=module_path)
    module.add_marker(pytest.mark.services)
    return module


class _ServiceModule(pytest.Module):
    def collect(self) -> Any:
        try:
            return super().collect()
        except self.CollectError as error:  # the module does not import
            return [_ImportFailure.from_parent(self, name="import", reason=str(error))]


class _ImportFailure(pytest.Item):
    """A service module that cannot be imported: run, it fails with the import error."""

    def __init__(self, *, reason: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason = reason

    def runtest(self) -> None:
        pytest.fail(self.reason, pytrace=False)

    def reportinfo(self) -> Any:
        return self.path, None, f"import {self.path.name}"


# --- conformance report (tests/test_conformance.py) -----------------------------------

CONFORMANCE_ROWS = pytest.StashKey[List[Dict[str, Any]]]()


@pytest.fixture
def conformance_rows(request: pytest.FixtureRequest) -> List[Dict[str, Any]]:
    """Rows (impl, file, cases, used, agree, rate, n/a) of the agreement table that is
    printed at the end of the run."""
    return request.config.stash.setdefault(CONFORMANCE_ROWS, [])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = config.stash.get(CONFORMANCE_ROWS, [])
    if not rows:
        return
    terminalreporter.write_sep("=", "conformance suites: agreement with each source")
    terminalreporter.write_line(
        f"{'impl':<9} {'file':<36} {'cases':>5} {'used':>5} {'agree':>5} {'rate':>7}  not applicable"
    )
    for row in sorted(rows, key=lambda r: (r["impl"], r["file"])):
        terminalreporter.write_line(
            f"{row['impl']:<9} {row['file']:<36} {row['cases']:>5} {row['used']:>5} {row['agree']:>5}"
            f" {row['rate']:>7.1%}  {row['n/a']}"
        )

"""What the ``lab`` fixtures of the tests that run real mail software (Postfix, Exim,
rspamd) share: each module's lab is started once, after a check for what it needs, and
closed after the module's last test."""

from __future__ import annotations

from typing import Callable, Iterator, Protocol, Sequence, TypeVar

import pytest


class Closable(Protocol):
    def close(self) -> None: ...


Lab = TypeVar("Lab", bound=Closable)


def running_lab(start: Callable[[], Lab], missing: Sequence[str], software: str) -> Iterator[Lab]:
    """For a fixture to ``yield from``: the lab ``start()`` returns, closed when the
    fixture ends; the tests fail instead where this machine lacks what is ``missing``
    (``.ci/run`` installs it: a lab that cannot run is a failure, not a skip)."""
    if missing:
        pytest.fail(f"the {software} tests need {', '.join(missing)} (.ci/run installs them)")
    lab = start()
    yield lab
    lab.close()

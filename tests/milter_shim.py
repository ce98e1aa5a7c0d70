"""``fromguard milter`` and ``fromguard smtp-filter`` for tests: a message can ask the policy step to be slow or to
fail, so that the watchdog and the fail mode can be seen from outside. A header field
``X-Test-Delay: SECONDS`` sleeps before the decision, ``X-Test-Raise: yes`` raises,
``X-Test-Panic: yes`` makes the compiled core panic on this message (the core's test
hook, ``fromguard._core._inject_panic``). Only this script changes the behaviour; the
milter and the filter themselves have no such hook.

Run as ``python tests/milter_shim.py --policy ... [milter options]``, or
``python tests/milter_shim.py smtp-filter --policy ... [filter options]``.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any, Tuple

from fromguard import MessageCheck, cli
from fromguard._core import _inject_panic
from fromguard.policy import Outcome, Policy

# Policy.process calls process_with_check, which fromguard serve calls directly: the
# hooks apply to both.
_original = Policy.process_with_check
_DELAY = re.compile(rb"^X-Test-Delay:[ \t]*([0-9.]+)", re.MULTILINE | re.IGNORECASE)
_RAISE = re.compile(rb"^X-Test-Raise:", re.MULTILINE | re.IGNORECASE)
_PANIC = re.compile(rb"^X-Test-Panic:", re.MULTILINE | re.IGNORECASE)


def _process(self: Policy, raw: bytes, **options: Any) -> Tuple[Outcome, MessageCheck]:
    header = raw.split(b"\r\n\r\n", 1)[0]
    delay = _DELAY.search(header)
    if delay:
        time.sleep(float(delay.group(1)))
    if _RAISE.search(header):
        raise RuntimeError("raised on request (X-Test-Raise)")
    if _PANIC.search(header):
        _inject_panic(raw)  # the core's check of exactly this message panics
    return _original(self, raw, **options)


Policy.process_with_check = _process  # type: ignore[method-assign]

if __name__ == "__main__":
    arguments = sys.argv[1:]
    sys.exit(cli.main(arguments if arguments[:1] == ["smtp-filter"] else ["milter", *arguments]))

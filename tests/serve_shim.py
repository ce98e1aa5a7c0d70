"""``fromguard serve`` for tests, with ``milter_shim.py``'s hooks: a message can ask the
policy step to be slow (``X-Test-Delay: SECONDS``), to raise or to make the core panic.

Run as ``python tests/serve_shim.py --policy ... [serve options]``.
"""

from __future__ import annotations

import sys

import milter_shim  # noqa: F401  (patches Policy.process with the hooks)
from fromguard import cli

if __name__ == "__main__":
    sys.exit(cli.main(["serve", *sys.argv[1:]]))

"""The wheel jobs' test command: `python .ci/test_wheel.py [--services] [PYTEST ARGUMENT...]`.

.github/workflows/wheels.yml runs it on every platform against the wheel it built, and
.ci/run against its own, each installed with `pip install --only-binary :all:
"fromguard-...whl[test]"` (the test-services extra too with --services). It fails unless
`import fromguard` loads that installation (.ci/check_installed.py), then runs pytest on
tests/, deselecting by marker:
- always browser, rspamd and exim: Chromium, rspamd and Exim, which only .ci/run sets up
  (on Debian);
- without --services, services and postfix: the test-services extra and POSIX, and a
  Postfix run as root;
- on a system other than Linux, linux (/proc).
Extra arguments go to pytest; the exit status is pytest's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONLY_IN_CI_RUN = ("browser", "rspamd", "exim")
SERVICES = ("services", "postfix")


def main() -> int:
    parser = argparse.ArgumentParser(description="Test the installed wheel as the wheel jobs do.")
    parser.add_argument(
        "--services",
        action="store_true",
        help="run the services' tests too (Postfix's need root and Debian's postfix, "
        "swaks and libmilter)",
    )
    options, pytest_arguments = parser.parse_known_args()
    check = subprocess.run([sys.executable, str(ROOT / ".ci" / "check_installed.py")])
    if check.returncode != 0:
        return check.returncode
    deselected = ONLY_IN_CI_RUN if options.services else ONLY_IN_CI_RUN + SERVICES
    if not sys.platform.startswith("linux"):
        deselected += ("linux",)
    markers = " and ".join(f"not {marker}" for marker in deselected)
    print(f"pytest -m {markers!r}", flush=True)
    # From the checkout's root, which has no fromguard/: the import finds the installation.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", markers]
    return subprocess.run([*command, *pytest_arguments], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())

"""Fails unless `import fromguard` loads the installed distribution (site-packages), not
the checkout's python/ directory or an editable build: the tests must run against the
wheel. Prints where it loaded from."""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

import fromguard

where = Path(fromguard.__file__).resolve().parent
site_packages = Path(sysconfig.get_paths()["platlib"]).resolve()
if where.parent != site_packages:
    sys.exit(f"fromguard is imported from {where}, not from {site_packages}")
print(f"fromguard {fromguard.__version__} from {where}")

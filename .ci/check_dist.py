"""Checks what `maturin build` and `maturin sdist` put in dist/: `python .ci/check_dist.py DIST`.

The wheel must be abi3 (cp39), hold every file of python/fromguard (sources, `_core.pyi`,
`py.typed`, the data tables), the compiled `_core`, the license and the console script,
under the Cargo workspace version. The sdist must hold what a build from it needs: the
workspace, both crates (the core with its data), the package sources with their data, the
license and README.
Prints one line per checked archive; exits 1 naming every missing or wrong entry.
"""

from __future__ import annotations

import re
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "python" / "fromguard"


def workspace_version() -> str:
    text = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    match = re.search(r'^\[workspace\.package\][^\[]*?^version = "([^"]+)"', text, re.M | re.S)
    if match is None:
        sys.exit("Cargo.toml: no [workspace.package] version")
    return match.group(1)


def package_files() -> List[str]:
    """Every file of the Python package as the checkout has it, relative to python/."""
    return sorted(
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix not in {".so", ".pyd", ".pyc"}
    )


def check_wheel(wheel: Path, version: str) -> List[str]:
    problems: List[str] = []
    if not re.fullmatch(rf"fromguard-{re.escape(version)}-cp39-abi3-[^-]+\.whl", wheel.name):
        problems.append(f"{wheel.name}: not fromguard-{version}-cp39-abi3-<platform>.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = f"fromguard-{version}.dist-info"
        for name in package_files():
            if name not in names:
                problems.append(f"{wheel.name}: {name} missing")
        if not any(re.fullmatch(r"fromguard/_core(\.abi3\.so|\.pyd)", n) for n in names):
            problems.append(f"{wheel.name}: the compiled fromguard/_core missing")
        if f"{dist_info}/licenses/LICENSE" not in names:
            problems.append(f"{wheel.name}: {dist_info}/licenses/LICENSE missing")
        else:
            shipped = archive.read(f"{dist_info}/licenses/LICENSE")
            if shipped != (ROOT / "LICENSE").read_bytes():
                problems.append(f"{wheel.name}: the shipped LICENSE differs from ./LICENSE")
        metadata = archive.read(f"{dist_info}/METADATA").decode("utf-8")
        if f"\nVersion: {version}\n" not in metadata:
            problems.append(f"{wheel.name}: METADATA does not give Version: {version}")
        scripts = archive.read(f"{dist_info}/entry_points.txt").decode("utf-8")
        if not re.search(r"^fromguard ?= ?fromguard\.cli:main$", scripts, re.M):
            problems.append(f"{wheel.name}: no fromguard console script")
    return problems


def check_sdist(sdist: Path, version: str) -> List[str]:
    problems: List[str] = []
    top = f"fromguard-{version}"
    if sdist.name != f"{top}.tar.gz":
        problems.append(f"{sdist.name}: not {top}.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.removeprefix(f"{top}/") for name in archive.getnames()}
    needed = [
        "Cargo.toml",
        "Cargo.lock",
        "pyproject.toml",
        "LICENSE",
        "README.md",
        "rust/core/Cargo.toml",
        "rust/core/build.rs",
        "rust/python/Cargo.toml",
        "rust/python/src/lib.rs",
    ]
    core = ROOT / "rust" / "core"
    # The core's sources, child modules included, and the data its build reads.
    needed += sorted(
        path.relative_to(ROOT).as_posix()
        for path in [*(core / "src").rglob("*.rs"), *(core / "data").iterdir()]
    )
    needed += [f"python/{name}" for name in package_files()]
    problems += [f"{sdist.name}: {name} missing" for name in needed if name not in names]
    return problems


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python .ci/check_dist.py DIST_DIRECTORY")
    dist = Path(sys.argv[1])
    version = workspace_version()
    wheels = sorted(dist.glob("fromguard-*.whl"))
    sdists = sorted(dist.glob("fromguard-*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        sys.exit(f"{dist}: expected one wheel and one sdist, found {wheels + sdists}")
    problems = check_wheel(wheels[0], version) + check_sdist(sdists[0], version)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    for archive in wheels + sdists:
        print(f"{archive.name}: contents checked (version {version})")


if __name__ == "__main__":
    main()

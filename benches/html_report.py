"""The HTML report at scale: its size, how long the scan takes to write it, and how long
headless Chromium takes to load and draw it.

    python benches/html_report.py [--messages 100000] [--runs 3] [--keep DIR]

Writes an mbox of ``--messages`` messages: examples/sample.mbox's 32 (clean mail and one
per attack class) over and over, each copy with its own addresses (``alice7@``,
``mallory41.example``: the sender-domain chart has many domains) and its own Date, the
copies spread over a year, one in a hundred without a Date. Then it runs ``fromguard scan
--policy examples/policies/strict.toml --html`` on it (the table goes to /dev/null) and
opens the page in headless Chromium (``chromium --headless --dump-dom``) ``--runs``
times, first as it opens, then searched (``#q=mallory4``) and filtered
(``#code=address-in-display-name&verdict=DECEPTIVE``). For each it prints the medians of
the time from the start of loading until the page is drawn (``data-load-ms``: reading and
parsing the file, then the script), of the script's part (``data-render-ms``: reading
the JSON, the charts, the summary, the list's first page), of the list's part (what its
status line says: selecting the messages, the filter or search over every row, and
drawing the page of 100) and of the browser's whole run
(its start, and writing out the DOM, 30 MB of it the data, included). The scan's time is
measured without ``--html`` and with it, ``--runs`` times each, alternately: the best
of each is printed.
"""

from __future__ import annotations

import argparse
import datetime
import email.utils
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample.mbox"
POLICY = ROOT / "examples" / "policies" / "strict.toml"
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
VIEWS = (
    ("as opened", ""),
    ("searched", "q=mallory4"),
    ("filtered", "code=address-in-display-name&verdict=DECEPTIVE"),
)


def sample_messages() -> List[bytes]:
    """The sample's messages, each with its From_ line."""
    text = SAMPLE.read_bytes()
    return [m for m in re.split(rb"(?m)^(?=From sample@example\.org )", text) if m.strip()]


def write_mbox(path: Path, count: int) -> None:
    messages = sample_messages()
    span = datetime.timedelta(days=365) / count
    with open(path, "wb") as out:
        for n in range(count):
            raw = messages[n % len(messages)]
            copy = n // len(messages)
            raw = raw.replace(b"mallory.example", b"mallory%d.example" % (copy % 97))
            raw = raw.replace(b"alice@", b"alice%d@" % copy).replace(b"bob@", b"bob%d@" % copy)
            date = email.utils.format_datetime(START + span * n).encode()
            if n % 100 == 0:
                raw = re.sub(rb"(?m)^Date: .*\n", b"", raw, count=1)
            else:
                raw = re.sub(rb"(?m)^Date: .*$", b"Date: " + date, raw, count=1)
            out.write(raw)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("html_report.py needs Chromium (Debian: apt-get install chromium)")


def load(browser: str, page: Path, fragment: str) -> Tuple[float, int, int, int, int]:
    """Seconds the browser ran, the ms from the start of loading until the page was
    drawn, the ms its script took, the ms of the list's filter and first page, and the
    messages shown."""
    url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    with tempfile.TemporaryDirectory() as profile:
        began = time.perf_counter()
        dom = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True, text=True, check=True, timeout=600,
        ).stdout  # fmt: skip
        wall = time.perf_counter() - began
    patterns = (r'load-ms="(\d+)"', r'render-ms="(\d+)"', r"(\d+) ms</span>", r'shown="(\d+)"')
    found = [re.search(pattern, dom) for pattern in patterns]
    if None in found:
        sys.exit("the page did not draw itself: " + dom[-500:])
    loaded, drawn, listed, shown = (int(match.group(1)) for match in found if match)
    return wall, loaded, drawn, listed, shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the mbox and the page here")
    args = parser.parse_args()
    browser = chromium()
    with tempfile.TemporaryDirectory() as scratch:
        where = args.keep or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        mbox, page = where / "bench.mbox", where / "report.html"
        write_mbox(mbox, args.messages)
        print(f"{args.messages:,} messages, mbox {mbox.stat().st_size / 1e6:.1f} MB")
        scans: Dict[str, List[float]] = {"alone": [], "--html": []}
        for _ in range(args.runs):  # alternately, so that other load hits both alike
            for name, html in (("alone", []), ("--html", ["--html", str(page)])):
                began = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "fromguard.cli", "scan", "--policy", str(POLICY),
                     "--output", "/dev/null", *html, str(mbox)],
                    check=False, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                scans[name].append(time.perf_counter() - began)
        for name, times in scans.items():
            print(f"scan {name}: {min(times):.1f} s (the best of {args.runs})")
        size = page.stat().st_size
        print(f"the page: {size:,} bytes ({size / 1e6:.1f} MB)")
        for name, fragment in VIEWS:
            runs = [load(browser, page, fragment) for _ in range(args.runs)]
            wall, loaded, drawn, listed = (statistics.median(r[i] for r in runs) for i in range(4))
            print(
                f"{name:<10} ({fragment or 'no filter'}): {runs[0][4]:,} messages shown "
                f"{loaded:.0f} ms after the page started to load ({drawn:.0f} ms of it the "
                f"script, {listed:.0f} ms the list's filter and page); the browser ran "
                f"{wall:.1f} s in all (median of {args.runs})"
            )


if __name__ == "__main__":
    main()

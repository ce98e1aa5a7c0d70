"""Headless Chromium for the HTML report's tests: the DOM a page produces once its script
has run, and screenshots. ``.ci/run`` installs Debian's ``chromium`` package."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT = 120  # seconds: a cold start on a loaded 2-core machine takes several


def find_chromium() -> Optional[str]:
    return next((path for path in map(shutil.which, CANDIDATES) if path), None)


class Chromium:
    """One browser executable; each call starts a fresh headless instance with its own
    throw-away profile (so tests running at once do not share one)."""

    def __init__(self, executable: str) -> None:
        self.executable = executable

    def _run(self, *arguments: str) -> str:
        with tempfile.TemporaryDirectory(prefix="fromguard-chromium-") as profile:
            result = subprocess.run(
                [
                    self.executable,
                    "--headless",
                    "--no-sandbox",  # tests may run as root, where the sandbox cannot start
                    "--disable-gpu",
                    "--no-first-run",
                    f"--user-data-dir={profile}",
                    *arguments,
                ],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"chromium exited {result.returncode}: {result.stderr[-2000:]}")
        return result.stdout

    def dom(self, page: Path, fragment: str = "") -> "Element":
        """The page's DOM after its scripts ran (``fragment``: what follows ``#``)."""
        url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
        return parse_html(self._run("--dump-dom", url))

    def screenshot(
        self, page: Path, out: Path, width: int, height: int, fragment: str = ""
    ) -> None:
        url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
        self._run(
            f"--screenshot={out}", f"--window-size={width},{height}", "--hide-scrollbars", url
        )


class Element:
    """An element of the dumped DOM: its tag, attributes and children (text as str)."""

    def __init__(self, tag: str, attrs: Dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children: List["Element | str"] = []

    @property
    def text(self) -> str:
        """The text content, as ``textContent`` gives it."""
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    @property
    def classes(self) -> List[str]:
        return self.attrs.get("class", "").split()

    def iter(self) -> Iterator["Element"]:
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def find_all(self, tag: Optional[str] = None, **attrs: Optional[str]) -> List["Element"]:
        """Descendants with this tag (any when None) and attributes (None: any value;
        ``class_`` matches one class; other underscores are dashes: ``data_count`` is
        ``data-count``)."""
        found = []
        for element in self.iter():
            if tag is not None and element.tag != tag:
                continue
            if all(element._has(name, value) for name, value in attrs.items()):
                found.append(element)
        return found

    def find(self, tag: Optional[str] = None, **attrs: Optional[str]) -> "Element":
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag or '*'}> with {attrs}"
        return found[0]

    def by_id(self, ident: str) -> "Element":
        return self.find(id=ident)

    def _has(self, name: str, value: Optional[str]) -> bool:
        if name == "class_":
            return value in self.classes
        name = name.replace("_", "-")
        return name in self.attrs if value is None else self.attrs.get(name) == value


_VOID = frozenset(
    "area base br col embed hr img input link meta source track wbr".split()
)  # elements that never have an end tag


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack: List[Element] = [self.root]

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        self.stack[-1].children.append(Element(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root

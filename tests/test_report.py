"""``fromguard scan --html``: the page's data (Python alone), and the page as headless
Chromium renders it (marked ``browser``): the counts, a flagged message with its carets,
shadow addresses and reasons, the charts, filters and pages, hostile values kept as text.
Without Chromium the browser tests fail: ``.ci/run`` installs it. Screenshots are written
under ``target/test-output/html-report/`` (``FROMGUARD_TEST_OUTPUT`` moves it)."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import re
import struct
import unicodedata
from pathlib import Path
from typing import Dict, List

import pytest

import fromguard
from browser import Chromium, Element, find_chromium
from fromguard import scan as scan_module
from fromguard._explain import explain
from fromguard.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample.mbox"
STRICT = ROOT / "examples" / "policies" / "strict.toml"
OUTPUT = Path(os.environ.get("FROMGUARD_TEST_OUTPUT", ROOT / "target" / "test-output"))

HOSTILE_NAME = "\u202eevil</script><script>document.title='pwned'</script><!--<img src=x>"


def message(from_value: bytes, date: bytes = b"Mon, 02 Nov 2026 09:00:00 +0000") -> bytes:
    dated = b"Date: " + date + b"\n" if date else b""
    return b"From: " + from_value + b"\nTo: you@example.com\nSubject: s\n" + dated + b"\nHi.\n"


def mbox(*messages: bytes) -> bytes:
    return b"".join(b"From x@example.org Mon Nov  2 09:00:00 2026\n" + m + b"\n" for m in messages)


def embedded(page: Path) -> Dict[str, object]:
    """The data the page holds."""
    return embedded_text(page.read_text(encoding="utf-8"))


def embedded_text(html: str) -> Dict[str, object]:
    match = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    assert match is not None
    data: Dict[str, object] = json.loads(match.group(1))
    return data


def terminal_summary(text: str) -> Dict[str, Dict[str, int]]:
    """The terminal summary's sections as {section: {name: count}}."""
    sections: Dict[str, Dict[str, int]] = {}
    current: Dict[str, int] = {}
    for line in text[text.index("\nverdicts:") :].splitlines():
        if line.startswith("  "):
            name, count = line.strip().rsplit(None, 1)
            current[name] = int(count)
        elif line.endswith(":"):
            current = sections.setdefault(line.split(" (")[0].rstrip(":"), {})
    return sections


# -- The data, without a browser ------------------------------------------------------


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        (b"Mon, 02 Nov 2026 10:30:00 +0100", datetime.datetime(2026, 11, 2, 9, 30)),
        (b"2 Nov 2026 09:30 -0000", datetime.datetime(2026, 11, 2, 9, 30)),
        (b"Mon, 02 Nov 2026\n 23:30:00 -0100", datetime.datetime(2026, 11, 3, 0, 30)),
        (b"yesterday, around noon", None),
        (b"Mon, 02 Nov 99999 09:00:00 +0000", None),
        (b"", None),
    ],
)
def test_the_message_date_in_utc(date: bytes, expected: "datetime.datetime | None") -> None:
    item = scan_module.check(None, "m.eml", None, message(b"a@example.org", date))
    if expected is None:
        assert item.date is None
    else:
        assert item.date == expected.replace(tzinfo=datetime.timezone.utc)


def test_a_date_in_the_body_is_not_the_message_date() -> None:
    raw = b"From: a@example.org\nSubject: s\n\nDate: Mon, 02 Nov 2026 09:00:00 +0000\n"
    assert scan_module.check(None, "m.eml", None, raw).date is None


def test_each_field_s_lines_are_explain_s(tmp_path: Path) -> None:
    """The page rebuilds each field's carets from a value line and (blanks, carets, rest)
    triples; rebuilt as its script does, they are explain()'s text, for every field of
    every sample message that has findings."""
    page = tmp_path / "report.html"
    assert main(["scan", "--format", "jsonl", "--html", str(page), str(SAMPLE)]) == 1
    data = embedded(page)
    strings: List[str] = data["strings"]  # type: ignore[assignment]
    rebuilt = {}
    for row in data["rows"]:  # type: ignore[attr-defined]
        for name, value, marks in (row[11] or [[]])[0]:
            lines = [value] + [" " * a + "^" * b + strings[c] for a, b, c in marks]
            rebuilt[(row[1], strings[name])] = "\n".join(lines)
    expected = {}
    for number, raw in enumerate(sample_messages(), start=1):
        item = scan_module.check(None, "x", number, raw)
        for field in item.fields:
            if field.findings or field.shadows:
                expected[(number, field.name)] = explain(field)
    assert rebuilt == expected
    assert len(expected) > 20


def sample_messages() -> List[bytes]:
    text = SAMPLE.read_bytes()
    parts = re.split(rb"(?m)^From sample@example\.org .*\n", text)[1:]
    return [part for part in parts if part.strip()]


def test_hostile_values_cannot_end_the_data_or_reorder_text(tmp_path: Path) -> None:
    (tmp_path / "a<script>alert(1)<!--.eml").write_bytes(
        message(f'"{HOSTILE_NAME}" <m@mallory.example>'.encode())
    )
    page = tmp_path / "report.html"
    assert main(["scan", "--html", str(page), str(tmp_path)]) == 1
    html = page.read_text(encoding="utf-8")
    assert html.count("<script") == 2 and html.count("</script>") == 2
    assert "<!--" not in html and "<img" not in html
    assert not [c for c in html if unicodedata.category(c) in ("Cf", "Cc") and c not in "\n"]
    # No source outside the page: a policy that allows only its own style and script.
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)
    assert csp is not None and csp.group(1).startswith("default-src 'none';")
    page_itself = re.sub(r'(?s)<script type="application/json".*?</script>', "", html)
    assert not re.search(r"\b(?:src|href)=", page_itself)
    assert re.findall(r"\w+://", page_itself) == ["http://"]  # the SVG namespace, never fetched


def test_only_flagged_lists_flagged_messages_and_counts_all(tmp_path: Path) -> None:
    (tmp_path / "box.mbox").write_bytes(
        mbox(message(b"a@example.org"), message(b'"ceo@bank.example" <m@mallory.example>'))
    )
    page = tmp_path / "report.html"
    assert main(["scan", "--only-flagged", "--html", str(page), str(tmp_path)]) == 1
    data = embedded(page)
    assert [row[1] for row in data["rows"]] == [2]  # type: ignore[attr-defined]
    assert data["summary"]["messages"] == 2  # type: ignore[index]
    assert data["timeline"] == {"days": [["2026-11-02", [1, 0, 1, 0]]], "undated": [0, 0, 0, 0]}


def test_an_unwritable_html_path_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["scan", "--html", str(tmp_path / "missing" / "r.html"), str(SAMPLE)])
    assert exit.value.code == 2
    assert "cannot write" in capsys.readouterr().err


def test_html_and_output_cannot_be_one_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["scan", "--output", str(tmp_path / "r"), "--html", str(tmp_path / "r"), str(SAMPLE)])
    assert exit.value.code == 2
    assert "--html and --output name the same file" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_report_is_written_by_run() -> None:
    """``run(html=...)`` alone, as a program embedding the scan calls it."""
    out = io.StringIO()
    status = scan_module.run([SAMPLE], None, "jsonl", io.StringIO(), io.StringIO(), html=out)
    assert status == 1 and out.getvalue().startswith("<!DOCTYPE html>")
    assert embedded_text(out.getvalue())["summary"]["messages"] == 32  # type: ignore[index]


# -- In the browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Chromium:
    executable = find_chromium()
    if executable is None:
        pytest.fail("the HTML report's tests need Chromium (.ci/run installs Debian's chromium)")
    return Chromium(executable)


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> "tuple[Path, str]":
    """The sample mailbox scanned with the strict policy: the page, and the terminal's
    output (its summary)."""
    page = tmp_path_factory.mktemp("report") / "sample.html"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["scan", "--policy", str(STRICT), "--html", str(page), str(SAMPLE)])
    assert status == 1
    return page, out.getvalue()


@pytest.mark.browser
def test_the_counts_are_the_terminal_summary_s(
    chromium: Chromium, sample_report: "tuple[Path, str]"
) -> None:
    page, terminal = sample_report
    dom = chromium.dom(page)
    counts = {
        e.attrs["data-count"]: int(e.text.replace(",", "")) for e in dom.find_all(data_count=None)
    }
    summary = terminal_summary(terminal)
    assert (counts["messages"], counts["flagged"], counts["files"]) == (32, 27, 1)
    assert {k: counts[f"verdict:{k.upper()}"] for k in summary["verdicts"]} == summary["verdicts"]
    assert {k: counts[f"action:{k}"] for k in summary["actions"] if summary["actions"][k]} == {
        k: n for k, n in summary["actions"].items() if n
    }
    assert {k: counts[f"code:{k}"] for k in summary["finding codes"]} == summary["finding codes"]
    assert len([k for k in counts if k.startswith("code:")]) == len(summary["finding codes"])
    assert dom.by_id("status").attrs["data-shown"] == "32"
    filtered = chromium.dom(page, "action=reject")
    assert filtered.by_id("status").attrs["data-shown"] == str(summary["actions"]["reject"])


@pytest.mark.browser
def test_a_flagged_message_shows_its_carets_shadows_and_reasons(
    chromium: Chromium, sample_report: "tuple[Path, str]"
) -> None:
    page, _ = sample_report
    dom = chromium.dom(page)
    rows = dom.by_id("rows").find_all("li", class_="msg")
    assert len(rows) == 32
    (row,) = [r for r in rows if r.find(class_="where").text.endswith("#13")]
    assert row.attrs["data-verdict"] == "DECEPTIVE" and row.attrs["data-flagged"] == "1"
    pre = row.find("pre", data_field="From")
    assert pre.text == fromguard.parse(b' "ceo@bank.example" <m@mallory.example>').explain()
    assert "^^^^^^^^^^^^^^^^^^  address-in-display-name (deceptive)" in pre.text
    assert row.find(class_="shadows").text == (
        "shadow addresses: ceo@bank.example (from display-name)"
    )
    assert row.find(class_="reasons").text == "policy: quarantine for verdict:deceptive"
    # A clean message has no carets; a legacy one has them one click away.
    (clean,) = [r for r in rows if r.find(class_="where").text.endswith("#1")]
    assert not clean.find_all("pre")
    (legacy,) = [r for r in rows if r.find(class_="where").text.endswith("#5")]
    assert "^  obs-phrase (legacy)" in legacy.find("details").find("pre", data_field="From").text


@pytest.mark.browser
def test_the_charts_are_drawn(chromium: Chromium, sample_report: "tuple[Path, str]") -> None:
    page, _ = sample_report
    dom = chromium.dom(page)
    time = dom.by_id("chart-time").find("svg")
    assert {r.attrs.get("data-verdict") for r in time.find_all("rect", class_="bar")} == {
        "VALID",
        "LEGACY",
        "DECEPTIVE",
        "INVALID",
    }
    assert "2026-11-02" in [t.text for t in time.find_all("text")]
    domains = dom.by_id("chart-domains").find("svg")
    assert domains.find("title").text == "mallory.example"
    codes = dom.by_id("chart-codes").find("svg")
    assert len(codes.find_all("rect", class_="bar")) == 15


@pytest.mark.browser
def test_screenshots(chromium: Chromium, sample_report: "tuple[Path, str]") -> None:
    """The sample's report as a reader first sees it, and its deceptive messages."""
    page, _ = sample_report
    where = OUTPUT / "html-report"
    where.mkdir(parents=True, exist_ok=True)
    for name, fragment, size in (
        ("sample.png", "", (1280, 1400)),
        ("sample-deceptive.png", "verdict=DECEPTIVE", (1280, 2400)),
    ):
        shot = where / name
        if shot.exists():
            shot.unlink()
        chromium.screenshot(page, shot, *size, fragment=fragment)
        png = shot.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == size


@pytest.mark.browser
def test_filters_search_and_pages(chromium: Chromium, tmp_path: Path) -> None:
    messages = []
    for n in range(250):
        day = b"%02d" % (1 + n % 3)
        date = b"Mon, " + day + b" Nov 2026 09:00:00 +0000" if n < 240 else b"not a date"
        sender = (
            b"user%d@example.org" % n if n % 2 else b'"ceo@bank.example" <m%d@mallory.example>' % n
        )
        messages.append(message(sender, date))
    mail = tmp_path / "mail"
    mail.mkdir()
    (mail / "box.mbox").write_bytes(mbox(*messages))
    (mail / "notes.txt").write_text("not mail\n", encoding="utf-8")
    page = tmp_path / "report.html"
    assert main(["scan", "--format", "jsonl", "--html", str(page), str(mail)]) == 1

    def shown(fragment: str) -> "tuple[int, List[Element]]":
        dom = chromium.dom(page, fragment)
        rows = dom.by_id("rows").find_all("li", class_="msg")
        return int(dom.by_id("status").attrs["data-shown"]), rows

    total, rows = shown("")
    assert total == 250 and len(rows) == 100
    total, rows = shown("page=3")
    assert total == 250 and len(rows) == 50
    assert rows[0].find(class_="where").text.endswith("#201")
    total, rows = shown("verdict=DECEPTIVE")
    assert total == 125 and all(r.attrs["data-verdict"] == "DECEPTIVE" for r in rows)
    total, rows = shown("code=address-in-display-name&q=M17")  # case does not matter
    assert total == len([n for n in range(0, 250, 2) if f"m{n}@".startswith("m17")]) == 5
    assert all("<m17" in r.find(class_="from").text for r in rows)
    total, _ = shown("q=ceo%40bank.example")  # the shadow address is searched
    assert total == 125
    total, _ = shown("date=2026-11-02")  # what a click on the day's bar shows
    assert total == len([n for n in range(240) if n % 3 == 1]) == 80
    total, rows = shown("date=none&verdict=VALID")  # the "no date" bar's valid part
    assert total == 5 and all(r.find(class_="date").text == "no date" for r in rows)
    total, rows = shown("order=worst&page=2")  # 125 deceptive first, then 125 valid
    assert [r.attrs["data-verdict"] for r in rows] == ["DECEPTIVE"] * 25 + ["VALID"] * 75
    dom = chromium.dom(page)
    labels = [t.text for t in dom.by_id("chart-time").find_all("text")]
    assert {"2026-11-01", "2026-11-02", "2026-11-03", "no date"} <= set(labels)
    assert dom.find(data_count="skipped").text == "1"
    assert dom.find(data_count="skipped:not mail").text == "1"
    (skipped,) = dom.by_id("skipped").find_all("tr")
    assert skipped.find(class_="where").text.endswith("notes.txt")


@pytest.mark.browser
def test_hostile_values_stay_text_in_the_page(chromium: Chromium, tmp_path: Path) -> None:
    (tmp_path / "a<script>alert(1)<!--.eml").write_bytes(
        message(f'"{HOSTILE_NAME}" <m@mallory.example>'.encode())
    )
    page = tmp_path / "report.html"
    assert main(["scan", "--html", str(page), str(tmp_path)]) == 1
    dom = chromium.dom(page)
    assert dom.find("body").attrs["data-render-ms"]  # the page's own script ran (CSP hash)
    assert len(dom.find_all("script")) == 2 and not dom.find_all("img")
    assert dom.find("title").text.startswith("fromguard scan: ")
    (row,) = dom.by_id("rows").find_all("li", class_="msg")
    assert row.find(class_="where").text.endswith("/a<script>alert(1)<!--.eml")
    # The bidi override shown as an escape in the text, as a picture under the carets.
    assert "\\u202eevil</script><script>document.title='pwned'" in row.find(class_="from").text
    assert '"\ufffdevil</script>' in row.find("pre", data_field="From").text
    assert "\u202e" not in dom.find("main").text


def test_a_long_header_excerpt_loses_its_middle(tmp_path: Path) -> None:
    """A line too long can be most of the message: its excerpt is kept to 300 characters."""
    (tmp_path / "a.eml").write_bytes(
        b"From: a@example.org\nX-Long: " + b"a" * 3000 + b"z" * 3000 + b"\nSubject: s\n\n.\n"
    )
    page = tmp_path / "report.html"
    assert main(["scan", "--html", str(page), str(tmp_path)]) == 1
    data = embedded(page)
    strings: List[str] = data["strings"]  # type: ignore[assignment]
    ((label, excerpt),) = data["rows"][0][11][1]  # type: ignore[index]
    assert strings[label].startswith("header ") and " line-too-long (invalid): " in strings[label]
    assert excerpt == "a" * 150 + "\u2026" + "z" * 150


def test_a_long_from_value_is_elided_above_its_carets(tmp_path: Path) -> None:
    name = "Bank " + "x" * 2000
    value = f'"{name}" <ceo@bank.example>'
    (tmp_path / "a.eml").write_bytes(message(value.encode()))
    page = tmp_path / "report.html"
    assert main(["scan", "--html", str(page), str(tmp_path / "a.eml")]) == 1
    (row,) = embedded(page)["rows"]  # type: ignore[misc]
    assert row[5] == value[:150] + "\u2026" + value[-150:]
    assert row[6] == name[:150] + "\u2026" + name[-150:]
    ((_, line, _),) = row[11][0]  # explain()'s value line: the whole value
    assert line == " " + value

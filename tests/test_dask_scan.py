"""``fromguard scan --dask``: mbox byte ranges give every message once, a scan on a
LocalCluster gives what a local scan gives record by record and the same reports, the
HTML one included (the sample mailbox, and a generated tree of 20,000 messages in every
layout, as paths and as file:// URLs), and a worker killed mid-scan loses nothing. And the examples that judge a Parquet file's From
values with pyarrow.dataset and with Dask DataFrame."""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import dask
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

import fromguard
from fromguard import Verdict, dask_scan, scan
from fromguard.cli import main
from fromguard.policy import Policy
from fromguard.scan import Evidence, Skipped
from mail_tree import write_tree
from samples import case_values
from test_report import embedded_text

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample.mbox"
STRICT = ROOT / "examples" / "policies" / "strict.toml"

Record = Union[Evidence, Skipped]

# Two worker processes, one thread each; no dashboard (its port may be taken).
CLUSTER = dict(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)

# Separators that split and lines that do not: a From_ line after an empty line splits
# when it carries a time of day or a header field follows it.
TRICKY_MBOX = (
    b"From a@example.org Mon Nov  2 09:00:00 2026\n"
    b"From: A <a@example.org>\n\nbody\n\n"
    b"From here on, no split (no time, no field after)\n\n"
    b"From b@example.org\nFrom: B <b@example.org>\n\nsplit: a field follows\n"
    b"From c@example.org Mon Nov  2 09:00:00 2026\nnot after an empty line: no split\n\n"
    b"From d@example.org Mon Nov  2 09:00:00 2026\n"
    b"From e@example.org Mon Nov  2 09:00:00 2026\n"
    b"From: E <e@example.org>\n\n"
    b"From f@example.org Mon Nov  2 09:00:00 2026\r\nFrom: F <f@example.org>\r\n\r\n"
    b"body\r\n\r\n"
    b"From g@example.org Mon Nov  2 09:00:00 2026\n\n\n"
    b"From h@example.org Mon Nov  2 09:00:00 2026\n"
)


def local_records(paths: List[Path], policy: Optional[Policy]) -> List[Record]:
    """What ``scan.run`` reports, as records: the walk's skipped, then each step's."""
    listed, _ = scan._listing(paths, io.StringIO(), lambda path: scan._LOCAL)
    sniffed = [item if isinstance(item, Skipped) else scan._sniff(item) for item in listed]
    records: List[Record] = [item for item in sniffed if isinstance(item, Skipped)]
    for source in sniffed:
        if isinstance(source, scan._Source):
            for step in scan._steps(policy, source):
                records += step.results
    return records


def messages_in_ranges(path: Path, cuts: List[int]) -> List[Tuple[bytes, int]]:
    """The messages (raw, size) of the mbox at ``path`` read range by range."""
    entry = scan._LOCAL.entry(path)
    source = scan._sniff(scan._Found(scan._LOCAL, entry, False))
    assert isinstance(source, scan._Source) and source.mbox
    found: List[Tuple[bytes, int]] = []
    for start, end in zip(cuts, cuts[1:]):
        skipped: List[Skipped] = []
        found += [(m.raw, m.size) for m in scan._messages(source, skipped, (start, end))]
        assert all(item.kind == "malformed" for item in skipped)
    return found


@pytest.mark.parametrize("name", ["sample", "tricky"])
def test_every_range_split_gives_each_message_once(tmp_path: Path, name: str) -> None:
    path = SAMPLE if name == "sample" else tmp_path / "tricky.mbox"
    if name == "tricky":
        path.write_bytes(TRICKY_MBOX)
    size = path.stat().st_size
    whole = messages_in_ranges(path, [0, size])
    assert len(whole) == (32 if name == "sample" else 7)
    assert sum(message_size for _, message_size in whole) == size
    for cut in range(1, size):  # every split in two
        assert messages_in_ranges(path, [0, cut, size]) == whole, cut
    for chunk in (1, 2, 3, 7, 64, 333, 1000):  # and into many ranges
        assert messages_in_ranges(path, [*range(0, size, chunk), size]) == whole, chunk


def test_tasks_shrink_to_the_end_and_a_large_compressed_mbox_starts_early() -> None:
    """The default cut: every file once and in order, each mbox's ranges end to end;
    tasks that shrink from at most CHUNK_BYTES to about 1/16 of a thread's share; a
    compressed mbox larger than its task's share alone in a task that starts early."""
    mib = 1024 * 1024

    def source(
        name: str, size: int, mbox: bool = False, compression: Optional[str] = None
    ) -> scan._Source:
        return scan._Source(scan._LOCAL, name, mbox, compression, size)

    sources = [source(f"maildir/{i}", 4000) for i in range(3000)]  # 12 MB of files
    sources += [source("big.mbox", 40 * mib, mbox=True), source("small.mbox", 900_000, True)]
    sources += [source(f"export/{i}", 3000) for i in range(500)]
    sources += [source("old.mbox.gz", 2 * mib, True, "gzip")]  # about 8 MiB of mail
    sources += [source(f"tail/{i}", 2000) for i in range(2000)]
    total, threads = sum(item.size for item in sources), 4
    budget = functools.partial(dask_scan._guided, total=total, threads=threads)
    chunks = list(dask_scan._pieces(sources, budget))

    pieces = [piece for chunk in chunks for piece in chunk.pieces]
    assert [piece.source for piece in pieces if piece.span is None] == [
        item for item in sources if item.path != "big.mbox"
    ]
    spans = [piece.span for piece in pieces if piece.source.path == "big.mbox" and piece.span]
    assert len(spans) > 1 and spans[0][0] == 0 and spans[-1][1] == 40 * mib
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert len({end - start for start, end in spans}) <= 2  # one size, give or take a byte

    def mail(chunk: dask_scan._Chunk) -> int:
        return sum(
            dask_scan._work(p.source) if p.span is None else p.span[1] - p.span[0]
            for p in chunk.pieces
        )

    early = [chunk for chunk in chunks if chunk.early]
    assert [[piece.source.path for piece in chunk.pieces] for chunk in early] == [["old.mbox.gz"]]
    ordinary = [mail(chunk) for chunk in chunks if not chunk.early]
    assert max(ordinary) <= dask_scan.CHUNK_BYTES
    least = total // (threads * dask_scan._TAIL_SHARES)
    assert ordinary[0] > 4 * least  # large tasks first
    assert all(least - 4000 <= size <= 2 * least for size in ordinary[-5:-1])  # small ones last
    assert len(chunks) < 2 * total // least  # and not a crowd of them

    fixed = list(dask_scan._pieces(sources, functools.partial(dask_scan._fixed, mib)))
    assert all(mail(chunk) <= mib for chunk in fixed if not chunk.early)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(**CLUSTER) as cluster:
        with Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dask") / "mail"
    write_tree(root, 20_000)
    return root


def test_the_sample_gives_what_a_local_scan_gives(client: Client) -> None:
    policy = Policy.from_toml(STRICT)
    expected = local_records([SAMPLE], policy)
    for chunk in (None, 1000):  # one task; ranges of 1,000 bytes
        found = list(dask_scan.results(client, [SAMPLE], policy, chunk_bytes=chunk))
        assert found == expected


@pytest.mark.slow
def test_a_tree_of_every_layout_gives_what_a_local_scan_gives(client: Client, tree: Path) -> None:
    expected = local_records([tree], None)
    assert sum(isinstance(item, Evidence) for item in expected) > 19_000
    assert {item.kind for item in expected if isinstance(item, Skipped)} == {
        "not-mail",
        "unreadable",
        "malformed",
    }
    found = list(dask_scan.results(client, [tree], chunk_bytes=256 * 1024))
    assert len(found) == len(expected)
    for index, (got, want) in enumerate(zip(found, expected)):
        assert got == want, index


def test_files_are_sniffed_as_they_are_listed(
    client: Client, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first sniffing tasks go out while the walk goes on, of SNIFF_BATCH files each
    until every worker thread has one, then twice as many each round, up to 16 times."""
    listed, _ = scan._listing([tree], io.StringIO(), lambda path: scan._LOCAL)
    files = sum(isinstance(item, scan._Found) for item in listed)
    walked = 0
    batches: List[Tuple[int, int]] = []  # (files in the batch, files the walk had found)
    walk = scan._Listing.__iter__
    sniffed = dask_scan._sniffed

    def counted(listing: scan._Listing) -> Iterator[scan._Listed]:
        nonlocal walked
        for item in walk(listing):
            walked += 1
            yield item

    def recorded(client: Client, batch: List[scan._Found]) -> Any:
        batches.append((len(batch), walked))
        return sniffed(client, batch)

    monkeypatch.setattr(scan._Listing, "__iter__", counted)
    monkeypatch.setattr(dask_scan, "_sniffed", recorded)
    found = list(dask_scan.results(client, [tree]))

    assert sum(size for size, _ in batches) == files > 6000
    threads = sum(client.nthreads().values())
    doubled = [dask_scan.SNIFF_BATCH << min(n // threads, 4) for n in range(len(batches) - 1)]
    assert [size for size, _ in batches[:-1]] == doubled
    assert doubled[:4] == [256, 256, 512, 512] and batches[-1][0] <= doubled[-1] * 2
    assert batches[0][1] < files / 10  # the first went out early in the walk
    assert found == local_records([tree], None)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "table"])
def test_the_reports_are_a_local_scan_s(client: Client, tree: Path, fmt: str) -> None:
    """Every format, the summary, what is listed as skipped and the exit status."""
    policy = Policy.from_toml(STRICT)
    local_out, local_err = io.StringIO(), io.StringIO()
    status = scan.run([tree], policy, fmt, local_out, local_err, width=100)
    out, err = io.StringIO(), io.StringIO()
    assert dask_scan.run(client, [tree], policy, fmt, out, err, width=100) == status == 1
    assert out.getvalue() == local_out.getvalue()
    assert err.getvalue() == local_err.getvalue()


def page_data(page: str) -> Dict[str, Any]:
    """The data an HTML report holds, but the time it was made."""
    data = embedded_text(page)
    del data["generated"]
    return data


def assert_same_pages(page: str, local_page: str) -> None:
    """The two pages hold the same data: the table of strings, each message's row, and
    the rest (summary, timeline, skipped)."""
    data, local = page_data(page), page_data(local_page)
    assert data["strings"] == local["strings"]
    rows, local_rows = data["rows"], local["rows"]
    assert isinstance(rows, list) and isinstance(local_rows, list)
    assert len(rows) == len(local_rows) > 0
    for index, (row, local_row) in enumerate(zip(rows, local_rows)):
        assert row == local_row, index
    assert data == local


@pytest.mark.parametrize("only_flagged", [False, True])
def test_the_sample_s_html_report_is_a_local_scan_s(client: Client, only_flagged: bool) -> None:
    policy = Policy.from_toml(STRICT)
    local_page = io.StringIO()
    options: Dict[str, Any] = dict(only_flagged=only_flagged)
    status = scan.run(
        [SAMPLE], policy, "csv", io.StringIO(), io.StringIO(), html=local_page, **options
    )
    for chunk in (None, 1000):  # one task; ranges of 1,000 bytes
        page = io.StringIO()
        out = io.StringIO()
        options.update(html=page, chunk_bytes=chunk)
        assert (
            dask_scan.run(client, [SAMPLE], policy, "csv", out, io.StringIO(), **options) == status
        )
        assert_same_pages(page.getvalue(), local_page.getvalue())


@pytest.mark.slow
def test_the_tree_s_html_report_is_a_local_scan_s(client: Client, tree: Path) -> None:
    local_page, page = io.StringIO(), io.StringIO()
    status = scan.run([tree], None, "jsonl", io.StringIO(), io.StringIO(), html=local_page)
    out, err = io.StringIO(), io.StringIO()
    assert (
        dask_scan.run(client, [tree], None, "jsonl", out, err, html=page, chunk_bytes=256 * 1024)
        == status
    )
    assert_same_pages(page.getvalue(), local_page.getvalue())


@pytest.mark.slow
def test_file_urls_read_through_fsspec(client: Client, tree: Path) -> None:
    url = tree.as_uri()
    expected = local_records([tree], None)
    found = list(dask_scan.results(client, [url], chunk_bytes=1024 * 1024))
    assert len(found) == len(expected)
    for got, want in zip(found, expected):
        assert got.path == "file://" + want.path
        assert got == with_path(want, got.path)


def with_path(record: Record, path: str) -> Record:
    if isinstance(record, Skipped):
        return record._replace(path=path)
    return dataclasses.replace(record, path=path)


@pytest.mark.slow
def test_a_worker_killed_mid_scan_loses_nothing(tree: Path) -> None:
    expected = local_records([tree], None)
    with LocalCluster(**CLUSTER) as cluster:
        with Client(cluster) as client:
            pids = client.run(os.getpid)
            records = dask_scan.results(client, [tree], chunk_bytes=128 * 1024)
            found: List[Record] = []
            while not any(isinstance(item, Evidence) for item in found):
                found.append(next(records))  # the first task is done, the next running
            # A worker checking mail, or holding checked mail the driver has not taken yet.
            busy = sorted(
                address
                for held in (client.processing(), client.has_what())
                for address, keys in held.items()
                if any(str(key).startswith("_records-") for key in keys)
            )
            assert busy
            victim = pids[busy[0]]
            os.kill(victim, signal.SIGKILL)
            found += records
            with pytest.raises(ProcessLookupError):  # dead, and reaped by its nanny
                os.kill(victim, 0)
    assert len(found) == len(expected)
    evidence = [item for item in found if isinstance(item, Evidence)]
    assert len(evidence) == sum(isinstance(item, Evidence) for item in expected)
    assert found == expected


def test_the_command_line(
    client: Client, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    address = client.scheduler.address
    local_page, page = tmp_path / "local.html", tmp_path / "dask.html"
    status = main(["scan", "--format", "jsonl", "--html", str(local_page), str(SAMPLE)])
    local = capsys.readouterr()
    command = ["scan", "--dask", address, "--format", "jsonl", "--html", str(page), str(SAMPLE)]
    assert main(command) == status == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (local.out, local.err)
    assert_same_pages(page.read_text(encoding="utf-8"), local_page.read_text(encoding="utf-8"))


def test_a_scheduler_out_of_reach_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(SystemExit) as stopped:
            main(["scan", "--dask", "tcp://127.0.0.1:9", str(SAMPLE)])
    assert stopped.value.code == 2
    assert "cannot reach the Dask scheduler tcp://127.0.0.1:9: " in capsys.readouterr().err


def test_a_bad_local_cluster_size_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["scan", "--dask", "local:two", str(SAMPLE)])
    assert stopped.value.code == 2
    assert "--dask local:N needs a number of workers, not 'two'" in capsys.readouterr().err


@pytest.mark.parametrize("example", ["verdicts_pyarrow.py", "verdicts_dask.py"])
def test_the_parquet_examples_write_each_value_s_verdict(tmp_path: Path, example: str) -> None:
    values = [*(value.decode("utf-8", "replace") for value in case_values()), None]
    source = tmp_path / "froms.parquet"
    table = pa.table({"id": range(len(values)), "from": values})
    pq.write_table(table, source, row_group_size=500)  # several batches and partitions
    target = tmp_path / "judged"
    script = ROOT / "examples" / "parquet" / example
    subprocess.run([sys.executable, str(script), str(source), str(target)], check=True)
    judged = pq.read_table(target).sort_by("id")
    assert judged.column_names == ["id", "from", "verdict"]
    expected = [Verdict(fromguard.verdicts([value or ""])[0]).name.lower() for value in values]
    assert judged.column("verdict").to_pylist() == expected
    assert judged.column("from").to_pylist() == values


def test_all_is_exact() -> None:
    defined = {
        name
        for name, value in vars(dask_scan).items()
        if not name.startswith("_")
        and getattr(value, "__module__", dask_scan.__name__) == dask_scan.__name__
        and not isinstance(value, type(dask_scan))
    }
    assert sorted(dask_scan.__all__) == sorted(defined)

"""``fromguard scan --dask SCHEDULER PATH...``: the scan of ``scan.py`` on a Dask cluster
(``pip install fromguard[dask]``).

The driver lists the files (local paths, which every worker must see at the same place,
or fsspec URLs: ``s3://``, ``gs://``, ``file://``, ...); the workers sniff them, a batch of
files per task, and then check the mail: small files grouped into tasks of about
``chunk_bytes``, and an uncompressed mbox larger than that split into byte ranges of
that size (``scan._mbox_range``: a range holds the messages that start in it, so no
message is split or read twice). Each task runs ``scan.py``'s own per-message code and
sends its ``Evidence`` and ``Skipped`` records back; the driver takes them in the order
of a local scan (file, then message: an mbox range's messages are renumbered after the
ranges before it) and writes the same report with the same writers. A worker that dies
loses nothing: the scheduler runs its tasks again elsewhere, and their results are
what they would have been.

Files are read as streams (an mbox line by line, a range from its offset); only the
records of the tasks in flight, about four per worker thread, wait on the workers for
the driver.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import posixpath
import sys
from pathlib import Path
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Deque,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import scan
from .policy import Policy
from .scan import Evidence, Skipped

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = ["CHUNK_BYTES", "SNIFF_BATCH", "connect", "results", "run"]

CHUNK_BYTES = 4 * 1024 * 1024  # a task's mail at most: about a second of checking
_LEAST_CHUNK_BYTES = 64 * 1024  # below this, a task's overhead (about 1 ms) starts to show
_TASKS_PER_THREAD = 8  # a smaller scan is cut finer, so that every thread has work to the end
SNIFF_BATCH = 256  # files sniffed by one task
_IN_FLIGHT_PER_THREAD = 4  # tasks submitted ahead of the one the driver waits for


class _FsspecFiles:
    """A file system fsspec knows; its locations are URLs (``s3://bucket/key``)."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def entry(self, location: scan._Location) -> scan._Entry:
        return self._entry(self.fs.info(str(location)))

    def entries(self, location: scan._Location) -> List[scan._Entry]:
        found = [self._entry(info) for info in self.fs.ls(str(location), detail=True)]
        return sorted(found, key=lambda entry: entry.name)

    def open(self, location: scan._Location) -> IO[bytes]:
        file: IO[bytes] = self.fs.open(str(location), "rb")
        return file

    def _entry(self, info: Dict[str, Any]) -> scan._Entry:
        path = info["name"]
        kind = {"directory": "dir", "file": "file"}.get(info["type"], "other")
        name = posixpath.basename(path.rstrip("/"))
        url = self.fs.unstrip_protocol(path)
        return scan._Entry(url, name, kind, bool(info.get("islink")), info.get("size") or 0)


def _files_for(path: scan._Location) -> scan._Files:
    if isinstance(path, str) and "://" in path:
        import fsspec.core

        fs, _ = fsspec.core.url_to_fs(path)
        return _FsspecFiles(fs)
    return scan._LOCAL


class _Piece(NamedTuple):
    """A file, or the messages of an mbox that start in a byte range, for one task."""

    source: scan._Source
    span: Optional[Tuple[int, int]]


def _pieces(sources: Sequence[scan._Source], chunk_bytes: int) -> Iterator[List[_Piece]]:
    """The sources as tasks of about ``chunk_bytes`` each, in order."""
    part: List[_Piece] = []
    size = 0
    for source in sources:
        if source.mbox and source.compression is None and source.size > chunk_bytes:
            if part:
                yield part
                part, size = [], 0
            for start in range(0, source.size, chunk_bytes):
                yield [_Piece(source, (start, start + chunk_bytes))]
            continue
        part.append(_Piece(source, None))
        size += source.size
        if size >= chunk_bytes:
            yield part
            part, size = [], 0
    if part:
        yield part


def _sniff_all(found: List[scan._Found]) -> List[scan._Sniffed]:
    """A worker's task: what each file holds."""
    return [scan._sniff(item) for item in found]


def _check_all(part: List[_Piece], policy: Optional[Policy]) -> List[List[scan._Step]]:
    """A worker's task: every message of each piece checked."""
    return [list(scan._steps(policy, piece.source, piece.span)) for piece in part]


class _Scan(NamedTuple):
    sources: List[scan._Source]
    skipped: List[Skipped]
    status: int
    steps: Iterator[scan._Step]


def _scan(
    client: Client,
    paths: Sequence[scan._Location],
    policy: Optional[Policy],
    err: IO[str],
    chunk_bytes: Optional[int],
) -> _Scan:
    """The files found (sniffed on the workers) and the steps of their messages, to be
    drawn in order."""
    listed, status = scan._listing(paths, err, _files_for)
    found = [item for item in listed if isinstance(item, scan._Found)]
    batches = [found[i : i + SNIFF_BATCH] for i in range(0, len(found), SNIFF_BATCH)]
    sniffed = itertools.chain.from_iterable(
        client.gather(client.map(_sniff_all, batches, pure=False))
    )
    merged = [item if isinstance(item, Skipped) else next(sniffed) for item in listed]
    sources = [item for item in merged if isinstance(item, scan._Source)]
    skipped = [item for item in merged if isinstance(item, Skipped)]
    steps = _steps(client, sources, policy, chunk_bytes)
    return _Scan(sources, skipped, status, steps)


def _steps(
    client: Client,
    sources: Sequence[scan._Source],
    policy: Optional[Policy],
    chunk_bytes: Optional[int],
) -> Iterator[scan._Step]:
    """The steps of every source in order, a bounded number of tasks in flight."""
    threads = max(sum(client.nthreads().values()), 1)
    if chunk_bytes is None:
        total = sum(source.size for source in sources)
        share = total // (threads * _TASKS_PER_THREAD)
        chunk_bytes = max(_LEAST_CHUNK_BYTES, min(CHUNK_BYTES, share))
    shared_policy = client.scatter(policy, broadcast=True, hash=False)
    parts = _pieces(sources, chunk_bytes)
    in_flight: Deque[Tuple[List[_Piece], Future[List[List[scan._Step]]]]] = collections.deque()

    def submit(count: int) -> None:
        for part in itertools.islice(parts, count):
            in_flight.append((part, client.submit(_check_all, part, shared_policy, pure=False)))

    submit(threads * _IN_FLIGHT_PER_THREAD)
    offset = 0  # messages in the earlier ranges of the mbox being read
    while in_flight:
        part, future = in_flight.popleft()
        done = future.result()
        future.release()  # its records leave the cluster
        submit(1)
        for piece, steps in zip(part, done):
            if piece.span is None or piece.span[0] == 0:
                offset = 0
            last = offset
            for step in steps:
                shifted = tuple(_renumbered(result, offset) for result in step.results)
                last = max([last, *(r.number or 0 for r in shifted)])
                yield step._replace(results=shifted) if offset else step
            offset = last


def _renumbered(result: Union[Skipped, Evidence], offset: int) -> Union[Skipped, Evidence]:
    """A record of an mbox range's message numbered in the whole file."""
    if not offset or result.number is None:
        return result
    if isinstance(result, Skipped):
        return result._replace(number=result.number + offset)
    return dataclasses.replace(result, number=result.number + offset)


def results(
    client: Client,
    paths: Sequence[Union[str, Path]],
    policy: Optional[Policy] = None,
    *,
    chunk_bytes: Optional[int] = None,
    err: Optional[IO[str]] = None,
) -> Iterator[Union[Evidence, Skipped]]:
    """Every record of a scan of ``paths`` on ``client``'s cluster, in the order of a
    local scan: what the walk skipped, then each message's (its skipped records first).
    A PATH that cannot be read is reported on ``err`` (standard error by default)."""
    found = _scan(client, paths, policy, sys.stderr if err is None else err, chunk_bytes)
    yield from found.skipped
    for step in found.steps:
        yield from step.results


def run(
    client: Client,
    paths: Sequence[Union[str, Path]],
    policy: Optional[Policy] = None,
    fmt: str = "table",
    out: Optional[IO[str]] = None,
    err: Optional[IO[str]] = None,
    *,
    only_flagged: bool = False,
    fail_on_skipped: bool = False,
    width: Optional[int] = None,
    chunk_bytes: Optional[int] = None,
) -> int:
    """``scan.run`` on ``client``'s cluster: the same report and exit status. ``paths``
    may be fsspec URLs too. ``chunk_bytes``: the mail of one task (an mbox range, or
    files together); None: CHUNK_BYTES, or less when every worker thread would get fewer
    than about 8 tasks."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    found = _scan(client, paths, policy, err, chunk_bytes)
    return scan._report(
        found.sources,
        found.skipped,
        found.steps,
        policy is not None,
        fmt,
        out,
        err,
        found.status,
        only_flagged=only_flagged,
        fail_on_skipped=fail_on_skipped,
        width=width,
    )


@contextlib.contextmanager
def connect(scheduler: str) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler`` (``tcp://host:8786``, or a scheduler
    file's path), or of a cluster started on this machine for ``local`` (one worker
    process per core) or ``local:N`` (N worker processes), one thread each: the check
    is Python code, which threads of one process would share."""
    from distributed import Client, LocalCluster

    kind, _, workers = scheduler.partition(":")
    if kind != "local":
        with Client(scheduler) as client:
            yield client
        return
    count = int(workers) if workers else None
    with LocalCluster(n_workers=count, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            yield client

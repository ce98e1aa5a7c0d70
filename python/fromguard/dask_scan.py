"""``fromguard scan --dask SCHEDULER PATH...``: the scan of ``scan.py`` on a Dask cluster
(``pip install fromguard[dask]``).

The driver lists the files (local paths, which every worker must see at the same place,
or fsspec URLs: ``s3://``, ``gs://``, ``file://``, ...); the workers sniff them as they
are listed, a batch of files per task, and check the mail, the first tasks while the
last files are sniffed: small files grouped into tasks, and an uncompressed mbox larger
than a task split into byte ranges of one size (``scan._mbox_range``: a range holds the
messages that start in it, so no message is split or read twice). A task's mail is
``chunk_bytes`` when given; by default each task takes half a worker thread's share of
the mail not yet in a task (at most ``CHUNK_BYTES``, at least 1/16 of a thread's share
of the whole): large tasks first, few in all, and smaller ones to the end, so that the
workers end together. A file that cannot be cut (a compressed mbox) larger than its
task's share starts before the tasks already queued, lest it end the scan alone. Each
task runs ``scan.py``'s own per-message code. ``run`` has the workers write the report's
rows too, with ``scan.py``'s writers (and the HTML report's rows, ``report.HtmlReport``,
when one is asked for): a task of whole files checks and writes at once; an mbox range
is read in one task, and checked and written in another once the messages of the ranges
before it are counted (its messages are numbered after them), the counts passed from
task to task on the workers. The driver only submits the tasks and joins their text,
tallies and pages in the order of a local scan (file, then message); ``results`` brings
the ``Evidence`` and ``Skipped`` records themselves to the driver, in the same order. A
worker that dies loses nothing: the scheduler runs its tasks again elsewhere, and their
results are what they would have been.

Files are read as streams (an mbox line by line, a range from its offset); only the
reports of the tasks in flight, about eight per worker thread, wait on the workers for
the driver.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import itertools
import pickle
import posixpath
import sys
import typing
from pathlib import Path
from typing import (
    IO,
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
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

if typing.TYPE_CHECKING:  # Dask is imported when a scan needs it; the report when asked for
    from distributed import Client, Future

    from .report import HtmlReport

__all__ = ["CHUNK_BYTES", "READ_BLOCK", "SNIFF_BATCH", "connect", "results", "run"]

CHUNK_BYTES = 4 * 1024 * 1024  # a task's mail at most: about a second of checking
_LEAST_CHUNK_BYTES = 64 * 1024  # below this, a task's overhead (about 1 ms) starts to show
_SHARES = 2  # a task's mail: 1/(_SHARES x threads) of the mail not yet in a task,
_TAIL_SHARES = 16  # and not less than 1/(_TAIL_SHARES x threads) of the whole
SNIFF_BATCH = 256  # files sniffed by one task at least
_SNIFF_DOUBLINGS = 4  # to 4,096 files: a task's overhead is that of sniffing about 100
_IN_FLIGHT_PER_THREAD = 8  # tasks submitted ahead of the one the driver waits for
# A compressed file's mail against its size (mail compresses about 4 to 5 times with gzip
# or xz): a compressed mbox cannot be cut into ranges, so its task is the one that ends
# a scan alone if it is not started early (see ``_tasks``).
_COMPRESSED_MAIL = 4
READ_BLOCK = 1024 * 1024
"""What an fsspec file is read in (from object storage: one request a block). Its own
default can be far more (s3fs: 50 MiB), read whole to sniff a file or to check a range
of a few MiB."""


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
        # fsspec's own buffering reads a block from each line's start (and again after
        # every block's end): io's buffer reads each byte once, a block a request.
        file = self.fs.open(str(location), "rb", block_size=READ_BLOCK, cache_type="none")
        return io.BufferedReader(file, buffer_size=READ_BLOCK)

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


def _work(source: scan._Source) -> int:
    """A file's mail in bytes, as far as its listing tells: a compressed file's as if it
    held ``_COMPRESSED_MAIL`` times its size."""
    return source.size * (_COMPRESSED_MAIL if source.compression else 1)


class _Chunk(NamedTuple):
    """The pieces of one task; ``early``: a file more than a task's share of mail."""

    pieces: List[_Piece]
    early: bool


def _guided(given: int, total: int, threads: int) -> int:
    """A task's mail when ``given`` of the ``total`` bytes are in tasks already."""
    least = min(CHUNK_BYTES, max(_LEAST_CHUNK_BYTES, total // (threads * _TAIL_SHARES)))
    return max(least, min(CHUNK_BYTES, (total - given) // (threads * _SHARES)))


def _fixed(chunk_bytes: int, given: int) -> int:
    return chunk_bytes


def _pieces(sources: Iterable[scan._Source], budget: Callable[[int], int]) -> Iterator[_Chunk]:
    """The sources as tasks, in order, each of about ``budget(given)`` bytes of mail,
    ``given`` the bytes stored in the tasks before it."""
    part: List[_Piece] = []
    size = given = 0
    for source in sources:
        chunk = budget(given)
        given += source.size
        if source.mbox and source.compression is None and source.size > chunk:
            if part:
                yield _Chunk(part, False)
                part, size = [], 0
            # Ranges of one size: a last range of a few messages would cost a task's
            # overhead for little work.
            ranges = -(-source.size // chunk)
            cuts = [source.size * index // ranges for index in range(ranges + 1)]
            for start, end in zip(cuts, cuts[1:]):
                yield _Chunk([_Piece(source, (start, end))], False)
            continue
        if part and size + _work(source) > chunk:
            yield _Chunk(part, False)
            part, size = [], 0
        part.append(_Piece(source, None))
        size += _work(source)
        if size > chunk:  # one file, which cannot be cut
            yield _Chunk(part, True)
            part, size = [], 0
    if part:
        yield _Chunk(part, False)


# Files and records cross between the driver and the workers pickled in one piece:
# Dask would walk every tuple of a task's arguments looking for futures, and serialise
# a list's results element by element, several times slower.


def _pickle(value: object) -> bytes:
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


# The driver sends files and pieces as plain tuples: a NamedTuple pickles through a
# Python call (``__getnewargs__``), which took the driver four times as long.


def _pickle_found(batch: List[scan._Found]) -> bytes:
    return _pickle([(item.files, tuple(item.entry), item.in_maildir) for item in batch])


def _pickle_part(part: List[_Piece]) -> bytes:
    return _pickle([(tuple(piece.source), piece.span) for piece in part])


def _unpickle_part(part: bytes) -> List[_Piece]:
    return [_Piece(scan._Source(*source), span) for source, span in pickle.loads(part)]


def _sniff_all(found: bytes) -> bytes:
    """A worker's task: what each of the files of ``_pickle_found`` holds (a pickled
    list of ``_Sniffed``)."""
    batch = pickle.loads(found)
    return _pickle([scan._sniff(scan._Found(f, scan._Entry(*e), m)) for f, e, m in batch])


def _check_all(part: bytes, policy: Optional[Policy]) -> List[List[scan._Step]]:
    """Every message of each of the pieces of ``_pickle_part`` (whole files) checked."""
    pieces = _unpickle_part(part)
    return [list(scan._steps(policy, piece.source, piece.span)) for piece in pieces]


def _records(part: bytes, policy: Optional[Policy]) -> bytes:
    """A worker's task: ``_check_all``'s steps, pickled for the driver."""
    return _pickle(_check_all(part, policy))


# An mbox range is read in one task and checked in another, once the messages of the
# ranges before it are counted (its messages are numbered after them): the reads are
# raw mail, which moves between workers at the cost of a copy where checked evidence
# costs as much to pickle as to check. They move pickled in one piece, as plain tuples:
# Dask serialises a list's items one by one, a frame each, and a range's 927 reads took
# 14 ms of the sending worker's event loop and 4 ms of the receiver's (now 0.1 ms, and
# 1.2 ms in the task that checks them), more where the loop waits for the GIL.

_RangeRead = Tuple[int, bytes]  # the number of a range's last message, and its reads


def _read_range(part: bytes) -> _RangeRead:
    """A worker's task: the messages of an mbox range (a piece alone, of
    ``_pickle_part``), read."""
    (piece,) = _unpickle_part(part)
    reads = list(scan._read(piece.source, piece.span))
    last = max((read.message.number or 0 for read in reads if read.message), default=0)
    plain = [
        (tuple(map(tuple, read.skipped)), None if read.message is None else tuple(read.message))
        for read in reads
    ]
    return last, _pickle(plain)


def _numbered_after(read: _RangeRead, before: int) -> int:
    """A worker's task: how many messages of its mbox come before the range after an
    mbox range, given how many come before this one."""
    return before + read[0]


def _reads(read: _RangeRead, offset: int) -> Iterator[scan._Read]:
    """The reads of ``_read_range``, numbered in the whole file: after ``offset``."""
    for skipped, message in pickle.loads(read[1]):
        yield scan._Read(
            tuple(
                Skipped(path, _shifted(number, offset), kind, why)
                for path, number, kind, why in skipped
            ),
            None if message is None else scan._Message(_shifted(message[0], offset), *message[1:]),
        )


def _shifted(number: Optional[int], offset: int) -> Optional[int]:
    return None if number is None else number + offset


def _check_range(
    read: _RangeRead, name: str, policy: Optional[Policy], before: int
) -> List[List[scan._Step]]:
    """The messages of an mbox range of the file ``name`` checked, numbered after the
    ``before`` of the ranges before it (a list of the one piece's steps)."""
    return [list(scan._checked(policy, name, _reads(read, before)))]


def _range_records(read: _RangeRead, name: str, policy: Optional[Policy], before: int) -> bytes:
    """A worker's task: ``_check_range``'s steps, pickled for the driver."""
    return _pickle(_check_range(read, name, policy, before))


class _Part(NamedTuple):
    """The report of a task's messages, written on a worker."""

    out: str
    err: str
    tally: scan.Tally
    skipped: List[Skipped]
    failed: bool
    sizes: List[int]  # of each message, for the progress bar
    page: Optional[HtmlReport]  # the HTML report's rows, when one is written


class _Writing(NamedTuple):
    """How the workers write the report (the same for every task)."""

    writer_for: Callable[[IO[str], bool], scan._Writer]
    only_flagged: bool
    page: bool  # whether to collect the HTML report's rows


def _write_all(checked: List[List[scan._Step]], writing: _Writing) -> bytes:
    """The report of checked pieces (a pickled ``_Part``)."""
    out, err = io.StringIO(), io.StringIO()
    rows = scan._Rows(writing.writer_for(out, False), out, err, writing.only_flagged)
    if writing.page:
        from .report import HtmlReport

        rows.page = HtmlReport(writing.only_flagged)
    sizes: List[int] = []
    for steps in checked:
        for step in steps:
            rows.add(step)
            if step.size is not None:
                sizes.append(step.size)
    part = _Part(
        out.getvalue(), err.getvalue(), rows.tally, rows.skipped, rows.failed, sizes, rows.page
    )
    return _pickle(part)


def _report_all(part: bytes, policy: Optional[Policy], writing: _Writing) -> bytes:
    """A worker's task: the report of whole files (a pickled ``_Part``), checked and
    written in one go: their messages are numbered from 1 each."""
    return _write_all(_check_all(part, policy), writing)


def _report_range(
    read: _RangeRead, name: str, policy: Optional[Policy], before: int, writing: _Writing
) -> bytes:
    """A worker's task: the report of an mbox range (a pickled ``_Part``), see
    ``_check_range``."""
    return _write_all(_check_range(read, name, policy, before), writing)


class _Scan:
    """The files found (``status``: the walk's), sniffed on the workers: ``sniffed``
    waits for every file, ``sources`` yields the mail as the first files are sniffed, so
    that their tasks start while the rest are sniffed."""

    def __init__(
        self,
        client: Client,
        paths: Sequence[scan._Location],
        policy: Optional[Policy],
        err: IO[str],
        chunk_bytes: Optional[int],
    ) -> None:
        self.client = client
        self.policy = client.scatter(policy, broadcast=True, hash=False)
        threads = max(sum(client.nthreads().values()), 1)
        listing = scan._Listing(paths, err, _files_for)
        listed: List[scan._Listed] = []
        sniffing: List[Future[bytes]] = []
        batch: List[scan._Found] = []
        total = 0
        for item in listing:  # sniffed while the walk goes on
            listed.append(item)
            if isinstance(item, scan._Found):
                batch.append(item)
                total += item.entry.size
                if len(batch) >= _sniff_batch(len(sniffing), threads):
                    sniffing.append(_sniffed(client, batch))
                    batch = []
        if batch:
            sniffing.append(_sniffed(client, batch))
        self.status = listing.status
        if chunk_bytes is None:  # from the sizes listed: the mail's are not known yet
            self.budget = functools.partial(_guided, total=total, threads=threads)
        else:
            self.budget = functools.partial(_fixed, chunk_bytes)
        self.window = threads * _IN_FLIGHT_PER_THREAD  # tasks in flight
        self._for_tasks, self._for_report = itertools.tee(_merged(listed, sniffing))

    def sources(self) -> Iterator[scan._Source]:
        """The files of mail, in order, as they are sniffed."""
        return (item for item in self._for_tasks if isinstance(item, scan._Source))

    @functools.cached_property
    def sniffed(self) -> List[scan._Sniffed]:
        """Every file, what it holds or why it was skipped, in order."""
        return list(self._for_report)


def _sniff_batch(submitted: int, threads: int) -> int:
    """The files of the next sniffing task: SNIFF_BATCH until every worker thread has
    had one, then twice as many each round of threads, _SNIFF_DOUBLINGS times at most."""
    return SNIFF_BATCH << min(submitted // threads, _SNIFF_DOUBLINGS)


def _sniffed(client: Client, batch: List[scan._Found]) -> Future[bytes]:
    # First in line: the report starts with what was skipped.
    return client.submit(_sniff_all, _pickle_found(batch), pure=False, priority=1)


def _merged(listed: List[scan._Listed], sniffing: List[Future[bytes]]) -> Iterator[scan._Sniffed]:
    """What was skipped while walking, and each file found as it was sniffed, in order."""
    batches = (pickle.loads(future.result()) for future in sniffing)
    sniffed: Iterator[scan._Sniffed] = itertools.chain.from_iterable(batches)
    for item in listed:
        yield item if isinstance(item, Skipped) else next(sniffed)


def _in_order(found: _Scan, tasks: Iterator[Future[bytes]]) -> Iterator[bytes]:
    """The results of ``tasks``, in order: ``found.window`` of them submitted at once,
    before the first is taken, and then one more as each is taken (those done wait on
    the workers)."""
    in_flight: Deque[Future[bytes]] = collections.deque(itertools.islice(tasks, found.window))
    return _taken(in_flight, tasks)


def _taken(in_flight: Deque[Future[bytes]], tasks: Iterator[Future[bytes]]) -> Iterator[bytes]:
    while in_flight:
        yield in_flight.popleft().result()
        in_flight.extend(itertools.islice(tasks, 1))


def _tasks(
    found: _Scan, whole: Callable[..., bytes], ranged: Callable[..., bytes], *extra: Any
) -> Iterator[Future[bytes]]:
    """A task for each group of whole files and for each mbox range, in order, submitted
    as they are taken: ``whole(part, policy, *extra)`` for pickled whole files, and
    ``ranged(read, name, policy, before, *extra)`` for an mbox range, once it is read
    and the messages of its file's ranges before it are counted (``before``), on the
    workers: the driver never waits on a count."""
    client, policy = found.client, found.policy
    before: Union[int, Future[int]] = 0  # messages of the mbox before the next range
    for part, early in _pieces(found.sources(), found.budget):
        span = part[0].span
        if span is None:
            # A file more than a task's share of mail starts before the tasks already
            # queued, lest it run on alone at the end.
            yield client.submit(
                whole, _pickle_part(part), policy, *extra, pure=False, priority=int(early)
            )
            continue
        read = client.submit(_read_range, _pickle_part(part), pure=False)
        if span[0] == 0:
            before = 0
        name = scan.show_path(part[0].source.path)
        yield client.submit(ranged, read, name, policy, before, *extra, pure=False)
        before = client.submit(_numbered_after, read, before, pure=False)


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
    found = _Scan(client, paths, policy, sys.stderr if err is None else err, chunk_bytes)
    done = _in_order(found, _tasks(found, _records, _range_records))
    yield from (item for item in found.sniffed if isinstance(item, Skipped))
    for checked in map(pickle.loads, done):
        for steps in checked:
            for step in steps:
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
    html: Optional[IO[str]] = None,
    chunk_bytes: Optional[int] = None,
) -> int:
    """``scan.run`` on ``client``'s cluster: the same report and exit status (the rows
    are written on the workers; ``out`` and ``err`` each get what a local scan writes,
    the two interleaved by task rather than by message), and the same HTML report on
    ``html`` (the workers send its rows). ``paths`` may be fsspec URLs too.
    ``chunk_bytes``: the mail of one task (an mbox range, or files together); None:
    tasks that shrink as the scan goes on (see the module's description)."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    found = _Scan(client, paths, policy, err, chunk_bytes)
    # Only the table's column width needs every file sniffed before the first task.
    widest = found.sniffed if fmt == "table" else []
    writer_for = scan._writer_for(fmt, width, [s for s in widest if isinstance(s, scan._Source)])
    writing = _Writing(writer_for, only_flagged, html is not None)
    parts = map(pickle.loads, _in_order(found, _tasks(found, _report_all, _report_range, writing)))
    sources = [item for item in found.sniffed if isinstance(item, scan._Source)]
    rows = scan._Rows(writer_for(out, True), out, err, only_flagged)
    if html is not None:
        from .report import HtmlReport

        rows.page, rows.page_out = HtmlReport(only_flagged), html
        rows.paths = [scan.show_path(path) for path in paths]
    for item in found.sniffed:
        if isinstance(item, Skipped):  # found while walking
            rows.skip(item)
    if err.isatty():
        rows.progress = scan._Progress(err, sum(source.size for source in sources))
    for part in parts:
        if rows.progress is not None:
            for size in part.sizes:
                rows.progress.advance(size)
            rows.progress.clear()
        err.write(part.err)
        out.write(part.out)
        rows.tally.merge(part.tally)
        rows.skipped += part.skipped
        rows.failed = rows.failed or part.failed
        if rows.page is not None and part.page is not None:
            rows.page.merge(part.page)
    policy_given = policy is not None
    status = found.status
    return scan._finish(rows, len(sources), policy_given, fmt, out, err, status, fail_on_skipped)


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

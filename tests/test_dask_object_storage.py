"""``fromguard scan --dask`` over object storage: the sample mailbox and a generated tree
uploaded to a server on this machine and scanned as its URLs on a LocalCluster give a
local scan's records; a large mbox is read in ranges of bounded size, never whole (every
read of an object's bytes the server answers is counted). Each test runs against S3
(moto's server, ``s3://`` URLs, s3fs) and Google Cloud Storage (gcp-storage-emulator,
``gs://`` URLs, gcsfs)."""

from __future__ import annotations

import contextlib
import functools
import io
import threading
from http.server import HTTPServer
from pathlib import Path
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
)
from urllib.parse import parse_qs, unquote, urlsplit

import fsspec
import gcsfs.core
import pytest
import s3fs
from distributed import Client, LocalCluster
from gcp_storage_emulator.server import RequestHandler
from gcp_storage_emulator.storage import Storage
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from fromguard import dask_scan
from fromguard.policy import Policy
from fromguard.scan import Evidence
from mail_tree import write_tree
from test_dask_scan import CLUSTER, SAMPLE, STRICT, local_records, with_path

BUCKET = "mail"


class Read(NamedTuple):
    """A read of an object's bytes that the server answered."""

    key: str  # the object's, in BUCKET
    range: Optional[str]  # the Range header
    length: int  # bytes answered


class Store(NamedTuple):
    fs: fsspec.AbstractFileSystem  # configured for the server, BUCKET made
    scheme: str  # its URLs'
    reads: List[Read]  # every read answered, in order

    def url(self, key: str) -> str:
        return f"{self.scheme}://{BUCKET}/{key}"


@contextlib.contextmanager
def serving(server: HTTPServer) -> Iterator[str]:
    """``server`` answering on a thread; its address as a URL."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def configured(protocol: str, options: Dict[str, Any]) -> Iterator[fsspec.AbstractFileSystem]:
    """fsspec told to use ``options`` for ``protocol``'s URLs (the file system pickles with
    its class and options, so the workers use them too); its file system with BUCKET made."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(fsspec.config.conf, protocol, options)
        fs = fsspec.filesystem(protocol)
        fs.mkdir(BUCKET)
        yield fs


@contextlib.contextmanager
def s3_on_moto() -> Iterator[Store]:
    """Moto's S3 server on a free port (path-style requests: /bucket/key)."""
    app = DomainDispatcherApplication(create_backend_app)
    reads: List[Read] = []

    def counting(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: List[Any], *rest: Any) -> Any:
            _, _, key = environ["PATH_INFO"].lstrip("/").partition("/")
            if environ["REQUEST_METHOD"] == "GET" and key:
                length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
                reads.append(Read(key, environ.get("HTTP_RANGE"), length))
            return start_response(status, headers, *rest)

        result: Iterable[bytes] = app(environ, start)
        return result

    with serving(make_server("127.0.0.1", 0, counting, threaded=True)) as address:
        options = {"endpoint_url": address, "key": "testing", "secret": "testing"}
        with configured("s3", options) as fs:
            assert isinstance(fs, s3fs.S3FileSystem)
            yield Store(fs, "s3", reads)


class QueuingHTTPServer(HTTPServer):
    """The emulator answers a request at a time, and gcsfs sends many at once: with
    http.server's backlog of 5, the connections beyond it wait on the client's SYN
    retries (a second and more each; a 2,000-message tree took 110 s to upload, 6 s so)."""

    request_queue_size = 128


@contextlib.contextmanager
def gcs_on_the_emulator() -> Iterator[Store]:
    """gcp-storage-emulator's request handler and in-memory storage, served on a free port
    (its own server takes a fixed one and keeps its HTTP server to itself): an object's
    bytes are read with GET .../b/BUCKET/o/KEY?alt=media.

    gcsfs's default class (ExtendedGcsFileSystem, since gcsfs 2026.3) first asks a bucket's
    layout over gRPC, which the emulator does not serve; for a bucket that is neither
    zonal nor hierarchical it is GCSFileSystem, which is what is used here."""
    reads: List[Read] = []

    class Counting(RequestHandler):  # type: ignore[misc]
        def send_header(self, keyword: str, value: str) -> None:
            url = urlsplit(self.path)
            _, found, key = url.path.partition(f"/b/{BUCKET}/o/")
            media = parse_qs(url.query).get("alt") == ["media"]
            if keyword == "Content-Length" and self.command == "GET" and found and media:
                reads.append(Read(unquote(key), self.headers.get("Range"), int(value)))
            super().send_header(keyword, value)

    handler = functools.partial(Counting, Storage(use_memory_fs=True))
    default = fsspec.get_filesystem_class("gs")
    fsspec.register_implementation("gs", gcsfs.core.GCSFileSystem, clobber=True)
    try:
        with serving(QueuingHTTPServer(("127.0.0.1", 0), handler)) as address:
            with configured("gs", {"endpoint_url": address, "token": "anon"}) as fs:
                assert type(fs) is gcsfs.core.GCSFileSystem
                yield Store(fs, "gs", reads)
    finally:
        fsspec.register_implementation("gs", default, clobber=True)


BACKENDS: Dict[str, Callable[[], ContextManager[Store]]] = {
    "s3": s3_on_moto,
    "gs": gcs_on_the_emulator,
}


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    with BACKENDS[request.param]() as store:
        yield store


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(**CLUSTER) as cluster:
        with Client(cluster) as client:
            yield client


def assert_records_at(found: List[Any], expected: List[Any], local: Path, url: str) -> None:
    """``found`` (at ``url``) are ``expected`` (at ``local``), record by record."""
    assert len(found) == len(expected)
    for index, (got, want) in enumerate(zip(found, expected)):
        assert got == with_path(want, want.path.replace(str(local), url, 1)), index


def test_the_sample_in_object_storage_gives_what_a_local_scan_gives(
    store: Store, client: Client
) -> None:
    store.fs.put(str(SAMPLE), f"{BUCKET}/sample.mbox")
    policy = Policy.from_toml(STRICT)
    expected = local_records([SAMPLE], policy)
    url = store.url("sample.mbox")
    for chunk in (None, 1000):  # one task; ranges of 1,000 bytes
        found = list(dask_scan.results(client, [url], policy, chunk_bytes=chunk))
        assert_records_at(found, expected, SAMPLE, url)


def test_a_tree_in_object_storage_gives_what_a_local_scan_gives(
    store: Store, client: Client, tmp_path: Path
) -> None:
    tree = tmp_path / "mail"
    write_tree(tree, 2_000)
    # Piped, not put: gcsfs's put types a .eml file message/rfc822, and the emulator reads
    # the part of a multipart upload with that type as a message, losing its bytes.
    files = (path for path in tree.rglob("*") if path.is_file())
    store.fs.pipe({f"{BUCKET}/tree/{path.relative_to(tree)}": path.read_bytes() for path in files})
    expected = local_records([tree], None)
    assert sum(isinstance(item, Evidence) for item in expected) > 1_900
    url = store.url("tree")
    found = list(dask_scan.results(client, [url], chunk_bytes=64 * 1024))
    assert_records_at(found, expected, tree, url)


def test_a_large_mbox_is_read_range_by_range(store: Store, client: Client) -> None:
    """Each task reads its range and the message that ends it, a block a request: no
    request asks for more than READ_BLOCK (the file is five times that), and what the
    server answers for the file is the file once, and a block or two more per range."""
    mbox = SAMPLE.read_bytes() * 600  # 5.5 MB, 19,200 messages
    store.fs.pipe(f"{BUCKET}/large.mbox", mbox)
    url = store.url("large.mbox")
    del store.reads[:]
    out = io.StringIO()
    chunk = dask_scan.READ_BLOCK
    assert dask_scan.run(client, [url], None, "csv", out, io.StringIO(), chunk_bytes=chunk) == 1
    assert out.getvalue().count(url) == 32 * 600
    reads = [read for read in store.reads if read.key == "large.mbox"]
    assert all(read.range is not None for read in reads)
    assert max(read.length for read in reads) == dask_scan.READ_BLOCK < len(mbox) // 5
    ranges = -(-len(mbox) // chunk)
    # The sniff reads a block; a range, from 3 bytes before its start to the end of the
    # message that ends it: its blocks and one more.
    most = dask_scan.READ_BLOCK + ranges * (chunk + 2 * dask_scan.READ_BLOCK)
    assert len(mbox) <= sum(read.length for read in reads) <= most

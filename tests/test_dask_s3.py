"""``fromguard scan --dask`` over object storage: the sample mailbox and a generated tree
uploaded to an S3 server (moto's, on this machine) and scanned as ``s3://`` URLs (s3fs)
on a LocalCluster give a local scan's records; a large mbox is read in ranges of bounded
size, never whole (every request the server answers is counted)."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional

import fsspec
import pytest
import s3fs
from distributed import Client, LocalCluster
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from fromguard import dask_scan
from fromguard.policy import Policy
from fromguard.scan import Evidence
from mail_tree import write_tree
from test_dask_scan import CLUSTER, SAMPLE, STRICT, local_records, with_path

BUCKET = "mail"


class Request(NamedTuple):
    method: str
    path: str
    range: Optional[str]  # the Range header
    length: int  # bytes answered


class S3(NamedTuple):
    fs: s3fs.S3FileSystem
    requests: List[Request]  # every request answered, in order


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    """Moto's S3 server on a free port, counting what it answers; fsspec configured to
    use it (the file system pickles with its options, so the workers use it too)."""
    app = DomainDispatcherApplication(create_backend_app)
    requests: List[Request] = []

    def counting(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: List[Any], *rest: Any) -> Any:
            length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
            method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
            requests.append(Request(method, path, environ.get("HTTP_RANGE"), length))
            return start_response(status, headers, *rest)

        result: Iterable[bytes] = app(environ, start)
        return result

    server = make_server("127.0.0.1", 0, counting, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    options = {
        "endpoint_url": f"http://127.0.0.1:{server.server_port}",
        "key": "testing",
        "secret": "testing",
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(fsspec.config.conf, "s3", options)
        fs = fsspec.filesystem("s3")
        assert isinstance(fs, s3fs.S3FileSystem)
        fs.mkdir(BUCKET)
        try:
            yield S3(fs, requests)
        finally:
            server.shutdown()
            thread.join()


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


def test_the_sample_on_s3_gives_what_a_local_scan_gives(s3: S3, client: Client) -> None:
    s3.fs.put(str(SAMPLE), f"{BUCKET}/sample.mbox")
    policy = Policy.from_toml(STRICT)
    expected = local_records([SAMPLE], policy)
    url = f"s3://{BUCKET}/sample.mbox"
    for chunk in (None, 1000):  # one task; ranges of 1,000 bytes
        found = list(dask_scan.results(client, [url], policy, chunk_bytes=chunk))
        assert_records_at(found, expected, SAMPLE, url)


def test_a_tree_on_s3_gives_what_a_local_scan_gives(s3: S3, client: Client, tmp_path: Path) -> None:
    tree = tmp_path / "mail"
    write_tree(tree, 2_000)
    s3.fs.put(str(tree), f"{BUCKET}/tree", recursive=True)
    expected = local_records([tree], None)
    assert sum(isinstance(item, Evidence) for item in expected) > 1_900
    url = f"s3://{BUCKET}/tree"
    found = list(dask_scan.results(client, [url], chunk_bytes=64 * 1024))
    assert_records_at(found, expected, tree, url)


def test_a_large_mbox_is_read_range_by_range(s3: S3, client: Client) -> None:
    """Each task reads its range and the message that ends it, a block a request: no
    request asks for more than READ_BLOCK (the file is five times that), and what the
    server answers for the file is the file once, and a block or two more per range."""
    mbox = SAMPLE.read_bytes() * 600  # 5.5 MB, 19,200 messages
    s3.fs.pipe(f"{BUCKET}/large.mbox", mbox)
    url = f"s3://{BUCKET}/large.mbox"
    del s3.requests[:]
    out = io.StringIO()
    chunk = dask_scan.READ_BLOCK
    assert dask_scan.run(client, [url], None, "csv", out, io.StringIO(), chunk_bytes=chunk) == 1
    assert out.getvalue().count(url) == 32 * 600
    reads = [r for r in s3.requests if r.method == "GET" and r.path.endswith("/large.mbox")]
    assert all(r.range is not None for r in reads)
    assert max(r.length for r in reads) == dask_scan.READ_BLOCK < len(mbox) // 5
    ranges = -(-len(mbox) // chunk)
    # The sniff reads a block; a range, from 3 bytes before its start to the end of the
    # message that ends it: its blocks and one more.
    most = dask_scan.READ_BLOCK + ranges * (chunk + 2 * dask_scan.READ_BLOCK)
    assert len(mbox) <= sum(r.length for r in reads) <= most

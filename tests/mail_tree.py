"""A generated tree of mail in every layout ``fromguard scan`` reads, for the tests and
benches of the scan on Dask (``benches/dask_scan.py`` imports this module too).

``write_tree(root, 20_000)`` writes that many messages (the From values of the case
files, folded where they hold a line break, some messages without From and some empty
ones in an mbox): large mbox files (LF, and one with CRLF line ends) whose bodies hold
unquoted ``From `` lines that do not split, a gzip mbox, an xz mbox, a Maildir (``tmp/``
holding mail to leave alone), an MH folder, ``.eml`` files in nested directories, a
bzip2 message, and files that are not mail (empty, a PNG, a broken gzip, text)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import random
from pathlib import Path
from typing import Callable, Iterator, List

from samples import case_values

_WORDS = b"the of and to in is that for it as was with be by on not he this are or".split()


def _body(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randint(8, 40)):
        lines.append(b" ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 12))))
    if rng.random() < 0.1:  # an unquoted From line after an empty line: no separator
        lines += [b"", b"From here on, the plan changes."]
    if rng.random() < 0.05:
        lines.append(b">From the quoted line")
    return b"\n".join(lines) + b"\n"


def _messages(count: int, seed: int) -> Iterator[bytes]:
    """``count`` messages (LF line ends, no mbox From_ line)."""
    rng = random.Random(seed)
    values = case_values()
    for number in range(count):
        value = rng.choice(values).replace(b"\n", b"\n ")
        header = [
            b"Received: from mx.example.net by mail.example.org; Mon, 2 Nov 2026 09:00:00 +0000",
            b"Date: Mon, 2 Nov 2026 09:%02d:00 +0000" % (number % 60),
            b"Subject: message %d" % number,
            b"To: team@example.org",
            b"Message-ID: <%d@example.org>" % number,
        ]
        if rng.random() < 0.97:  # the rest have no From field
            header.insert(rng.randint(0, len(header)), b"From: " + value)
        if rng.random() < 0.05:
            header.append(b"Sender: " + rng.choice(values).replace(b"\n", b"\n "))
        yield b"\n".join(header) + b"\n\n" + _body(rng)


def _mbox(messages: List[bytes], rng: random.Random) -> bytes:
    parts = []
    for message in messages:
        parts.append(b"From sender@example.org Mon Nov  2 09:00:00 2026\n" + message + b"\n")
        if rng.random() < 0.002:  # an empty message
            parts.append(b"From nobody@example.org Mon Nov  2 09:00:00 2026\n\n")
    return b"".join(parts)


def write_tree(root: Path, count: int = 20_000, seed: int = 19) -> None:
    """Write ``count`` messages under ``root`` (a new directory), in every layout."""
    rng = random.Random(seed)
    messages = list(_messages(count, seed))
    shares = {  # layout -> messages
        "mbox": count * 55 // 100,
        "crlf": count * 5 // 100,
        "gzip": count * 8 // 100,
        "xz": count * 2 // 100,
        "maildir": count * 12 // 100,
        "mh": count * 12 // 100,
    }
    taken = iter(messages)

    def take(n: int) -> List[bytes]:
        return [next(taken) for _ in range(n)]

    root.mkdir(parents=True)
    (root / "archive").mkdir()
    mbox_messages = take(shares["mbox"])
    for index in range(3):
        part = mbox_messages[index::3]
        (root / "archive" / f"list-{index}.mbox").write_bytes(_mbox(part, rng))
    crlf = _mbox(take(shares["crlf"]), rng).replace(b"\n", b"\r\n")
    (root / "archive" / "windows").write_bytes(crlf)
    (root / "archive" / "old.mbox.gz").write_bytes(gzip.compress(_mbox(take(shares["gzip"]), rng)))
    (root / "archive" / "older.mbox.xz").write_bytes(lzma.compress(_mbox(take(shares["xz"]), rng)))

    maildir = root / "Maildir"
    for folder in ("cur", "new", "tmp"):
        (maildir / folder).mkdir(parents=True)
    for number, message in enumerate(take(shares["maildir"])):
        folder = "new" if number % 5 == 0 else "cur"
        (maildir / folder / f"{1700000000 + number}.{number}.host:2,S").write_bytes(message)
    (maildir / "tmp" / "1700000000.delivering.host").write_bytes(b"From: half")

    mh = root / "mh" / "inbox"
    mh.mkdir(parents=True)
    for number, message in enumerate(take(shares["mh"]), start=1):
        (mh / str(number)).write_bytes(message)
    (mh / ".mh_sequences").write_bytes(b"unseen: 1-3\n")

    rest = list(taken)
    writers: List[Callable[[Path, bytes], None]] = [
        lambda path, data: path.write_bytes(data),
        lambda path, data: path.with_suffix(".eml.bz2").write_bytes(bz2.compress(data)),
    ]
    for number, message in enumerate(rest):
        folder = root / "export" / f"{number % 7}" / f"{number % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        writers[number % 50 == 0](folder / f"{number}.eml", message)

    junk = root / "export" / "junk"
    junk.mkdir()
    (junk / "empty").write_bytes(b"")
    (junk / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (junk / "broken.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(30))
    (junk / "notes.txt").write_bytes(b"Shopping list\n- milk\n")

"""Whole messages for the rewrite benchmarks, made by a seeded generator (no mail corpus
ships with fromguard).

- ``phishing``: the shapes bulk phishing has: a deceptive From, an HTML body with a
  styled head (quoted-printable or base64, single or in ``multipart/alternative`` with a
  plain-text twin, sometimes in ``multipart/mixed`` with an attachment), 5 to 40 KB.
  ``Policy.exchange()`` warns on each.
- ``ham``: what ordinary mail has: an honest From, plain text (7bit or
  quoted-printable), sometimes ``multipart/alternative``, 1 to 8 KB. Accepted.
- ``large``: one message of about ``size`` bytes of either kind, for per-byte costs.
"""

from __future__ import annotations

import base64
import quopri
import random
import uuid
from typing import List

DECEPTIVE = [
    b'"security@paypal.example" <alerts@mallory.example>',
    b"Bank Support <support@bank.example> <m@mallory.example>",
    b'"it-desk@corp.example" <helpdesk@phish.example>',
    b"Microsoft 365 <no-reply@xn--micrsoft-qbh.example>",
]
HONEST = [
    b"Jane Doe <jane@example.org>",
    b'"Doe, John" <john.doe@mail.example.com>',
    b"=?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jm@lists.example.net>",
    b"alice@corp.example",
]
WORDS = (
    "account verify update payment invoice security team please review the attached "
    "document your access will be suspended unless you confirm details today thank you "
    "regards meeting schedule project report next week notes budget draft agenda"
).split()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(8, 20))).capitalize() + "."


def _text(rng: random.Random, size: int) -> str:
    lines: List[str] = []
    length = 0
    while length < size:
        line = _sentence(rng)
        lines.append(line)
        length += len(line) + 1
    return "\n".join(lines) + "\n"


def _html(rng: random.Random, size: int) -> str:
    style = "".join(
        f".c{i} {{ color: #{rng.randrange(1 << 24):06x}; padding: {i}px; }}\n"
        for i in range(rng.randrange(20, 80))
    )
    head = f'<html><head><meta charset="utf-8"><style>\n{style}</style></head>\n'
    rows: List[str] = []
    length = len(head)
    while length < size:
        row = (
            f'<tr><td class="c{rng.randrange(20)}"><a href="https://login.mallory.example/'
            f'{uuid.UUID(int=rng.getrandbits(128)).hex}">{_sentence(rng)}</a> Caf\u00e9 '
            f"&mdash; {_sentence(rng)}</td></tr>\n"
        )
        rows.append(row)
        length += len(row)
    return head + '<body style="margin:0">\n<table>\n' + "".join(rows) + "</table></body></html>\n"


def _part(content_type: str, cte: str, text: str, eol: bytes) -> bytes:
    data = text.encode("utf-8")
    if cte == "quoted-printable":
        body = quopri.encodestring(data)
    elif cte == "base64":
        body = base64.encodebytes(data)
    else:
        body = data
    head = f"Content-Type: {content_type}; charset=utf-8\nContent-Transfer-Encoding: {cte}\n\n"
    return (head.encode("ascii") + body).replace(b"\n", eol)


def _multipart(subtype: str, parts: List[bytes], rng: random.Random, eol: bytes) -> bytes:
    boundary = f"=_{rng.getrandbits(64):016x}".encode("ascii")
    head = b'Content-Type: multipart/%s; boundary="%s"%s%s' % (
        subtype.encode("ascii"),
        boundary,
        eol,
        eol,
    )
    body = b"".join(b"--" + boundary + eol + part + eol for part in parts)
    return head + body + b"--" + boundary + b"--" + eol


def _message(from_field: bytes, entity: bytes, index: int, eol: bytes) -> bytes:
    header = (
        b"From: " + from_field + eol + b"To: user@fromguard.test" + eol
        + b"Subject: message %d" % index + eol
        + b"Date: Sun, 29 Nov 2026 10:00:00 +0000" + eol
        + b"Message-ID: <%d@example.org>" % index + eol
        + b"MIME-Version: 1.0" + eol
    )  # fmt: skip
    return header + entity


def phishing_message(rng: random.Random, index: int, size: int) -> bytes:
    eol = rng.choice([b"\r\n", b"\n"])
    html = _html(rng, size)
    shape = index % 4
    if shape == 0:
        entity = _multipart(
            "alternative",
            [
                _part("text/plain", "quoted-printable", _text(rng, size // 4), eol),
                _part("text/html", "quoted-printable", html, eol),
            ],
            rng,
            eol,
        )
    elif shape == 1:
        entity = _part("text/html", "base64", html, eol)
    elif shape == 2:
        alternative = _multipart(
            "alternative",
            [
                _part("text/plain", "7bit", _text(rng, 800), eol),
                _part("text/html", "base64", html, eol),
            ],
            rng,
            eol,
        )
        attachment = (
            b"Content-Type: application/pdf; name=invoice.pdf" + eol
            + b"Content-Disposition: attachment; filename=invoice.pdf" + eol
            + b"Content-Transfer-Encoding: base64" + eol + eol
            + base64.encodebytes(rng.randbytes(size // 2)).replace(b"\n", eol)
        )  # fmt: skip
        entity = _multipart("mixed", [alternative, attachment], rng, eol)
    else:
        entity = _part("text/html", "quoted-printable", html, eol)
    return _message(rng.choice(DECEPTIVE), entity, index, eol)


def ham_message(rng: random.Random, index: int, size: int) -> bytes:
    eol = rng.choice([b"\r\n", b"\n"])
    text = _text(rng, size)
    shape = index % 4
    if shape in (0, 1):
        entity = _part("text/plain", "7bit", text, eol)
    elif shape == 2:
        entity = _part("text/plain", "quoted-printable", text, eol)
    else:
        entity = _multipart(
            "alternative",
            [
                _part("text/plain", "7bit", text, eol),
                _part("text/html", "quoted-printable", _html(rng, size), eol),
            ],
            rng,
            eol,
        )
    return _message(rng.choice(HONEST), entity, index, eol)


def phishing(count: int = 400, seed: int = 17) -> List[bytes]:
    rng = random.Random(seed)
    return [phishing_message(rng, i, rng.randrange(4_000, 30_000)) for i in range(count)]


def ham(count: int = 400, seed: int = 5322) -> List[bytes]:
    rng = random.Random(seed)
    return [ham_message(rng, i, rng.randrange(1_000, 6_000)) for i in range(count)]

"""Every From parser the benchmarks compare, as one callable over a list of values.

Each entry says what the implementation does with a value (its task: not all peers do
the same work, and the table must say so), and is either available or skipped with the
reason. A runner gets the whole list and processes every value, so per-call entries pay
the Python loop too, as a caller would.
"""

from __future__ import annotations

import email.headerregistry
import email.utils
import importlib
import logging
import sys
from dataclasses import dataclass
from typing import Any, Callable, List, Optional

import fromguard
import fromguard.reference

Runner = Callable[[List[str]], Any]


@dataclass
class Entry:
    name: str
    task: str
    # Prepares a runner for the values (e.g. builds messages), outside the timing.
    prepare: Optional[Callable[[List[str]], Runner]]
    skipped: Optional[str] = None


def _per_call(
    function: Callable[[Any], Any], given: Callable[[str], Any] = lambda value: value
) -> Callable[[List[str]], Runner]:
    """``function`` on each value, or on what ``given`` makes of it outside the timing
    (a message around the value, its addr-spec alone)."""

    def prepare(values: List[str]) -> Runner:
        inputs = [given(v) for v in values]
        return lambda _values: [function(i) for i in inputs]

    return prepare


def _or_none(function: Callable[[Any], Any], errors: Any = Exception) -> Callable[[Any], Any]:
    """``function``, with None for a value it raises ``errors`` on (a peer's refusal)."""

    def call(value: Any) -> Any:
        try:
            return function(value)
        except errors:
            return None

    return call


def _batch(function: Callable[[List[str]], Any]) -> Callable[[List[str]], Runner]:
    return lambda values: lambda _values: function(values)


def _read_everything(value: str) -> Any:
    result = fromguard.parse(value)
    return result.verdict, result.address, result.mailboxes, result.findings, result.shadows


def _getaddresses(value: str) -> Any:
    return email.utils.getaddresses([value])


_REGISTRY = email.headerregistry.HeaderRegistry()


def _headerregistry(value: str) -> Any:
    header = _REGISTRY("From", value)
    return header.addresses, header.defects


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _flanker() -> Entry:
    task = "flanker address.parse: one mailbox (name decoded), no findings"
    address = _optional("flanker.addresslib.address")
    if address is None:
        return Entry("flanker", task, None, "not installed (pip install flanker)")
    # flanker logs a warning for every value it cannot parse, from loggers that set their
    # own level when imported.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("flanker"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    return Entry("flanker", task, _per_call(address.parse))


def _fast_mail_parser() -> Entry:
    task = "fast-mail-parser parse_email of a one-header message, .from_ read"
    module = _optional("fast_mail_parser")
    if module is None:
        return Entry("fast-mail-parser", task, None, "not installed (pip install fast-mail-parser)")

    def message(value: str) -> bytes:
        return b"From: " + value.encode() + b"\r\n\r\n"

    parse = _or_none(lambda raw: module.parse_email(raw).from_, module.ParseError)
    return Entry("fast-mail-parser", task, _per_call(parse, message))


def _emval() -> Entry:
    task = "emval: validates the addr-spec only (extracted beforehand), no DNS"
    module = _optional("emval")
    if module is None:
        return Entry("emval", task, None, "not installed (pip install emval)")
    validator = module.EmailValidator(deliverable_address=False, allow_quoted_local=True)

    def addr_spec(value: str) -> str:
        return email.utils.parseaddr(value)[1]

    # emval raises its own SyntaxError subclasses.
    return Entry("emval", task, _per_call(_or_none(validator.validate_email), addr_spec))


def _rfc5322() -> Entry:
    task = "rfc5322 parse_mailbox_list: mailboxes, first error only"
    if sys.version_info < (3, 12):
        return Entry("rfc5322", task, None, "needs Python >= 3.12 (Requires-Python of 1.0.1)")
    module = _optional("rfc5322")
    if module is None:
        return Entry("rfc5322", task, None, "not installed (pip install rfc5322)")

    # AddressSyntaxError: the first error.
    return Entry("rfc5322", task, _per_call(_or_none(module.parse_mailbox_list)))


def _call_floor() -> Entry:
    # The cheapest call into the extension: a PyO3 slot that does nothing but answer.
    rules = fromguard.RuleSet([])
    return Entry(
        "floor: len(RuleSet([]))",
        "no-op call into the PyO3 extension: the Python call overhead per value",
        _per_call(lambda _value: len(rules)),
    )


def entries() -> List[Entry]:
    return [
        Entry("fromguard.parse", "full parse; verdict and syntax read", _per_call(fromguard.parse)),
        Entry(
            "fromguard.parse + read all",
            "full parse; every attribute read (mailboxes, findings, shadows)",
            _per_call(_read_everything),
        ),
        Entry(
            "fromguard.parse_many",
            "batch of full parses (list in, results out)",
            _batch(fromguard.parse_many),
        ),
        Entry(
            "fromguard.verdicts", "batch; one verdict byte per value", _batch(fromguard.verdicts)
        ),
        Entry(
            "fromguard.reference.parse",
            "pure-Python reference: full parse, the same results",
            _per_call(fromguard.reference.parse),
        ),
        Entry(
            "email.utils.getaddresses",
            "stdlib: (name, address) pairs, no findings",
            _per_call(_getaddresses),
        ),
        Entry(
            "email.headerregistry",
            "stdlib: the From header object, addresses and defects",
            # It raises on some attack values (ValueError, AttributeError, ...).
            _per_call(_or_none(_headerregistry)),
        ),
        _rfc5322(),
        _flanker(),
        _fast_mail_parser(),
        _emval(),
        _call_floor(),
    ]

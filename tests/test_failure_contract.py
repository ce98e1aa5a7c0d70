"""The failure contract of the binding: a panic in the compiled core (a bug) raises
``fromguard.InternalError``, an ``Exception``, from every entry point, batches included,
within a second and never a hang; and the process stays usable. Panics are injected with
the test hook ``fromguard._core._inject_panic``: judging a value equal to the trigger
panics, on whichever thread judges it (a batch's helpers or the caller's)."""

from __future__ import annotations

import pickle
import threading
import time
from typing import Callable, Iterable, Iterator, List, Union

import pytest

import fromguard as fg
from fromguard import InternalError, Verdict
from fromguard._core import _inject_panic

# rust/python/src/batch.rs: batches of PARALLEL_VALUES values or more are shared with
# helper threads, in pieces of PIECE_VALUES, read in rounds of ROUND_PIECES pieces.
PARALLEL_VALUES = 8192
PIECE_VALUES = 512
ROUND_VALUES = 256 * PIECE_VALUES

DEADLINE = 1.0  # seconds: the contract
HANG = 30.0  # seconds after which a call that has not returned is a hang

MESSAGE = b"From: Alice <alice@example.org>\r\nSubject: hi\r\n\r\nhello\r\n"


class armed:
    """The hook armed with ``trigger`` inside the ``with`` block, disarmed after it."""

    def __init__(self, trigger: bytes) -> None:
        self.trigger = trigger

    def __enter__(self) -> None:
        _inject_panic(self.trigger)

    def __exit__(self, *exc_info: object) -> None:
        _inject_panic(None)


def raised_in_time(call: Callable[[], object]) -> InternalError:
    """The InternalError ``call()`` raises, which must come within ``DEADLINE``. The
    call runs on a thread of its own, so that a hang fails the test instead of hanging
    the suite."""
    outcome: List[Union[BaseException, object]] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(HANG)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"the call hung (no answer in {HANG:g} s)"
    (result,) = outcome
    assert isinstance(result, InternalError), f"expected InternalError, got {result!r}"
    assert elapsed < DEADLINE, f"InternalError came after {elapsed:.2f} s"
    return result


def values_of(count: int) -> List[str]:
    return [f"User {index} <user{index}@example.org>" for index in range(count)]


def test_internal_error_is_an_exception_and_names_what_failed() -> None:
    error = InternalError("verdicts", 31, "boom", 7)
    assert isinstance(error, Exception)
    assert (error.operation, error.input_length, error.detail, error.index) == (
        "verdicts",
        31,
        "boom",
        7,
    )
    assert str(error).startswith("fromguard failed in verdicts (value 7 of the batch, input")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.operation, copy.index, str(copy)) == ("verdicts", 7, str(error))


@pytest.mark.parametrize("value", ["Alice <alice@example.org>", "(x) <a@b.example> junk"])
def test_parse(value: str) -> None:
    trigger = value.encode()
    with armed(trigger):
        # Only the trigger panics.
        assert fg.parse("bob@example.org").verdict is Verdict.VALID
        error = raised_in_time(lambda: fg.parse(value))
        assert raised_in_time(lambda: fg.parse(trigger)).operation == "parse"
    assert (error.operation, error.input_length, error.index) == ("parse", len(trigger), None)
    assert "injected panic" in error.detail
    assert fg.parse(value).value == trigger


def test_lazy_details() -> None:
    value = "Alice <alice@example.org>"
    result = fg.parse(value)  # the fast path: the details are built when first read
    with armed(value.encode()):
        error = raised_in_time(lambda: result.mailboxes)
        raised_in_time(lambda: result.address)
    assert (error.operation, error.input_length) == ("FromHeader details", len(value))
    # The failure left nothing half built: the details are built on the next read.
    assert result.address == "alice@example.org"


def test_check_message() -> None:
    with armed(MESSAGE):
        error = raised_in_time(lambda: fg.check_message(MESSAGE))
    assert (error.operation, error.input_length) == ("check_message", len(MESSAGE))
    assert fg.check_message(MESSAGE).verdict is Verdict.VALID


def test_rule_set() -> None:
    rules = [("org", "domain", r"example\.org"), ("net", "domain", r"example\.net")]
    with armed(rules[1][2].encode()):
        error = raised_in_time(lambda: fg.RuleSet(rules))
    assert (error.operation, error.input_length) == ("RuleSet", 2)
    compiled = fg.RuleSet(rules)
    with armed(MESSAGE):
        error = raised_in_time(lambda: compiled.match(MESSAGE))
    assert (error.operation, error.input_length) == ("RuleSet.match", len(MESSAGE))
    assert compiled.match(MESSAGE) == ("org",)


def generated(values: List[str]) -> Iterator[bytes]:
    """The values as bytes, from an iterator whose length the batch does not know."""
    return (value.encode() for value in values)


def batch_call(name: str) -> Callable[[Iterable[Union[str, bytes]]], bytes]:
    """``verdicts`` itself, or ``parse_many`` with its results' verdicts as bytes."""
    if name == "verdicts":
        return fg.verdicts
    return lambda values: bytes(result.verdict for result in fg.parse_many(values))


@pytest.mark.parametrize("container", ["list", "iterator"])
@pytest.mark.parametrize("name", ["verdicts", "parse_many"])
@pytest.mark.parametrize(
    ("count", "bad"),
    [
        # One round, past the helper threshold: the bad value in the first, a middle and
        # the last piece (which is not full).
        (20_000, 0),
        (20_000, 5 * PIECE_VALUES + 3),
        (20_000, 19_999),
        # Three rounds: the bad value in the first piece of the second round, and last.
        (2 * ROUND_VALUES + 1_000, ROUND_VALUES),
        (2 * ROUND_VALUES + 1_000, 2 * ROUND_VALUES + 999),
    ],
)
def test_batches(container: str, name: str, count: int, bad: int) -> None:
    assert count >= PARALLEL_VALUES
    call = batch_call(name)
    values = values_of(count)
    expected = bytes([Verdict.VALID]) * count

    def batch() -> Iterable[Union[str, bytes]]:
        return values if container == "list" else generated(values)

    trigger = values[bad].encode()
    with armed(trigger):
        error = raised_in_time(lambda: call(batch()))
        # Again while armed: a failed batch leaves nothing behind that the next one trips on.
        again = raised_in_time(lambda: call(batch()))
    assert (error.operation, error.index, error.input_length) == (name, bad, len(trigger))
    assert (again.operation, again.index) == (name, bad)
    assert f"value {bad} of the batch" in str(error)
    # The process is usable: the same batch, unarmed, is judged in full.
    assert call(batch()) == expected

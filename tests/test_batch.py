"""Batches and lazy results: ``fromguard.verdicts``, ``parse_many`` over large batches
(which run on several threads) and what a result costs before its attributes are read."""

from __future__ import annotations

import sys
from itertools import chain
from pathlib import Path
from typing import Iterator, List, Tuple, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fromguard
from fromguard import Verdict
from test_cases import CASES, case_input

CORPUS = Path(__file__).parent / "corpus" / "debian-maintainers.txt"
DEBIAN = CORPUS.read_text(encoding="utf-8").splitlines()

Value = Union[bytes, str]


def _by_profile() -> List[Tuple[bool, bool, List[Value]]]:
    groups: dict[Tuple[bool, bool], List[Value]] = {}
    for case in CASES:
        key = (case.get("utf8", True), case.get("groups", False))
        groups.setdefault(key, []).append(case_input(case))
    return [(utf8, grp, values) for (utf8, grp), values in sorted(groups.items())]


def _one_by_one(values: List[Value], utf8: bool = True, groups: bool = False) -> bytes:
    return bytes(fromguard.parse(v, utf8=utf8, groups=groups).verdict for v in values)


@pytest.mark.parametrize(("utf8", "groups", "values"), _by_profile())
def test_verdicts_are_parse_verdicts_on_every_case(
    utf8: bool, groups: bool, values: List[Value]
) -> None:
    got = fromguard.verdicts(values, utf8=utf8, groups=groups)
    assert isinstance(got, bytes)
    assert got == _one_by_one(values, utf8, groups)


def test_verdicts_on_the_debian_corpus_as_str_and_bytes() -> None:
    expected = _one_by_one(list(DEBIAN))
    assert fromguard.verdicts(DEBIAN) == expected
    assert fromguard.verdicts([v.encode() for v in DEBIAN]) == expected
    assert set(expected) <= {Verdict.VALID, Verdict.LEGACY}


def test_large_batches_run_in_parallel_with_the_same_results() -> None:
    # Over the thread threshold and over one chunk of the iterable (64 Ki values).
    attacks = [case_input(c) for c in CASES if c.get("utf8", True) and not c.get("groups")]
    values: List[Value] = list(chain.from_iterable([DEBIAN, attacks] * 28))
    assert len(values) > 64 * 1024
    expected = _one_by_one(values)
    assert fromguard.verdicts(values) == expected
    assert fromguard.verdicts(iter(values)) == expected
    batch = fromguard.parse_many(values)
    assert bytes(r.verdict for r in batch) == expected
    assert [r.value for r in batch[-50:]] == [fromguard.parse(v).value for v in values[-50:]]
    assert batch[-1].findings == fromguard.parse(values[-1]).findings


# Around a piece (512 values), the size from which a pool thread helps (8192) and a
# round (128 Ki values): PIECE_VALUES, PARALLEL_VALUES and ROUND_PIECES in
# rust/python/src/batch.rs.
BOUNDARIES = [0, 1, 511, 512, 513, 8191, 8192, 8193, 131071, 131072, 131073]


@pytest.mark.parametrize("size", BOUNDARIES)
def test_every_batch_size_gives_each_value_its_own_result_in_order(size: int) -> None:
    attacks = [case_input(c) for c in CASES if c.get("utf8", True) and not c.get("groups")]
    pool: List[Value] = DEBIAN + attacks
    values = [pool[(i * 7919) % len(pool)] for i in range(size)]
    expected = _one_by_one(values)
    for batch_in in (values, iter(values), tuple(values)):
        assert fromguard.verdicts(batch_in) == expected
    for batch_in in (values, iter(values)):
        batch = fromguard.parse_many(batch_in)
        assert bytes(r.verdict for r in batch) == expected
        assert [r.value for r in batch] == [
            v if isinstance(v, bytes) else v.encode() for v in values
        ]


_POOL: List[Value] = [
    *DEBIAN[:200],
    *(case_input(c) for c in CASES if c.get("utf8", True) and not c.get("groups")),
]


@settings(max_examples=25, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(_POOL) - 1), max_size=300),
    repeat=st.sampled_from([1, 3, 17, 40]),
    extra=st.lists(st.one_of(st.text(max_size=60), st.binary(max_size=60)), max_size=20),
    as_generator=st.booleans(),
)
def test_any_batch_equals_its_values_parsed_one_by_one(
    picks: List[int], repeat: int, extra: List[Value], as_generator: bool
) -> None:
    # Sizes from none to past the helper threshold, any mix of str, bytes and junk text.
    values: List[Value] = [_POOL[i] for i in picks] * repeat + extra
    expected = _one_by_one(values)
    given_values = iter(values) if as_generator else values
    assert fromguard.verdicts(given_values) == expected
    batch = fromguard.parse_many(iter(values) if as_generator else values)
    assert bytes(r.verdict for r in batch) == expected
    assert [r.syntax for r in batch] == [fromguard.parse(v).syntax for v in values]


@pytest.mark.parametrize("position", [3, 300, 5000, 70000])
def test_a_bad_value_or_a_failing_iterator_stops_a_large_batch(position: int) -> None:
    values: List[object] = list(DEBIAN * 32)[:80000]
    values[position] = 1
    with pytest.raises(TypeError, match="expected bytes or str"):
        fromguard.verdicts(values)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected bytes or str"):
        fromguard.parse_many(iter(values))  # type: ignore[arg-type]

    def failing() -> Iterator[str]:
        yield from DEBIAN * 32
        raise LookupError("the archive is gone")

    with pytest.raises(LookupError, match="archive"):
        fromguard.parse_many(failing())
    # The pool is free again: the next batch runs.
    assert fromguard.verdicts(DEBIAN * 3) == _one_by_one(DEBIAN * 3)


@pytest.mark.parametrize("told", [0, 3, 6, 5000])
def test_verdicts_refuses_a_batch_whose_length_lied(told: int) -> None:
    # verdicts writes into a bytes object of the length the batch gives.
    class Lying:
        def __len__(self) -> int:
            return told

        def __iter__(self) -> Iterator[str]:
            return iter(["a@b.example"] * 5)

    with pytest.raises(RuntimeError, match="changed size"):
        fromguard.verdicts(Lying())  # type: ignore[arg-type]


NESTED_AND_CONCURRENT = """
import sys, threading
import fromguard

values = open(sys.argv[1], encoding="utf-8").read().splitlines() * 8
expected = fromguard.verdicts(values)


def nested():
    for i, value in enumerate(values):
        if i % 3000 == 0:  # a batch made inside the iterable of another
            assert fromguard.verdicts(values) == expected
        yield value


assert fromguard.verdicts(nested()) == expected
assert len(fromguard.parse_many(nested())) == len(values)


def work():
    for _ in range(20):
        assert fromguard.verdicts(values) == expected
        assert len(fromguard.parse_many(values)) == len(values)


threads = [threading.Thread(target=work) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("done")
"""


def test_batches_nested_or_on_several_threads_do_not_wait_on_each_other() -> None:
    # A helper thread that waited for its batch's reader could hold the only pool thread
    # while that reader waited for the pool (nested) or another batch's reader held the
    # GIL waiting for the pool (threads): a deadlock. In a child process, with a timeout.
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", NESTED_AND_CONCURRENT, str(CORPUS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


def test_results_are_not_tracked_by_the_cycle_collector_and_free_their_value() -> None:
    import gc

    value = "".join(["Jane Doe ", "<jane@example.org>"])  # a str of its own
    before = sys.getrefcount(value)
    results = [fromguard.parse(value), *fromguard.parse_many([value] * 5000)]
    assert not any(gc.is_tracked(r) for r in results)
    assert results[0].mailboxes[0].addr_spec == "jane@example.org"  # details built
    del results
    assert sys.getrefcount(value) == before
    checked = fromguard.check_message(b"From: a@b.example\r\n\r\n")
    assert not gc.is_tracked(checked.fields[0].result)


def test_verdicts_takes_any_iterable_and_checks_types() -> None:
    def generate() -> Iterator[Value]:
        yield "a@b.example"
        yield b"\x00"
        yield "Dr. J <j@x.example>"
        yield "\ud800 <a@b.example>"  # a lone surrogate: encoded with surrogatepass

    assert list(fromguard.verdicts(generate())) == [
        Verdict.VALID,
        Verdict.INVALID,
        Verdict.LEGACY,
        fromguard.parse("\ud800 <a@b.example>").verdict,
    ]
    assert fromguard.verdicts([]) == b""
    with pytest.raises(TypeError, match="expected bytes or str"):
        fromguard.verdicts(["a@b", 1])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        fromguard.verdicts(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fromguard.verdicts(["a@b"], False)  # type: ignore[misc]


def test_subclasses_of_str_and_bytes_are_read_as_their_base() -> None:
    class Text(str):
        pass

    class Raw(bytes):
        pass

    values = ["Jörg <j@x.example>", "a@b..example", "\ud800 <a@b.example>"]
    plain: List[Value] = [*values, *(v.encode("utf-8", "surrogatepass") for v in values)]
    derived: List[Value] = [
        *(Text(v) for v in values),
        *(Raw(v.encode("utf-8", "surrogatepass")) for v in values),
    ]
    assert fromguard.verdicts(derived) == fromguard.verdicts(plain)
    assert [r.findings for r in fromguard.parse_many(derived)] == [
        fromguard.parse(v).findings for v in plain
    ]
    assert [fromguard.parse(v).value for v in derived] == [fromguard.parse(v).value for v in plain]


def test_verdicts_follow_the_profile() -> None:
    values = ["Jörg <j@x.example>", "g: a@b.example;"]
    assert list(fromguard.verdicts(values)) == [Verdict.VALID, Verdict.INVALID]
    assert list(fromguard.verdicts(values, utf8=False, groups=True)) == [
        Verdict.LEGACY,
        Verdict.VALID,
    ]


def test_an_unread_result_is_small() -> None:
    # The value, its verdict and syntax and an empty slot for the rest: under 200 bytes.
    result = fromguard.parse("Jane Doe <jane@example.org>")
    assert sys.getsizeof(result) < 200
    read = fromguard.parse("Jane Doe <jane@example.org>")
    assert read.address == "jane@example.org"
    assert read.mailboxes[0].display_name == "Jane Doe"


def test_attributes_read_later_are_those_of_the_value() -> None:
    text = '"ceo@bank.example" <m@mallory.example>'
    result = fromguard.parse(text)
    assert result.value == text.encode()
    assert result.verdict is Verdict.DECEPTIVE
    assert [s.address for s in result.shadows] == ["ceo@bank.example"]
    assert result.address == "m@mallory.example"

"""The decision threads (``fromguard._pool``): the watchdog counts from a decision's
start, a late decision gives its place to a new thread, which the late one leaves when
it ends; the threads block the signals the main thread handles."""

from __future__ import annotations

import signal
import threading
import time
from typing import List

import pytest

from fromguard._pool import HANDLED_SIGNALS, DecisionPool, NoDecision


def test_a_decision_s_result_and_its_error_reach_the_caller() -> None:
    pool = DecisionPool(2, "test")
    assert pool.run(lambda: 42, 5)[0] == 42
    with pytest.raises(ZeroDivisionError):
        pool.run(lambda: 1 // 0, 5)
    pool.shutdown()


def test_time_in_the_queue_is_not_charged_to_the_decision() -> None:
    """One thread: the second decision waits 1.5 s for it, then runs 1 s; both within a
    2 s watchdog each (2.5 s from the second one's submission)."""
    pool = DecisionPool(1, "test")
    results: List[object] = []
    first = threading.Thread(target=lambda: results.append(pool.run(lambda: time.sleep(1.5), 2)))
    first.start()
    time.sleep(0.2)  # the first one holds the thread
    result, queued = pool.run(lambda: time.sleep(1.0) or "second", 2)
    first.join()
    assert result == "second" and queued >= 1.0
    assert results and results[0][0] is None  # type: ignore[index]
    pool.shutdown()


def test_a_late_decision_is_replaced_and_its_thread_ends_with_it() -> None:
    pool = DecisionPool(2, "test")
    release = threading.Event()
    with pytest.raises(NoDecision) as late:
        pool.run(release.wait, 0.3)
    assert (late.value.kind, late.value.text) == ("timeout", "no decision within 0.3 s")
    assert pool.threads() == (3, 1)  # two free, one running the late decision
    # Both free threads serve at once (each waits for the other to have started).
    both = threading.Barrier(2, timeout=5)
    outcomes: List[object] = []
    helper = threading.Thread(target=lambda: outcomes.append(pool.run(both.wait, 5)[0]))
    helper.start()
    outcomes.append(pool.run(both.wait, 5)[0])
    helper.join()
    assert sorted(outcomes) == [0, 1]  # type: ignore[type-var]
    release.set()
    deadline = time.monotonic() + 5
    while pool.threads() != (2, 0):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pool.shutdown()


def test_past_the_bound_late_decisions_keep_their_threads_and_the_queue_has_a_limit() -> None:
    pool = DecisionPool(1, "test", max_abandoned=1)
    release = threading.Event()
    for _ in range(2):
        with pytest.raises(NoDecision):
            pool.run(release.wait, 0.2)
    assert pool.threads() == (2, 1)  # the second late one was not replaced
    with pytest.raises(NoDecision) as busy:
        pool.run(lambda: None, 0.2)  # both threads are held
    assert (busy.value.kind, busy.value.queued) == ("busy", 0.2)
    release.set()
    assert pool.run(lambda: "free again", 5)[0] == "free again"
    pool.shutdown()


def test_the_threads_block_the_signals_the_main_thread_handles() -> None:
    pool = DecisionPool(1, "test")
    blocked = pool.run(lambda: signal.pthread_sigmask(signal.SIG_BLOCK, []), 5)[0]
    assert HANDLED_SIGNALS <= set(blocked)
    assert not HANDLED_SIGNALS & signal.pthread_sigmask(signal.SIG_BLOCK, [])
    pool.shutdown()

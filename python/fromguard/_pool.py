"""The decision threads of the milter and the SMTP filter, with a watchdog that frees them.

A message waits for a free thread, then its decision gets ``watchdog`` seconds from the
moment a thread starts it: time in the queue is not charged to it (it is measured and
reported apart, and has a limit of its own, the same number of seconds). A decision
past its deadline is answered with the fail mode and abandoned to its thread, which
keeps running it (Python cannot stop a thread); a new thread takes its place, so that
``workers`` threads stay free for the next messages however many decisions hang, up to
``max_abandoned`` of them at once. An abandoned thread ends when its decision does.

Threads are started with SIGHUP, SIGTERM and SIGINT blocked (``signals_blocked``):
the process's signals must reach the thread that handles them, never a decision's.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
import time
from typing import Callable, Generic, Iterator, Optional, Tuple, TypeVar

__all__ = ["DecisionPool", "NoDecision", "signals_blocked"]

T = TypeVar("T")

HANDLED_SIGNALS = frozenset({signal.SIGHUP, signal.SIGTERM, signal.SIGINT})

_QUEUED, _RUNNING, _DONE, _GIVEN_UP, _ABANDONED = range(5)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """SIGHUP, SIGTERM and SIGINT blocked in this thread for the block's time: the threads
    it starts inherit the mask and never take them."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class NoDecision(Exception):
    """No decision in time: ``kind`` is ``timeout`` (the decision ran past its deadline)
    or ``busy`` (no thread was free within the watchdog's time); ``queued`` the seconds
    the message waited for a thread."""

    def __init__(self, kind: str, text: str, queued: float) -> None:
        super().__init__(kind, text, queued)
        self.kind = kind
        self.text = text
        self.queued = queued


class _Job(Generic[T]):
    """One decision: its function, where it stands, and its result."""

    __slots__ = ("changed", "error", "function", "replaced", "result", "started", "state")

    def __init__(self, function: Callable[[], T]) -> None:
        self.function = function
        self.state = _QUEUED
        self.started = 0.0
        self.result: Optional[T] = None
        self.error: Optional[BaseException] = None
        self.replaced = False  # abandoned, and a new thread took its thread's place
        self.changed = threading.Condition(threading.Lock())


class DecisionPool:
    """``workers`` threads named ``name``-N that run decisions (``run``)."""

    def __init__(self, workers: int, name: str, max_abandoned: Optional[int] = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self.max_abandoned = 4 * workers if max_abandoned is None else max_abandoned
        self._name = name
        self._jobs: queue.SimpleQueue[Optional[_Job[object]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._abandoned = 0
        self._numbers = iter(range(1, 1 << 62))
        for _ in range(workers):
            self._start_thread()

    def threads(self) -> Tuple[int, int]:
        """The threads alive, and how many of them run an abandoned decision."""
        with self._lock:
            return self._threads, self._abandoned

    def run(self, function: Callable[[], T], watchdog: float) -> Tuple[T, float]:
        """``function()`` on a pool thread, and the seconds it waited for one; raises
        what it raised, or ``NoDecision``."""
        job: _Job[T] = _Job(function)
        submitted = time.monotonic()
        self._jobs.put(job)  # type: ignore[arg-type]
        with job.changed:
            while job.state == _QUEUED:
                left = submitted + watchdog - time.monotonic()
                if left <= 0:
                    job.state = _GIVEN_UP  # the thread that takes it skips it
                    raise NoDecision(
                        "busy", f"no decision thread free within {watchdog:g} s", watchdog
                    )
                job.changed.wait(left)
            queued = job.started - submitted
            while job.state == _RUNNING:
                left = job.started + watchdog - time.monotonic()
                if left <= 0:
                    job.state = _ABANDONED
                    job.replaced = self._reserve_replacement()
                    break
                job.changed.wait(left)
        if job.state == _ABANDONED:
            if job.replaced:
                self._start_thread(reserved=True)
            raise NoDecision("timeout", f"no decision within {watchdog:g} s", queued)
        if job.error is not None:
            raise job.error
        return job.result, queued  # type: ignore[return-value]

    def shutdown(self) -> None:
        """End the idle threads (the busy ones end after their decision)."""
        with self._lock:
            count = self._threads
        for _ in range(count):
            self._jobs.put(None)

    # -- Threads --

    def _reserve_replacement(self) -> bool:
        with self._lock:
            if self._abandoned >= self.max_abandoned:
                return False
            self._abandoned += 1
            self._threads += 1
            return True

    def _start_thread(self, reserved: bool = False) -> None:
        if not reserved:
            with self._lock:
                self._threads += 1
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{next(self._numbers)}", daemon=True
        )
        with signals_blocked():
            thread.start()

    def _work(self) -> None:
        # One job a call: nothing of a job (its message, its outcome) stays referenced by
        # this thread while it waits for the next one.
        while self._run_one():
            pass

    def _run_one(self) -> bool:
        """Take the next job and run it; False when this thread is to end."""
        job = self._jobs.get()
        if job is None:
            with self._lock:
                self._threads -= 1
            return False
        with job.changed:
            if job.state == _GIVEN_UP:
                return True
            job.state, job.started = _RUNNING, time.monotonic()
            job.changed.notify()
        result: object = None
        error: Optional[BaseException] = None
        try:
            result = job.function()
        except BaseException as raised:  # handed to the waiting thread
            error = raised
        with job.changed:
            retire = job.replaced
            if job.state == _RUNNING:  # else abandoned: nobody waits for the result
                job.result, job.error, job.state = result, error, _DONE
                job.changed.notify()
        if retire:  # a new thread has taken this one's place
            with self._lock:
                self._abandoned -= 1
                self._threads -= 1
            return False
        return True

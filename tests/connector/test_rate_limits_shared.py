"""Rate limits counted in the state store (SQLite and PostgreSQL): several OS processes with several threads each,
pacing one key through it, never take more than ``limit`` slots in any ``window`` seconds, and are not slower than
the limit makes them. Holds a 429 left are seen by every process; the ring follows a changed limit."""

from __future__ import annotations

import math
import multiprocessing
import threading
import time

import pytest

from connector.core.budget import RequestBudget, SharedRequestBudget, WaitTooLong
from connector.state.db import make_engine
from connector.state.rate_limits import RateLimits

LIMIT = 6
WINDOW = 1.0
PROCESSES = 3
THREADS = 2
TAKES = 4  # per thread: 24 takes, four windows' worth


def _hammer(url: str, shared: bool, barrier, results) -> None:  # type: ignore[no-untyped-def]
    """One OS process: THREADS threads each pacing TAKES requests; puts the time each slot was taken."""
    engine = make_engine(url)
    local = threading.local()

    def clock() -> float:  # the stamp each take is decided at, as the limiter saw it
        local.now = time.time()
        return float(local.now)

    budget: SharedRequestBudget | RequestBudget
    if shared:
        budget = SharedRequestBudget(RateLimits(engine, clock=clock), "remote:test", LIMIT, window=WINDOW)
    else:
        budget = RequestBudget(LIMIT, window=WINDOW, clock=clock)  # this process's own window only
    stamps: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(TAKES):
            budget.acquire()
            with lock:
                stamps.append(local.now)

    barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    results.put(stamps)


def run_processes(url: str, shared: bool) -> list[float]:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    processes = [context.Process(target=_hammer, args=(url, shared, barrier, results)) for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    stamps = [stamp for _ in processes for stamp in results.get(timeout=60)]
    for process in processes:
        process.join(10)
        assert process.exitcode == 0
    return sorted(stamps)


def most_in_a_window(stamps: list[float]) -> int:
    """The most takes any ``WINDOW`` seconds hold (a half-open window starting at a take)."""
    return max(sum(1 for s in stamps if start <= s < start + WINDOW) for start in stamps)


def url_of(store) -> str:  # type: ignore[no-untyped-def]
    return store.engine.url.render_as_string(hide_password=False)


def test_processes_and_threads_share_one_window(store):
    stamps = run_processes(url_of(store), shared=True)
    assert len(stamps) == PROCESSES * THREADS * TAKES
    assert most_in_a_window(stamps) <= LIMIT
    # Not needlessly slow: 24 takes at 6 a second need three windows after the first take (slack for a busy machine).
    least = (math.ceil(len(stamps) / LIMIT) - 1) * WINDOW
    assert least <= stamps[-1] - stamps[0] < least + 2 * WINDOW


def test_processes_pacing_alone_overspend_the_remote(store):
    """What the shared window prevents: each process keeping only its own count takes up to three times the limit."""
    stamps = run_processes(url_of(store), shared=False)
    assert most_in_a_window(stamps) > LIMIT


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_hold_is_seen_by_every_process_and_only_for_its_key(store):
    clock = Clock()
    one, other = RateLimits(store.engine, clock), RateLimits(store.engine, clock)  # no state shared in memory
    assert one.take("forum", 5, 60) == 0.0
    other.hold("forum", 30, "shared")
    assert one.held("forum") == (30.0, "shared")
    assert one.take("forum", 5, 60) == 30.0  # a slot is free, but the remote said to wait
    assert one.take("another", 5, 60) == 0.0
    other.hold("forum", 10)  # a shorter hold does not shorten it
    assert one.held("forum") == (30.0, "shared")
    clock.now += 30
    assert one.held("forum") == (0.0, "")
    assert one.take("forum", 5, 60) == 0.0


def test_the_window_follows_a_changed_limit(store):
    clock = Clock()
    limits = RateLimits(store.engine, clock)
    assert [limits.take("k", 3, 60) for _ in range(3)] == [0.0] * 3
    assert limits.take("k", 3, 60) == 60.0
    assert [limits.take("k", 5, 60) for _ in range(2)] == [0.0] * 2  # two more now the limit is five
    assert limits.take("k", 5, 60) == 60.0
    clock.now += 30
    assert limits.take("k", 5, 60) == 30.0
    # Down to two: the two newest takes are kept, so the window still holds them for 30 more seconds.
    assert limits.take("k", 2, 60) == 30.0
    clock.now += 30
    assert [limits.take("k", 2, 60) for _ in range(2)] == [0.0] * 2
    assert limits.take("k", 2, 60) == 60.0


def test_reported_buckets_are_spent_by_every_process(store):
    clock = Clock()
    one, other = RateLimits(store.engine, clock), RateLimits(store.engine, clock)
    assert one.spend("bucket") == 0.0  # never reported: the first request tells
    one.set_bucket("bucket", 2, 20)
    assert other.spend("bucket") == 0.0 and one.spend("bucket") == 0.0
    assert other.spend("bucket") == 20.0
    clock.now += 20
    assert other.spend("bucket") == 0.0  # reset: the next answer reports the new count


def test_the_shared_budget_refuses_a_held_wait_above_the_cap_but_waits_out_its_own_pacing(store):
    clock = Clock()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    limits = RateLimits(store.engine, clock)
    budget = SharedRequestBudget(limits, "forum", 2, window=60, sleep=sleep)
    budget.acquire(max_wait=5)
    budget.acquire(max_wait=5)
    budget.acquire(max_wait=5)  # the window is full: waited for, never refused (our own pacing)
    assert sleeps == [pytest.approx(60.001)]
    SharedRequestBudget(limits, "forum", 2, window=60).penalise(120)  # another process drew a 429
    with pytest.raises(WaitTooLong) as refused:
        budget.acquire(max_wait=5)
    assert refused.value.seconds == 120.0

"""One forum budget for every process on a PostgreSQL state store (issue 18): three `cardbridge sync` processes started
together, each sending its own look-ups to the forum within the same minute, stay under the forum's admin-API limit
together when the store counts the requests, and bounce off it when each counts only its own.

The sandbox forum's limiter is the real one (a 60-second window per site, ``sandbox/discourse/rate_limit.py``); a small
limit keeps the run near one window long."""

from __future__ import annotations

import subprocess
import time

import pytest

#: The forum's admin-API limit, and CardBridge's ``requests_per_minute``: each process alone stays under it.
LIMIT = 10
#: Buyers with no forum account: each pass looks each one up again (``unmatched_retry_seconds = 0``), one request each.
BUYERS = 4
PROCESSES = 3
WINDOW = 60


def configure(world, shared: bool) -> None:
    world.forum.rate_limit_per_minute = LIMIT
    # One look-up per buyer (never the bulk list), and a wait above 2 s is deferred, not slept.
    world.write_config(rpm=LIMIT, bulk=1000)
    text = world.config_path.read_text().replace('url = "sqlite:///state.db"', f'url = "{world.pg_url}"')
    text = text.replace(
        f"requests_per_minute = {LIMIT}\n", f"requests_per_minute = {LIMIT}\nmax_retry_wait_seconds = 2\n"
    )
    if not shared:
        text = text.replace("[state]\n", "[state]\nshared_rate_limits = false\n")
    world.config_path.write_text(text, encoding="utf-8")


def three_syncs(world) -> list[tuple[int, str]]:
    """Start the three passes together (each waits for the pass lock), and wait for all of them."""
    processes = [world.spawn("sync", "--wait", "150") for _ in range(PROCESSES)]
    results = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            pytest.fail("a `cardbridge sync` was still running after 180 s")
        results.append((process.returncode, out + err))
    return results


def most_in_a_window(times: list[float]) -> int:
    """The most accepted requests the forum stamped within one of its windows (whole seconds, as it counts)."""
    stamps = sorted(int(t) for t in times)
    return max((sum(1 for s in stamps if start <= s < start + WINDOW) for start in stamps), default=0)


def test_three_processes_share_the_forums_minute(pg_world):
    world = pg_world
    card = world.shop.add_product("Steam 充值卡", "50.00")
    for n in range(BUYERS):
        world.shop.add_order(email=f"buyer{n}@example.com", items=[(card, 1)], status="completed")

    # Each process counting only its own requests: together they send more than the forum allows in a minute.
    configure(world, shared=False)
    results = three_syncs(world)
    assert world.forum.rate_limited_count >= 1, [output for _, output in results]
    # A pass that drew it says so (the forum's wait is above max_retry_wait_seconds: its buyers wait for a later pass).
    assert any(code == 1 and "answered 429" in output for code, output in results), results

    # The forum's minute passes for it (the window is the forum's own state; the store keeps nothing of that run).
    world.forum.limiter.window.clear()
    world.forum.limiter.rejected = 0
    world.forum.reset_log()

    configure(world, shared=True)
    started = time.monotonic()
    results = three_syncs(world)
    took = time.monotonic() - started
    assert [code for code, _ in results] == [0] * PROCESSES, results
    requests = list(world.forum.requests)
    lookups = [r for r in requests if r["path"].startswith("/admin/users/list")]
    assert len(lookups) == PROCESSES * BUYERS  # every pass asked about every buyer: the load was there
    answered = [r for r in requests if r["status"] != 429]
    assert most_in_a_window([r["time"] for r in answered]) <= LIMIT
    assert world.forum.rate_limited_count <= 0.01 * len(requests), world.forum.rate_limited_count
    # The requests over the limit waited for the window to free (about a minute), not longer.
    assert took < WINDOW + 40, took

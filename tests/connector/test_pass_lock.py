"""The pass lock's lease on SQLite and PostgreSQL: what the CLI tests cannot stage (another host, a stalled holder)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from connector.core.clock import utcnow
from connector.state.locks import Locks, PassLocked, locks_t


def _other_host(store, heartbeat_age: float) -> None:  # type: ignore[no-untyped-def]
    """Make the current holder look like a process on another machine whose last heartbeat is this old."""
    with store.engine.begin() as conn:
        conn.execute(
            update(locks_t).values(
                host="replica-2",
                pid=4242,
                process="replica-2:4242:5eed",
                heartbeat_at=utcnow() - timedelta(seconds=heartbeat_age),
            )
        )


def test_a_live_holder_on_another_host_is_named_and_kept(store):
    other = Locks(store.engine, lease=60)
    assert other.try_acquire("pass", "backfill") is not None
    _other_host(store, heartbeat_age=5)
    with pytest.raises(PassLocked) as held, Locks(store.engine, lease=60).hold("sync"):
        pass
    assert "another pass is running (backfill, pid 4242 on replica-2, since " in str(held.value)


def test_a_holder_silent_past_its_lease_is_taken_over(store):
    assert Locks(store.engine, lease=60).try_acquire("pass", "backfill") is not None
    _other_host(store, heartbeat_age=61)
    mine = Locks(store.engine, lease=60)
    with mine.hold("sync"):
        holder = mine.holder()
        assert holder is not None and holder.job == "sync" and holder.host != "replica-2"
    assert mine.holder() is None  # released on the way out


def test_the_heartbeat_keeps_a_long_pass_held_past_its_lease(store):
    lease = 1.0
    with Locks(store.engine, lease=lease).hold("backfill"):
        time.sleep(lease * 3)
        other = Locks(store.engine, lease=lease)
        other.host = "replica-2"  # not the same host: only the lease can free it
        with pytest.raises(PassLocked), other.hold("sync"):
            pass


def test_wait_is_bounded(store):
    holder = Locks(store.engine, lease=60)
    with holder.hold("backfill"):
        other = Locks(store.engine, lease=60)
        other.host = "replica-2"
        started = time.monotonic()
        with pytest.raises(PassLocked), other.hold("sync", wait=2):
            pass
        assert time.monotonic() - started >= 2


def test_a_holder_that_was_an_earlier_start_of_this_pid_is_taken_over_at_once(store):
    """A container's daemon restarted as PID 1 on the same hostname finds its crashed predecessor's lock: taken over
    at once, not after the lease (issue 18)."""
    import os
    import socket

    crashed = Locks(store.engine, lease=600)
    assert crashed.try_acquire("pass", "sync") is not None
    with store.engine.begin() as conn:
        conn.execute(update(locks_t).values(process=f"{socket.gethostname()}:{os.getpid()}:0badc0de"))
    assert Locks(store.engine, lease=600).try_acquire("pass", "sync") is not None

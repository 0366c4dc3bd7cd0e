"""Issue 18: one leader among the replicas on a store; another takes over when it dies, within the lease."""

from __future__ import annotations

import time

from connector.server.leadership import Leadership


def test_one_replica_leads_and_another_takes_over_within_the_lease_when_it_dies(store):
    elected: list[str] = []
    a = Leadership(store, "127.0.0.1:8001", 1.0, on_elected=lambda: elected.append("a"), me="hosta:101")
    b = Leadership(store, "127.0.0.1:8002", 1.0, on_elected=lambda: elected.append("b"), me="hostb:102")
    a.beat()
    b.beat()
    assert (a.is_leader, b.is_leader) == (True, False)
    assert elected == ["a"]
    role = b.role()
    assert (role.role, role.leader, role.id) == ("follower", "hosta:101", "hostb:102")
    assert role.lease_expires_at is not None
    assert sorted(r.id for r in store.replicas.live()) == ["hosta:101", "hostb:102"]

    # a stops beating (SIGKILL): b keeps asking and takes the lease once a's last beat is a lease old.
    died = time.monotonic()
    while not b.is_leader:
        b.beat()
        assert time.monotonic() - died < 1.25 * 1.0 + 0.5, "no takeover within 1.25 leases"
        time.sleep(0.05)
    assert time.monotonic() - died >= 0.9  # not before the lease ran out: a might only have been slow
    assert elected == ["a", "b"]
    assert [r.id for r in store.replicas.live()] == ["hostb:102"]  # a's row is stale: not listed as live
    # a comes back from its stall: its renew fails, it steps down instead of leading beside b.
    a.beat()
    assert (a.is_leader, b.is_leader) == (False, True)
    a.beat()
    assert not a.is_leader


def test_a_clean_stop_hands_the_lease_over_at_once(store):
    a = Leadership(store, "127.0.0.1:8001", 30.0, me="hosta:101")
    b = Leadership(store, "127.0.0.1:8002", 30.0, me="hostb:102")
    a.start()
    b.beat()
    assert a.is_leader and not b.is_leader
    a.stop()
    assert [r.id for r in store.replicas.live()] == ["hostb:102"]
    b.beat()  # its next beat: no waiting for a 30 s lease
    assert b.is_leader
    b.stop()
    assert a.leader() is None

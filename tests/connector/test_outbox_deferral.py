"""The outbox on SQLite and PostgreSQL: an action a rate limit defers waits for its time with no attempt counted, and
an action whose write may have landed is verified (found by ``orphaned``) before anything is sent again, even by the
process that sent it."""

from __future__ import annotations

from datetime import timedelta

from connector.core.clock import utcnow
from connector.core.grants import GrantKey
from connector.state import NewAction

BADGE = GrantKey("badge", "Verified Buyer")


def one_claimed(store):
    store.plans.apply_plan([], [NewAction("forum", "e:a@x.org", BADGE, "grant", "alice")], [], [])
    [row] = store.outbox.claim(store.outbox.due("forum", utcnow()))
    return row


def test_a_deferred_action_waits_for_its_time_and_counts_no_attempt(store):
    row = one_claimed(store)
    until = utcnow() + timedelta(seconds=1337)
    store.outbox.defer([row], until, "deferred until …: discord rate limit (shared scope)")
    assert store.outbox.due("forum", utcnow()) == []
    assert store.outbox.orphaned("forum") == []
    counts = store.status.outbox_counts()
    assert counts["pending"] == 1 and counts["failed"] == 0 and counts["dead"] == 0
    [due] = store.outbox.due("forum", until + timedelta(seconds=1))
    assert due.id == row.id and due.attempts == 0 and due.status == "pending"
    assert (due.last_error or "").startswith("deferred until")


def test_an_action_whose_outcome_is_unknown_is_verified_first_even_by_the_same_process(store):
    row = one_claimed(store)
    store.outbox.unsure([row], "outcome unknown: POST /user_badges.json answered 502")
    assert store.outbox.due("forum", utcnow() + timedelta(days=1)) == []  # never re-sent as a plain due row
    [orphan] = store.outbox.orphaned("forum")  # this very process: not skipped as "its own claim"
    assert orphan.id == row.id and orphan.attempts == 1 and orphan.status == "sending"
    assert store.status.outbox_counts()["dead"] == 0

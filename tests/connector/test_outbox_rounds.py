"""Delivery rounds in the outbox, on SQLite and PostgreSQL: one batched claim hands each row to exactly one process,
and a round's settling (done with the ledger, failed, given back) commits together or not at all."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from connector.core.clock import utcnow
from connector.core.grants import GrantKey
from connector.state import NewAction, State
from connector.state.db import open_engine
from connector.state.outbox import this_process
from connector.state.sql import ledger_t, outbox_t

BADGE = GrantKey("badge", "Verified Buyer")
ROWS = 240
ROUND = 20


def planned(store, count, op="grant"):
    actions = [NewAction("forum", f"e:{i}@x.org", BADGE, op, f"user{i}") for i in range(count)]
    store.plans.apply_plan([], actions, [], [])
    return store.outbox.due("forum", utcnow(), limit=10 * count)


def _claimer(url, order, barrier, results):  # runs in its own process (spawned)
    got, error = [], None
    try:
        engine = open_engine(url)
        store = State(engine)
        due = store.outbox.due("forum", utcnow(), limit=10 * ROWS)
        rounds = [due[start : start + ROUND] for start in range(0, len(due), ROUND)]
        if order == "reversed":
            rounds = [list(reversed(r)) for r in reversed(rounds)]
        barrier.wait(30)
        for batch in rounds:
            got += [(row.id, row.claimed_by) for row in store.outbox.claim(batch)]
        engine.dispose()
    except Exception as raised:  # reported to the test, which fails with it
        error = f"{type(raised).__name__}: {str(raised).splitlines()[0]}"
    results.put((this_process(), got, error))


def test_two_processes_claiming_the_same_rounds_get_each_row_exactly_once(store):
    """Both read the same due rows, then claim them in rounds of 20 at the same moment, one from each end (claimed a
    row at a time, the two took overlapping rows' locks in opposite orders: PostgreSQL failed one with a deadlock)."""
    ids = {row.id for row in planned(store, ROWS)}
    url = store.engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_claimer, args=(url, order, barrier, results)) for order in ("id", "reversed")]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert [error for _, _, error in answers] == [None, None]  # e.g. no deadlock between the two
    got = {process: rows for process, rows, _ in answers}
    first, second = ({row_id for row_id, _ in rows} for rows in got.values())
    assert first.isdisjoint(second)  # no row went to both
    assert first | second == ids  # and none was lost
    with store.engine.connect() as conn:
        owners = dict(conn.execute(select(outbox_t.c.id, outbox_t.c.claimed_by)).all())
        statuses = set(conn.execute(select(outbox_t.c.status)).scalars())
    assert statuses == {"sending"}
    for process, rows in got.items():  # each row is held by the process that was handed it
        assert all(owners[row_id] == claimed_by == process for row_id, claimed_by in rows)


def test_a_batched_claim_skips_rows_no_longer_due_and_keeps_the_given_order(store):
    due = planned(store, 5)
    with store.engine.begin() as conn:  # another process took one; another row was finished meanwhile
        conn.execute(update(outbox_t).where(outbox_t.c.id == due[1].id).values(status="sending", claimed_by="b:1"))
        conn.execute(update(outbox_t).where(outbox_t.c.id == due[3].id).values(status="done"))
    claimed = store.outbox.claim(list(reversed(due)))
    assert [row.id for row in claimed] == [due[4].id, due[2].id, due[0].id]
    assert all(row.status == "sending" and row.claimed_by == this_process() for row in claimed)
    assert store.outbox.claim(due) == []  # nothing is handed out twice


def test_a_round_settles_together_or_not_at_all(store):
    rows = store.outbox.claim(planned(store, 4))
    with store.engine.begin() as conn:  # the first customer's badge was revoked before: the ledger has its row
        conn.execute(
            ledger_t.insert().values(
                community="forum",
                customer_key=rows[0].customer_key,
                kind="badge",
                target=BADGE.target,
                state="revoked",
                remote_username="old",
                updated_at=utcnow(),
            )
        )
    with pytest.raises(RuntimeError), store.outbox.settling() as settle:
        settle.complete(rows[:2], {rows[0].id: "501", rows[1].id: "502"})
        settle.fail(rows[2:3], "HTTP 422", max_attempts=3, retry_base=0)
        settle.release(rows[3:])
        raise RuntimeError("the process dies before the round's commit")
    assert store.status.outbox_counts()["sending"] == 4  # all still to verify
    assert store.ledger.granted("forum") == {}

    with store.outbox.settling() as settle:
        settle.complete(rows[:2], {rows[0].id: "501", rows[1].id: "502"})
        settle.fail(rows[2:3], "HTTP 422", max_attempts=3, retry_base=0)
        settle.release(rows[3:])
    counts = store.status.outbox_counts()
    assert (counts["done"], counts["failed"], counts["pending"], counts["sending"]) == (2, 1, 1, 0)
    holders = store.ledger.granted("forum")[("badge", BADGE.target)]
    assert sorted(holders) == [(rows[0].customer_key, "user0"), (rows[1].customer_key, "user1")]
    refs = store.ledger.ledger_refs([("forum", r.customer_key, "badge", BADGE.target) for r in rows])
    key = ("forum", "", "badge", BADGE.target)
    assert refs == {
        (*key[:1], rows[0].customer_key, *key[2:]): "501",
        (*key[:1], rows[1].customer_key, *key[2:]): "502",
    }
    # the released row waits for the next pass, the failed one for its retry time
    assert [r.id for r in store.outbox.due("forum", utcnow() + timedelta(seconds=1))] == [rows[2].id, rows[3].id]


@pytest.fixture
def pg_store():
    from tests.conftest import PG_ADMIN_URL, _postgres_database

    admin, name = _postgres_database()
    engine = open_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    yield State(engine)
    engine.dispose()
    from sqlalchemy import text

    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_replica_claiming_skips_rows_another_is_claiming_instead_of_waiting(pg_store):
    """Issue 18: a claim in flight on one replica (its transaction holds the rows' locks) does not stall another
    replica's claim of an overlapping round: it gets the other rows at once (``SKIP LOCKED``)."""
    import threading

    from sqlalchemy import text

    store = pg_store
    rows = planned(store, 6)
    got: list = []
    with store.engine.connect() as other:
        lock = text("SELECT id FROM outbox WHERE id = ANY(:ids) FOR UPDATE")
        other.execute(lock, {"ids": [r.id for r in rows[:3]]})  # the first replica's claim, not committed yet
        claimer = threading.Thread(target=lambda: got.extend(store.outbox.claim(rows)), daemon=True)
        claimer.start()
        claimer.join(timeout=5)
        stalled = claimer.is_alive()
        other.rollback()  # lets a stalled claim finish, so the test ends either way
    claimer.join(timeout=10)
    assert not stalled, "the claim waited for the other replica's transaction"
    assert [r.id for r in got] == [r.id for r in rows[3:]]

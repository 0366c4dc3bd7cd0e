"""The state store, on a real SQLite file and on PostgreSQL: pages, dirty tracking, outbox lifecycle, recovery."""

from datetime import UTC, datetime, timedelta

from connector.core.clock import utcnow
from connector.core.grants import GrantKey
from connector.core.models import Order, OrderLine, OrderStatus, Quarantined
from connector.state import NewAction

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
BADGE = GrantKey("badge", "Verified Buyer")


def order(id, key="e:a@x.org", status=OrderStatus.PAID, products=(1,), modified=T0):
    return Order(
        id=str(id),
        customer_key=key,
        email=key[2:] if key.startswith("e:") else None,
        status=status,
        total="9.90",
        currency="CNY",
        created_at=T0,
        modified_at=modified,
        lines=tuple(OrderLine(product_id=p, name=f"p{p}") for p in products),
    )


def test_page_and_cursor_commit_together_and_rereads_are_clean(store):
    result = store.records.save_orders_page("orders", [order(1), order(2, "c:7")], [], "2026-11-01T12:00:00Z")
    assert (result.inserted, result.updated) == (2, 0)
    assert store.records.get_cursor("orders") == "2026-11-01T12:00:00Z"
    assert store.plans.dirty_customer_keys() == ["c:7", "e:a@x.org"]
    store.plans.apply_plan(["c:7", "e:a@x.org"], [], [], [])
    again = store.records.save_orders_page("orders", [order(1), order(2, "c:7")], [], "2026-11-01T12:00:00Z")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert store.plans.dirty_customer_keys() == []  # a re-read page costs no planning


def test_status_change_marks_customer_dirty(store):
    store.records.save_orders_page("orders", [order(1)], [], None)
    store.plans.apply_plan(["e:a@x.org"], [], [], [])
    store.records.save_orders_page(
        "orders", [order(1, status=OrderStatus.REFUNDED, modified=T0 + timedelta(hours=1))], [], None
    )
    assert store.plans.dirty_customer_keys() == ["e:a@x.org"]
    [inputs] = store.plans.plan_inputs(["e:a@x.org"])
    assert inputs.paid_orders == ()


def test_quarantine_is_kept_with_reason_and_cleared_when_fixed(store):
    store.records.save_orders_page(
        "orders", [], [Quarantined(stream="orders", record_id="9", reason="unknown order status")], None
    )
    total, rows = store.status.quarantined()
    assert total == 1 and rows[0].reason == "unknown order status"
    store.records.save_orders_page("orders", [order(9)], [], None)
    assert store.status.quarantined()[0] == 0


def test_a_shops_own_stream_name_leaves_quarantine_when_the_record_reads_cleanly(store):
    """Adapters name their streams (``woocommerce.orders``); the pull stores pages under ``orders``."""
    bad = Quarantined(stream="woocommerce.orders", record_id="9", reason="created_at: not a date")
    store.records.save_orders_page("orders", [], [bad], None)
    assert store.status.quarantined()[0] == 1
    store.records.save_orders_page("orders", [order(9)], [], None)
    assert store.status.quarantined()[0] == 0


def test_outbox_lifecycle_and_ledger(store):
    store.records.save_orders_page("orders", [order(1)], [], None)
    store.plans.apply_plan(["e:a@x.org"], [NewAction("forum", "e:a@x.org", BADGE, "grant", "alice")], [], [])
    [due] = store.outbox.due("forum", utcnow())
    [row] = store.outbox.claim([due])
    assert row.status == "sending" and row.key == "forum/e:a@x.org/badge/Verified Buyer/grant/1"
    assert store.outbox.claim([due]) == []  # a claimed row is not handed out twice
    assert store.outbox.due("forum", utcnow()) == []
    store.outbox.complete([row], {row.id: "77"})
    assert store.ledger.ledger_ref("forum", "e:a@x.org", "badge", "Verified Buyer") == "77"
    assert store.status.outbox_counts()["done"] == 1


def test_failed_actions_retry_then_park_as_dead(store):
    store.plans.apply_plan([], [NewAction("forum", "e:a@x.org", BADGE, "grant", "alice")], [], [])
    for _ in range(3):
        [row] = store.outbox.claim(store.outbox.due("forum", utcnow() + timedelta(days=1)))
        died = store.outbox.fail([row], "HTTP 422: nope", max_attempts=3, retry_base=0)
    assert died == 1
    counts = store.status.outbox_counts()
    assert counts["dead"] == 1 and counts["failed"] == 0
    [problem] = store.status.problem_actions()
    assert problem.last_error == "HTTP 422: nope" and problem.attempts == 3
    assert store.outbox.retry_dead() == 1
    assert store.status.outbox_counts()["pending"] == 1


def test_rows_left_sending_by_a_dead_process_are_found(store):
    store.plans.apply_plan([], [NewAction("forum", "e:a@x.org", BADGE, "grant", "alice")], [], [])
    [row] = store.outbox.claim(store.outbox.due("forum", utcnow()))
    from sqlalchemy import update

    from connector.state.sql import outbox_t

    # Another host's process cannot be asked: its claim stands while it shows a heartbeat (a replica's row, or a
    # lock it holds), and is verified and finished here once the heartbeat is older than its lease.
    store.replicas.beat("otherhost:1", "10.0.0.2:8080", "1.0", 30.0, utcnow())
    with store.engine.begin() as conn:
        conn.execute(update(outbox_t).values(claimed_by="otherhost:1"))
    assert store.outbox.orphaned("forum") == []
    from connector.state.replicas import replicas_t

    with store.engine.begin() as conn:  # its last beat 31 s ago: SIGKILLed, or cut off
        conn.execute(update(replicas_t).values(heartbeat_at=utcnow() - timedelta(seconds=31)))
    [orphan] = store.outbox.orphaned("forum")
    assert orphan.id == row.id
    store.outbox.release([orphan])
    [row] = store.outbox.claim(store.outbox.due("forum", utcnow()))
    import socket

    with store.engine.begin() as conn:
        conn.execute(update(outbox_t).values(claimed_by=f"{socket.gethostname()}:999999999"))
    [orphan] = store.outbox.orphaned("forum")
    assert orphan.id == row.id


def test_a_claim_of_an_earlier_start_of_this_very_pid_is_orphaned(store):
    """A daemon in a container is PID 1 again after its restart policy starts it, under the same hostname: the rows
    the crashed start left in ``sending`` are its predecessor's, to verify, not its own (issue 18, found by helper B)."""
    import os
    import socket

    from sqlalchemy import update

    from connector.state.process import this_process
    from connector.state.sql import outbox_t

    store.plans.apply_plan([], [NewAction("forum", "e:a@x.org", BADGE, "grant", "alice")], [], [])
    [row] = store.outbox.claim(store.outbox.due("forum", utcnow()))
    assert store.outbox.orphaned("forum") == []  # ours, this start: in flight, not orphaned
    earlier = f"{socket.gethostname()}:{os.getpid()}:0badc0de"
    assert earlier != this_process()
    with store.engine.begin() as conn:
        conn.execute(update(outbox_t).values(claimed_by=earlier))
    [orphan] = store.outbox.orphaned("forum")
    assert orphan.id == row.id and orphan.claimed_by == this_process()


def test_identity_matching_marks_customer_dirty(store):
    store.records.save_orders_page("orders", [order(1)], [], None)
    store.plans.apply_plan(["e:a@x.org"], [], [], [("forum", "e:a@x.org")])
    assert store.identities.identities_due("forum", utcnow()) == [("e:a@x.org", "a@x.org")]
    assert store.identities.unmatched_counts() == {"forum": 1}
    store.identities.record_matches("forum", {"e:a@x.org": ("5", "alice")}, [], timedelta(minutes=15))
    assert store.identities.unmatched_counts() == {}
    assert store.plans.dirty_customer_keys() == ["e:a@x.org"]


def test_order_numbers_are_found_by_keyed_hash_and_never_stored(tmp_path):
    from connector.state import State
    from connector.state.db import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'numbers.db'}")
    store = State(engine, order_number_key=b"k" * 40)
    numbered = order(5, "e:buyer@x.org").model_copy(update={"number": "ZWF3H2KQ1Y0ABCDE"})
    store.records.save_orders_page("orders", [numbered, order(6, "c:9")], [], None)
    owner = store.identities.order_owner
    assert owner(" zwf3h2kq1y0abcde ") == ("e:buyer@x.org", "buyer@x.org")  # as a buyer might type it
    assert owner("5") is None  # the internal id is not what buyers know when the shop has a number
    assert owner("6") == ("c:9", None)  # no separate number: the id is the number
    assert owner("ZWF3H2KQ1Y0ABCDX") is None
    engine.dispose()
    assert b"ZWF3H2KQ1Y0ABCDE" not in (tmp_path / "numbers.db").read_bytes()
    legacy = State(open_engine(f"sqlite:///{tmp_path / 'numbers.db'}"))  # before [link]: ids only
    assert legacy.identities.order_owner("5") == ("e:buyer@x.org", "buyer@x.org")


def test_relinking_a_customer_queues_revokes_for_the_old_account(store):
    store.records.save_orders_page("orders", [order(1)], [], None)
    store.identities.link("forum", "e:a@x.org", "5", "alice")
    store.plans.apply_plan(["e:a@x.org"], [NewAction("forum", "e:a@x.org", BADGE, "grant", "alice")], [], [])
    store.outbox.complete(store.outbox.claim(store.outbox.due("forum", utcnow())))
    assert store.ledger.granted("forum") == {("badge", "Verified Buyer"): [("e:a@x.org", "alice")]}
    assert store.identities.link("forum", "e:a@x.org", "6", "bob") == "alice"
    [revoke] = store.outbox.due("forum", utcnow())
    assert (revoke.op, revoke.remote_username, revoke.customer_key) == ("revoke", "alice", "e:a@x.org#was:alice")
    assert store.ledger.granted("forum") == {}  # so the planner grants the badge again, to bob
    assert store.plans.dirty_customer_keys() == ["e:a@x.org"]
    assert store.identities.identity("forum", "e:a@x.org").remote_username == "bob"


def test_member_tokens_need_a_key_and_are_encrypted_at_rest(tmp_path):
    from cryptography.fernet import Fernet

    from connector.state import State

    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    assert State.open(url).tokens is None  # no [link] token_key: nothing can be stored
    state = State.open(url, token_key=Fernet.generate_key().decode())
    assert state.tokens is not None
    state.tokens.save("discord", "c:1", "42", ["identify"], "access-secret", "refresh-secret", 2_000_000_000)
    token = state.tokens.get("discord", "c:1")
    assert token is not None and (token.user_id, token.access_token) == ("42", "access-secret")
    state.close()
    assert b"access-secret" not in (tmp_path / "tokens.db").read_bytes()


def test_a_features_own_position_is_no_shop_stream_and_shows_no_lag(store):
    """The last product event announced to a community moves only when there is news: listed among the shop's
    streams, its age would read as hours of lag on /healthz, `status` and `cardbridge_lag_seconds` (issue 17)."""
    store.records.save_orders_page("orders", [order(1)], [], "2026-01-01T00:00:00Z")
    store.records.set_cursor("announce:forum", "7")
    assert list(store.records.cursors()) == ["orders"]
    assert store.records.get_cursor("announce:forum") == "7"

"""Redemptions in the state store: reserved in the ledger first, never below zero, one row per request."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import insert

from connector.core.clock import utcnow
from connector.state.redemptions import Request
from connector.state.sql import customers_t


def _customer(store, key: str, points: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(insert(customers_t).values(key=key, email=None, dirty=False, updated_at=utcnow()))
    store.reviews.add_point_events(key, [(f"order:{key}", points, "order")])


def _redeem(key: str, points: int = 500, customer: str | None = "c:1", **extra) -> Request:
    return Request(
        key=key,
        community="forum",
        member_id="7",
        customer_key=customer,
        command="redeem",
        language="en",
        points=points,
        amount="5.00",
        coupon_type="fixed_cart",
        **extra,
    )


def test_two_redemptions_at_the_same_moment_never_take_the_balance_below_zero(store):
    _customer(store, "c:1", 600)
    barrier = threading.Barrier(4)
    results = []

    def ask(n: int) -> None:
        barrier.wait()
        row, _new = store.redemptions.record(_redeem(f"forum:pm:{n}"))
        results.append(row.status)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["refused", "refused", "refused", "reserved"]
    assert store.redemptions.balance("c:1") == 100
    # The community still shows what was earned; spending is not a loss of standing.
    assert store.reviews.point_total("c:1") == 600


def test_the_same_request_twice_is_one_redemption(store):
    _customer(store, "c:1", 1200)
    first, new = store.redemptions.record(_redeem("forum:pm:9"))
    again, new_again = store.redemptions.record(_redeem("forum:pm:9"))
    assert (new, new_again) == (True, False)
    assert first.id == again.id
    assert store.redemptions.balance("c:1") == 700


def test_a_negative_balance_after_a_refund_blocks_redemptions(store):
    _customer(store, "c:1", 500)
    store.redemptions.record(_redeem("forum:pm:1"))
    store.reviews.add_point_events("c:1", [("order:c:1:reversal", -500, "refund")])
    row, _ = store.redemptions.record(_redeem("forum:pm:2", points=1))
    assert (row.status, row.reason) == ("refused", "debt")
    assert store.redemptions.balance("c:1") == -500


def test_cancel_gives_the_points_back_once_and_never_after_the_coupon_exists(store):
    _customer(store, "c:1", 1000)
    waiting, _ = store.redemptions.record(_redeem("forum:pm:1", needs_approval=True))
    assert waiting.status == "waiting"
    assert store.redemptions.balance("c:1") == 500
    assert store.redemptions.cancel(waiting.id)
    assert not store.redemptions.cancel(waiting.id)
    assert store.redemptions.balance("c:1") == 1000
    issued, _ = store.redemptions.record(_redeem("forum:pm:2"))
    store.redemptions.issued(issued.id, "77")
    assert not store.redemptions.cancel(issued.id)
    assert store.redemptions.balance("c:1") == 500


def test_a_member_with_no_shop_customer_is_refused_without_a_deduction(store):
    row, _ = store.redemptions.record(_redeem("forum:pm:1", customer=None))
    assert (row.status, row.reason) == ("refused", "not-linked")


def test_a_parked_answer_can_be_sent_again_and_old_questions_are_pruned_but_redemptions_kept(store):
    _customer(store, "c:1", 600)
    issued, _ = store.redemptions.record(_redeem("forum:pm:1"))
    store.redemptions.issued(issued.id, "9")
    assert store.redemptions.failed(issued.id, "HTTP 422", max_attempts=1, base_seconds=0)
    assert store.redemptions.by_id(issued.id).reply == "parked"
    assert store.redemptions.retry(issued.id)
    assert store.redemptions.by_id(issued.id).reply == "pending"
    asked, _ = store.redemptions.record(
        Request(key="forum:pm:2", community="forum", member_id="7", customer_key="c:1", command="points", language="en")
    )
    store.redemptions.replied(asked.id, "77")
    store.redemptions.replied(issued.id, "78")
    assert store.redemptions.prune(utcnow() + timedelta(seconds=1)) == 1
    assert store.redemptions.by_id(asked.id) is None and store.redemptions.by_id(issued.id) is not None

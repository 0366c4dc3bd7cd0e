"""The state store's side of vanished orders (issue 13, item 8), on SQLite and PostgreSQL: stored paid ids are read in
keyset chunks, a vanished order becomes ``deleted`` and its customer is planned again, and the status counts buyers
who have no email apart from the unmatched."""

from datetime import timedelta

from connector.core.models import OrderStatus
from tests.connector.test_store import order


def test_paid_ids_come_in_keyset_chunks_and_deleted_orders_replan_their_customers(store):
    records = store.records
    paid = [order(n, f"e:b{n}@x.org") for n in range(1, 8)]
    records.save_orders_page("orders", [*paid, order(99, status=OrderStatus.REFUNDED)], [], None)
    store.plans.apply_plan(store.plans.dirty_customer_keys(), [], [], [])
    chunks, after = [], None
    while ids := records.paid_order_ids(after, limit=3):
        chunks.append(ids)
        after = ids[-1]
    assert chunks == [["1", "2", "3"], ["4", "5", "6"], ["7"]]  # ids are text: "99" is refunded, not listed
    assert records.mark_orders_deleted(["2", "5", "404"]) == 2
    assert records.mark_orders_deleted(["2"]) == 0  # already deleted: nothing changes
    assert store.plans.dirty_customer_keys() == ["e:b2@x.org", "e:b5@x.org"]
    assert records.paid_order_ids() == ["1", "3", "4", "6", "7"]
    again = records.save_orders_page("orders", [order(2, "e:b2@x.org")], [], None)  # restored in the shop
    assert again.updated == 1 and "2" in records.paid_order_ids()


def test_buyers_without_email_are_counted_apart_from_the_unmatched(store):
    store.records.save_orders_page("orders", [order(1, "c:8"), order(2, "e:a@x.org")], [], None)
    assert store.status.buyers_without_email() == 1  # c:8 has no email (a member who registered by phone)
    keys = ["c:8", "e:a@x.org"]
    store.plans.apply_plan(keys, [], [], [("forum", key) for key in keys])  # both wait for a forum account
    store.identities.record_matches("forum", {}, keys, timedelta(minutes=15))
    assert store.status.unmatched_with_email() == {"forum": 1}

"""On SQLite and PostgreSQL: a customer no look-up has answered for is "waiting for a look-up", not "unmatched"
(issue 14); one the community answered for and has no account for is unmatched."""

from datetime import timedelta

from tests.connector.test_store import order


def test_a_failed_look_up_leaves_customers_waiting_and_an_answered_one_unmatched(store):
    keys = ["e:a@x.org", "e:b@x.org", "c:9"]
    store.records.save_orders_page("orders", [order(n, key) for n, key in enumerate(keys, 1)], [], None)
    store.plans.apply_plan(keys, [], [], [("forum", key) for key in keys])
    # The forum was down: the match stage recorded nothing (connector/flow/match.py).
    assert store.status.waiting_for_lookup() == {"forum": 2}  # c:9 has no email: counted apart, never "waiting"
    assert store.status.unmatched_with_email() == {}
    store.identities.record_matches("forum", {"e:a@x.org": ("5", "alice")}, ["e:b@x.org", "c:9"], timedelta(0))
    assert store.status.waiting_for_lookup() == {}
    assert store.status.unmatched_with_email() == {"forum": 1}

"""Identity proofs in the state store (SQLite and PostgreSQL): a link moves to another account only for a stronger
proof; paid orders prove, unpaid ones do not; single-use tokens are spent once and pruned after they expire."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from connector.core.clock import utcnow
from connector.core.models import OrderStatus
from connector.state import NewAction
from connector.state.identities import LinkRefused, Proof, spent_t
from connector.state.sql import identities_t
from tests.connector.test_store import BADGE, order


def linked(store, key="e:a@x.org"):
    row = store.identities.identity("discord", key)
    return (row.remote_user_id, row.proof) if row else None


def test_an_order_number_links_a_customer_nobody_holds_and_moves_nothing(store):
    store.records.save_orders_page("orders", [order(1)], [], None)
    ids = store.identities
    assert ids.link("discord", "e:a@x.org", "111", "111", proof=Proof.ORDER_NUMBER) is None
    assert linked(store) == ("111", "order-number")
    store.plans.apply_plan(["e:a@x.org"], [NewAction("discord", "e:a@x.org", BADGE, "grant", "111")], [], [])
    store.outbox.complete(store.outbox.claim(store.outbox.due("discord", utcnow())))
    with pytest.raises(LinkRefused) as refused:
        ids.link("discord", "e:a@x.org", "666", "666", proof=Proof.ORDER_NUMBER)
    assert refused.value.current is Proof.ORDER_NUMBER
    # Nothing moved: the link, the ledger and the outbox are as they were (no revoke for the holder).
    assert linked(store) == ("111", "order-number")
    assert store.ledger.granted("discord") == {("badge", "Verified Buyer"): [("e:a@x.org", "111")]}
    assert store.outbox.due("discord", utcnow()) == []


def test_stronger_proofs_move_equal_ones_do_not_and_the_admin_moves_any(store):
    ids = store.identities
    ids.link("discord", "e:a@x.org", "111", "111", proof=Proof.ORDER_NUMBER)
    assert ids.link("discord", "e:a@x.org", "222", "222", proof=Proof.VERIFIED_EMAIL) == "111"
    assert linked(store) == ("222", "verified-email")
    for equal in (Proof.SIGNED_LINK, Proof.VERIFIED_EMAIL, Proof.ORDER_NUMBER):
        with pytest.raises(LinkRefused):
            ids.link("discord", "e:a@x.org", "333", "333", proof=equal)
    # The same account proven again keeps the stronger proof of the two.
    assert ids.link("discord", "e:a@x.org", "222", "222", proof=Proof.ORDER_NUMBER) is None
    assert linked(store) == ("222", "verified-email")
    assert ids.link("discord", "e:a@x.org", "333", "333") == "222"  # the admin CLI
    assert ids.link("discord", "e:a@x.org", "444", "444") == "333"  # moves even an admin's link
    assert linked(store) == ("444", "admin")
    with pytest.raises(ValueError):
        ids.link("discord", "e:a@x.org", None, None, proof=Proof.SIGNED_LINK)  # only the admin unlinks


def test_links_made_before_proofs_were_recorded_count_as_the_weakest(store):
    ids = store.identities
    ids.link("discord", "e:a@x.org", "111", "111")
    with store.engine.begin() as conn:
        conn.execute(update(identities_t).values(proof=None))
    with pytest.raises(LinkRefused):
        ids.link("discord", "e:a@x.org", "666", "666", proof=Proof.ORDER_NUMBER)
    assert ids.link("discord", "e:a@x.org", "222", "222", proof=Proof.SIGNED_LINK) == "111"


def test_a_discourse_email_match_is_recorded_as_a_forum_email_proof(store):
    store.records.save_orders_page("orders", [order(1)], [], None)
    store.plans.apply_plan(["e:a@x.org"], [], [], [("forum", "e:a@x.org")])
    store.identities.record_matches("forum", {"e:a@x.org": ("5", "alice")}, [], timedelta(minutes=15))
    assert store.identities.identity("forum", "e:a@x.org").proof == "forum-email"


def test_only_a_paid_order_proves_and_numbers_are_found_whatever_their_case(store):
    unpaid = order("wc-7-kq", "e:b@x.org", status=OrderStatus.UNPAID)
    store.records.save_orders_page("orders", [order("wc-5-kq"), unpaid], [], None)
    found = store.identities.order_proof("WC-5-KQ")  # no [link] key here: the legacy id, case-insensitive
    assert (found.customer_key, found.email, found.paid) == ("e:a@x.org", "a@x.org", True)
    assert store.identities.order_proof("WC-7-KQ").paid is False
    assert store.identities.order_proof("WC-9-KQ") is None


def test_single_use_tokens_are_spent_once_and_pruned_after_they_expire(store):
    ids, now = store.identities, utcnow()
    assert not ids.token_spent("link", "t1")
    assert ids.spend_token("link", "t1", now + timedelta(hours=72))
    assert ids.token_spent("link", "t1")
    assert not ids.spend_token("link", "t1", now + timedelta(hours=72))
    assert ids.spend_token("state", "t1", now + timedelta(minutes=15))  # kinds do not collide
    assert ids.spend_token("state", "old", now - timedelta(hours=1))
    assert ids.spend_token("state", "n2", now + timedelta(minutes=15))  # prunes what expired
    with store.engine.connect() as conn:
        keys = list(conn.execute(select(spent_t.c.key)).scalars())
    assert len(keys) == 3 and not any("t1" in k or "old" in k for k in keys)  # hashes only

"""Issue 12, item 1, for Discourse: a forum account proves an email only once its owner has confirmed it.

Anyone can sign up on a forum with a buyer's email; until the confirmation link is clicked the account is not
``active`` (``EmailToken.confirm`` sets it). The admin user list CardBridge reads includes such accounts unless
``activation=activated`` is sent, and forums older than that parameter ignore it. Over real HTTP, both look-up paths
(one ``email=`` call per customer, and the bulk pages), against a current forum and an older one.
"""

from __future__ import annotations

import pytest

BADGE = "Verified Buyer"


@pytest.mark.parametrize("bulk", [20, 0], ids=["per-email", "bulk"])
@pytest.mark.parametrize("activation_filter", [True, False], ids=["current-forum", "older-forum"])
def test_an_account_not_activated_gets_no_badge_until_its_owner_confirms_the_email(world, bulk, activation_filter):
    shop, forum = world.shop, world.forum
    world.write_config(bulk=bulk)
    forum.activation_filter = activation_filter
    card = shop.add_product("Steam 钱包充值卡 $20", "145.00")
    shop.add_order(email="alice@example.com", items=[(card, 1)], status="completed")
    shop.add_order(email="dave@example.com", items=[(card, 1)], status="completed")
    forum.add_user("alice", "alice@example.com")
    # Someone signed up with Dave's address; the confirmation mail went to Dave, and nobody clicked it.
    forum.add_user("dave_or_not", "Dave@Example.com", active=False)

    run = world.cli("sync")
    assert run.code == 0, run.output
    assert BADGE in forum.badges_of("alice")
    assert forum.badges_of("dave_or_not") == [] and forum.groups_of("dave_or_not") == []
    assert world.cli("status", "--json").json()["unmatched_customers"] == 1
    lookups = [r for r in forum.requests if r["path"] == "/admin/users/list/active.json"]
    assert lookups and all(r["query"].get("activation") == "activated" for r in lookups)

    # A pass while it is still unconfirmed changes nothing.
    assert world.cli("sync").code == 0
    assert forum.badges_of("dave_or_not") == []

    # Dave clicks the link: the account is his, and the next pass matches and grants.
    forum.activate("dave_or_not")
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert forum.badges_of("dave_or_not") == [BADGE] and "verified-buyers" in forum.groups_of("dave_or_not")
    assert world.cli("status", "--json").json()["unmatched_customers"] == 0

"""Issue 13, item 2: a forum member renamed after CardBridge matched them still gets the group and the badge, and
revokes still reach them.

On a real forum the old name finds nobody: a group add by ``usernames`` drops it without a word (200, or 400 when
nobody in the call resolves), ``POST /user_badges`` answers 404. CardBridge knows each member's forum user id.
"""

from __future__ import annotations

import sqlite3

FIRST = ("Verified Buyer", "verified-buyers")
SECOND = ("Collector", "collectors")
RULES = """
[[rules]]
name = "collector"
products = [{key}]
grant.forum = {{ badge = "Collector", group = "collectors", group_title = "Collector" }}
"""


def _identity(world, email: str) -> tuple[str, str]:
    with sqlite3.connect(world.db_path) as db:
        row = db.execute(
            "SELECT remote_user_id, remote_username FROM identities WHERE community = 'forum' AND customer_key LIKE ?",
            (f"%{email}%",),
        ).fetchone()
    return row[0], row[1]


def _outbox(world) -> dict[str, int]:
    with sqlite3.connect(world.db_path) as db:
        return dict(db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())


def test_a_member_renamed_after_matching_gets_new_grants_and_loses_revoked_ones(world):
    shop, forum = world.shop, world.forum
    card = shop.add_product("王者荣耀 点券 60元", "60.00")
    key = shop.add_product("Elden Ring Steam Key", "199.00")
    world.write_config(extra=RULES.format(key=key))
    first = shop.add_order(email="alice@example.com", items=[(card, 1)], status="completed")
    alice = forum.add_user("alice", "alice@example.com")
    forum.add_user("bob", "bob@example.com")
    shop.add_order(email="bob@example.com", items=[(card, 1)], status="completed")
    assert world.cli("sync").code == 0
    assert forum.badges_of("alice") == [FIRST[0]] and forum.groups_of("alice") == [FIRST[1]]

    # Alice renames herself on the forum, then buys the key (a second badge and group), in one pass with Bob's.
    forum.rename_user("alice", "alice_liu")
    second = shop.add_order(email="alice@example.com", items=[(key, 1)], status="completed")
    shop.add_order(email="bob@example.com", items=[(key, 1)], status="completed")
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert sorted(forum.badges_of("alice_liu")) == sorted([FIRST[0], SECOND[0]])
    assert sorted(forum.groups_of("alice_liu")) == sorted([FIRST[1], SECOND[1]])
    assert sorted(forum.groups_of("bob")) == sorted([FIRST[1], SECOND[1]])
    # the stored identity follows the account, so later actions use the name the forum knows
    assert _identity(world, "alice@example.com") == (str(alice), "alice_liu")

    # Refunds reach the renamed account: the grants made under her old name and those made under the new one go.
    shop.set_status(first, "refunded")
    shop.set_status(second, "refunded")
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert forum.badges_of("alice_liu") == [] and forum.groups_of("alice_liu") == []
    assert sorted(forum.groups_of("bob")) == sorted([FIRST[1], SECOND[1]])
    outbox = _outbox(world)
    assert outbox.get("failed", 0) == 0 and outbox.get("dead", 0) == 0, outbox


def test_a_member_renamed_before_the_first_grant_goes_out_still_gets_it(world):
    shop, forum = world.shop, world.forum
    card = shop.add_product("Steam 钱包充值卡 $20", "145.00")
    shop.add_order(email="carol@example.com", items=[(card, 1)], status="completed")
    carol = forum.add_user("carol", "carol@example.com")
    # The badge and group calls are refused while the first pass matches Carol: the grants wait in the outbox with
    # her old name (a failed attempt, retried on the next pass).
    forum.knobs.add_fault(r"^/(admin/badges|admin/groups|groups)", status=403, times=-1)
    world.cli("sync")
    assert _identity(world, "carol@example.com") == (str(carol), "carol")
    assert forum.badges_of("carol") == []
    forum.knobs.clear_faults()
    forum.rename_user("carol", "carol_w")

    run = world.cli("sync")
    assert run.code == 0, run.output
    assert forum.badges_of("carol_w") == [FIRST[0]] and forum.groups_of("carol_w") == [FIRST[1]]
    assert _identity(world, "carol@example.com") == (str(carol), "carol_w")
    outbox = _outbox(world)
    assert outbox.get("failed", 0) == 0 and outbox.get("dead", 0) == 0 and outbox.get("pending", 0) == 0, outbox


def test_reconcile_after_a_rename_records_no_manual_removal_and_a_later_refund_still_revokes(world):
    shop, forum = world.shop, world.forum
    card = shop.add_product("Steam 钱包充值卡 $50", "360.00")
    order = shop.add_order(email="dan@example.com", items=[(card, 1)], status="completed")
    forum.add_user("dan", "dan@example.com")
    assert world.cli("sync").code == 0
    assert forum.badges_of("dan") == [FIRST[0]]
    forum.rename_user("dan", "dan_z")

    # The forum lists holders by their current name; the ledger still says "dan". That is a rename, not a moderator
    # taking the badge away: no override may be recorded (it would keep the badge after a refund).
    found = world.cli("reconcile")
    assert found.code == 0, found.output
    assert "by hand" not in found.output, found.output
    assert world.cli("sync").code == 0
    assert forum.badges_of("dan_z") == [FIRST[0]] and forum.groups_of("dan_z") == [FIRST[1]]
    assert _identity(world, "dan@example.com")[1] == "dan_z"

    shop.set_status(order, "refunded")
    assert world.cli("sync").code == 0
    assert forum.badges_of("dan_z") == [] and forum.groups_of("dan_z") == []
    outbox = _outbox(world)
    assert outbox.get("failed", 0) == 0 and outbox.get("dead", 0) == 0, outbox

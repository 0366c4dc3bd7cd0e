"""Issue 13, item 1: a Chinese-locale forum. Discourse answers in its ``default_locale``; a group add for members who
are all in the group already is a translated 422 (``groups.errors.member_already_exist``, zh_CN
"以下用户已是此群组的成员：…"). CardBridge must not read the words: it decides on the status and reads the group back.

Over real HTTP, the CLI in a subprocess, the sandbox forum set to ``zh_CN``.
"""

from __future__ import annotations

import sqlite3

BADGE = "Verified Buyer"
GROUP = "verified-buyers"


def _outbox(world) -> dict[str, int]:
    with sqlite3.connect(world.db_path) as db:
        return dict(db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())


def test_a_lost_state_store_on_a_zh_cn_forum_ends_with_the_grants_and_no_dead_actions(world):
    shop, forum = world.shop, world.forum
    forum.locale = "zh_CN"
    card = shop.add_product("Steam 钱包充值卡 $20", "145.00")
    buyers = ["alice", "bob", "chen"]
    for name in buyers:
        shop.add_order(email=f"{name}@example.com", items=[(card, 1)], status="completed")
        forum.add_user(name, f"{name}@example.com")
    assert world.cli("sync").code == 0
    assert all(GROUP in forum.groups_of(n) and BADGE in forum.badges_of(n) for n in buyers)

    # The state store is lost (a new disk, a second replica): every grant is planned again, and the forum answers the
    # group add with its Chinese "already members" 422.
    world.db_path.unlink()
    for _ in range(3):  # as many passes as max_attempts: a failing action would be dead by the last one
        run = world.cli("sync")
        assert run.code == 0, run.output
    assert any(
        r["status"] == 422 and r["method"] == "PUT" and r["path"].endswith("/members.json") for r in forum.requests
    )
    outbox = _outbox(world)
    assert outbox.get("dead", 0) == 0 and outbox.get("failed", 0) == 0 and outbox.get("pending", 0) == 0, outbox
    assert world.cli("status", "--json").json()["outbox"]["dead"] == 0
    assert all(forum.groups_of(n) == [GROUP] and forum.badges_of(n) == [BADGE] for n in buyers)

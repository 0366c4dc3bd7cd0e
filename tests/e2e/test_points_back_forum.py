"""Points back to the shop on a Discourse forum, end to end over loopback: a buyer's liked guide earns points, a
personal message redeems them for a WooCommerce coupon that works once, for that buyer only; a deleted guide takes its
points back; a kill -9 between the reply and its record sends one reply; the webhook and polling answer once."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import COUPON_KEY
from tests.e2e.test_daemon import DSECRET, free_port, start, wait_for

SECRET = "r" * 40
CODE = re.compile(r"CB-[A-Z2-7]{12}")
OLD = "2024-01-05T10:00:00.000Z"

EXTRA = f"""
[earn]
new_member_days = 7
forum = {{ categories = ["Guides"], per_like_received = 200, accepted_solution = 100, min_likes = 3, daily_cap = 1000, per_post_cap = 1000 }}
[redeem]
secret = "{SECRET}"
options = [{{ points = 500, coupon = {{ amount = "5.00", type = "fixed_cart" }} }}]
"""


@pytest.fixture
def forum_world(world):
    world.write_config(extra=EXTRA)
    world.add_coupon_key()
    forum = world.forum
    forum.rate_limit_create_topic = forum.rate_limit_create_post = 0
    forum.rate_limit_new_user_create_topic = forum.rate_limit_new_user_create_post = 0
    forum.add_user("alice", "alice@example.com", trust_level=1, created_at=OLD)
    for name in ("bob", "carol", "dave"):
        forum.add_user(name, f"{name}@example.com", trust_level=1, created_at=OLD)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    forum.add_user("eve", "eve@example.com", trust_level=1, created_at=now)  # joined today: her like does not count
    forum.add_category("Guides")
    card = world.shop.add_product("Steam 钱包充值卡 $20", "145.00")
    customer = world.shop.add_customer("alice@example.com", username="alice")
    world.shop.add_order(customer, items=[(card, 1)])
    assert world.cli("sync").code == 0  # alice is a verified buyer, matched to her forum account by email
    return world


def act(world, username: str, path: str, **body) -> dict:
    response = httpx.post(
        world.forum_server.url + path, headers=world.forum.member_headers(username), json=body, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


def guide(world, likers=("bob", "carol", "dave", "eve")) -> dict:
    post = act(
        world, "alice", "/posts.json", title="How to redeem a Steam wallet card",
        raw="Open Steam, go to Games > Redeem a Steam Wallet Code, and paste the code from your order email.",
        category="Guides",
    )  # fmt: skip
    for name in likers:
        act(world, name, "/post_actions.json", id=post["id"], post_action_type_id=2)
    return post


def pm(world, title: str, raw: str) -> dict:
    return act(
        world, "alice", "/posts.json", title=title, raw=raw, archetype="private_message", target_recipients="system"
    )


def replies(world, topic_id: int) -> list[str]:
    return [p["raw"] for p in world.forum.posts_of_topic(topic_id) if p["username"] == "system"]


def checkout(world, code: str, email: str) -> int:
    return httpx.post(
        world.shop_server.url + "/wp-json/wc/v3/orders",
        auth=COUPON_KEY,
        json={"status": "processing", "billing": {"email": email}, "coupon_lines": [{"code": code}]},
    ).status_code


def points(world) -> int:
    return world.cli("points", "show", "alice@example.com", "--json").json()["total"]


def test_a_liked_guide_earns_points_and_a_pm_redeems_them_for_a_coupon_that_works_once_for_her(forum_world):
    world = forum_world
    guide(world)
    assert world.cli("sync").code == 0
    assert points(world) == 600  # bob, carol and dave; eve's account is a day old

    asked = pm(world, "兑换 500", "麻烦帮我兑换一张优惠券，谢谢！")
    second = pm(world, "兑换 500", "再来一张可以吗？我还想要一张。")  # the balance allows one of the two
    run = world.cli("sync")
    assert run.code == 0, run.output
    [answer] = replies(world, asked["topic_id"])
    code = CODE.search(answer).group(0)
    assert "100" in answer  # points left
    [refusal] = replies(world, second["topic_id"])
    assert "积分不足" in refusal and not CODE.search(refusal)
    assert points(world) == 100

    assert checkout(world, code, "mallory@example.com") == 400
    assert checkout(world, code, "alice@example.com") == 201
    assert checkout(world, code, "alice@example.com") == 400

    assert world.cli("sync").code == 0  # read again: nothing is answered twice, no second coupon
    assert len(replies(world, asked["topic_id"])) == 1 and len(world.shop.all_coupons()) == 1
    logs = run.output + world.cli("redemptions").output + world.cli("redemptions", "--json").output
    assert code not in logs and code.lower() not in logs and "alice@example.com" not in logs


def test_a_hidden_guide_takes_its_points_back_and_a_negative_balance_blocks_redeeming(forum_world):
    world = forum_world
    # Hiding a post changes nothing in its topic's list entry: with the default, the topic is opened again in the next
    # hour's first pass (tests/adapters/test_discourse_contributions.py); here every pass opens every topic.
    text = world.config_path.read_text()
    world.config_path.write_text(
        text.replace('api_username = "system"\n', 'api_username = "system"\ncontributions_recheck_minutes = 0\n', 1)
    )
    post = guide(world)
    assert world.cli("sync").code == 0
    redeemed = pm(world, "兑换 500", "麻烦帮我兑换一张优惠券，谢谢！")
    assert world.cli("sync").code == 0
    assert CODE.search(replies(world, redeemed["topic_id"])[0])
    world.forum.hide_post_by_hand(post["id"])  # flagged and hidden by a moderator
    assert world.cli("sync").code == 0
    assert points(world) == -500  # 600 earned, 500 spent, 600 taken back; the coupon is never taken back
    again = pm(world, "redeem 500", "One more coupon please, thank you.")
    assert world.cli("sync").code == 0
    [answer] = replies(world, again["topic_id"])
    assert "negative" in answer and not CODE.search(answer)
    assert len(world.shop.all_coupons()) == 1


def test_kill_9_after_the_reply_is_posted_sends_one_reply_and_makes_one_coupon(forum_world):
    world = forum_world
    guide(world)
    assert world.cli("sync").code == 0
    asked = pm(world, "兑换 500", "麻烦帮我兑换一张优惠券，谢谢！")
    # The forum posts the reply, then its answer never comes back: the pass is killed while it waits.
    posted = world.forum.knobs.add_fault(r"/posts(\.json)?$", kind="hang_after", method="POST", seconds=60)
    process = world.spawn("sync")
    assert wait_for(lambda: posted.hits >= 1 and len(replies(world, asked["topic_id"])) == 1, 30)
    process.kill()
    process.wait(10)
    run = world.cli("sync")  # looks for the reply before sending it again
    assert run.code == 0, run.output
    assert len(replies(world, asked["topic_id"])) == 1
    assert len(world.shop.all_coupons()) == 1
    assert [r["answer"] for r in world.cli("redemptions", "--json").json()["redemptions"]] == ["sent"]


def test_the_post_created_webhook_answers_at_once_and_polling_finds_nothing_more(forum_world):
    world = forum_world
    port = free_port()
    world.port, world.base, world.processes = port, f"http://127.0.0.1:{port}", []
    world.write_config(
        extra=EXTRA
        + f"""
[schedule]
sync_every = 3600
reconcile_every = 3600
retry_every = 3600
[server]
listen = "127.0.0.1:{port}"
discourse_webhook_secret = "{DSECRET}"
"""
    )
    world.add_coupon_key()
    guide(world)
    assert world.cli("sync").code == 0
    start(world)
    try:
        asked = pm(world, "兑换 500", "麻烦帮我兑换一张优惠券，谢谢！")
        headers, body = world.forum.post_created_webhook(asked["id"], DSECRET, event_id=41)
        hooked = httpx.post(world.base + "/webhooks/discourse", content=body, headers=headers)
        assert hooked.status_code == 200, hooked.text
        assert wait_for(lambda: len(replies(world, asked["topic_id"])) == 1, 20)
    finally:
        for process in world.processes:
            process.terminate()
            process.wait(20)
    assert world.cli("sync").code == 0  # polling reads the same message: the same request, answered already
    assert len(replies(world, asked["topic_id"])) == 1
    assert len(world.shop.all_coupons()) == 1


def test_a_shop_without_coupon_keys_is_named_by_check_and_refused_by_sync(world):
    world.write_config(extra=EXTRA)  # [redeem] without coupon_consumer_key / _secret
    checked = world.cli("check", "--json")
    assert checked.code == 1
    [line] = [c for c in checked.json()["checks"] if c["what"] == "shop makes coupons"]
    assert line["result"] == "failed" and "coupon_consumer_key" in line["detail"]
    earns = [c for c in checked.json()["checks"] if c["what"] == "forum takes redemptions"]
    assert [c["result"] for c in earns] == ["ok"]
    run = world.cli("sync")
    assert run.code == 2 and "coupon_consumer_key" in run.stderr


def test_a_lost_state_store_reads_the_message_again_and_sends_no_second_coupon_or_reply(forum_world):
    world = forum_world
    guide(world)
    assert world.cli("sync").code == 0
    asked = pm(world, "兑换 500", "麻烦帮我兑换一张优惠券，谢谢！")
    assert world.cli("sync").code == 0
    [answer] = replies(world, asked["topic_id"])
    world.db_path.unlink()
    for extra in ("-wal", "-shm"):
        Path(str(world.db_path) + extra).unlink(missing_ok=True)
    run = world.cli("sync")  # a new, empty store: the shop, the forum and the inbox are read from the start
    assert run.code == 0, run.output
    assert replies(world, asked["topic_id"]) == [answer]
    assert len(world.shop.all_coupons()) == 1
    # The coupon found in the shop puts the redemption in the new ledger, beside the guide's points.
    assert points(world) == 100
    assert world.cli("sync").code == 0
    assert points(world) == 100
    assert replies(world, asked["topic_id"]) == [answer]

"""Single grants go in rounds (claimed together, sent one by one, settled together): a process killed mid-round grants
nobody twice and loses nobody. Real HTTP on loopback, the CLI in a subprocess, killed with SIGKILL."""

from __future__ import annotations

import signal
import sqlite3
from collections import Counter

import pytest

BADGE = "Verified Buyer"
BUYERS = 30
#: The grant request the forum holds when the process is killed: the ones before it were applied and answered, but
#: the round they belong to was not settled yet.
HUNG_AT = 10


@pytest.fixture
def buyers(world):
    """Thirty paying buyers with forum accounts, no admin rate limit (as for an import), so one round holds them all
    (requests_per_minute 6000: rounds of 50); below the mass-award threshold (50), so each gets a single grant."""
    world.forum.rate_limit_per_minute = None
    world.write_config(rpm=6000)
    card = world.shop.add_product("Steam 钱包充值卡 $20", "145.00")
    for index in range(BUYERS):
        email = f"buyer{index}@example.com"
        world.forum.add_user(f"buyer{index}", email)
        world.shop.add_order(email=email, items=[(card, 1)], status="processing")
    return world


def outbox_statuses(world):
    with sqlite3.connect(world.db_path) as db:
        return dict(db.execute("select status, count(*) from outbox where kind = 'badge' group by status").fetchall())


@pytest.mark.parametrize("moment", ["hang_before", "hang_after"])
def test_a_process_killed_mid_round_grants_nobody_twice_and_loses_nobody(buyers, moment):
    world = buyers
    grants = r"^/user_badges\.json$"
    world.forum.knobs.add_fault(grants, kind="delay", method="POST", seconds=0, times=HUNG_AT - 1)  # answered
    world.forum.knobs.add_fault(grants, kind=moment, method="POST", seconds=60)  # applied or not, never answered
    process = world.spawn("sync")
    assert world.forum.knobs.hung.wait(60), "the grant request never reached the forum"
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    world.forum.knobs.clear_faults()
    applied_before = HUNG_AT if moment == "hang_after" else HUNG_AT - 1
    assert world.forum.user_badge_count(BADGE) == applied_before
    # The whole round was claimed before its first call and none of it was settled: every grant is to verify.
    assert outbox_statuses(world) == {"sending": BUYERS}

    run = world.cli("sync")
    assert run.code == 0, run.output
    assert run.output.count("interrupted action found applied") == applied_before  # verified, not re-sent
    holders = {f"buyer{i}" for i in range(BUYERS) if BADGE in world.forum.badges_of(f"buyer{i}")}
    assert holders == {f"buyer{i}" for i in range(BUYERS)}  # nobody lost
    assert world.forum.user_badge_count(BADGE) == BUYERS
    posted = Counter(
        r["body"]["username"]
        for r in world.forum.requests
        if r["method"] == "POST" and r["path"] == "/user_badges.json" and r["status"] == 200
    )
    assert set(posted.values()) == {1} and len(posted) == BUYERS  # each grant applied by exactly one request
    assert outbox_statuses(world) == {"done": BUYERS}

    world.forum.reset_log()
    assert world.cli("sync").code == 0
    assert world.forum.writes() == []


def test_a_review_in_a_round_is_posted_into_the_topic_an_earlier_review_of_the_round_opened(world):
    """Three reviews of one product go in one round: the first opens the product's topic; the next two are built
    after it was recorded, so they post into it without looking the topic up again."""
    world.forum.rate_limit_per_minute = None
    world.write_config(rpm=6000, extra='[reviews]\nforum = { category = "Reviews" }\n')
    product = world.shop.add_product("Elden Ring Steam Key", "199.00")
    for index in range(3):
        world.shop.add_review(product, f"Guest {index}", f"guest{index}@example.com", 5, f"Works, key {index}.")
    run = world.cli("sync")
    assert run.code == 0, run.output
    [topic] = world.forum.topics()
    reviews = [p for p in world.forum.posts_of_topic(topic["id"]) if "cardbridge review" in p["raw"]]
    assert len(reviews) == 3
    assert world.forum.count("GET", r"^/t/external_id/") == 1  # looked up once, by the first review only

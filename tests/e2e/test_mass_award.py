"""Issue 15: many buyers badged with one mass award (``POST /admin/badges/award/{badge_id}``), read back before a grant
counts, never sent twice after a crash, below the threshold the per-user grant as before.

The sandbox forum grants a mass award's badges in delayed background jobs, skips holders only when the request arrives
and duplicates grants when two awards precede the jobs (sandbox/discourse/mass_award.py, after discourse/discourse
``BadgeGranter.enqueue_mass_grant_for_users`` and ``mass_grant``). The forum enforces the real admin limit (60/min).
"""

from __future__ import annotations

import signal
import sqlite3
from collections import Counter

import pytest

BADGE = "Verified Buyer"
GROUP = "verified-buyers"
AWARD = r"^/admin/badges/award/"


def buyers(world, count):
    product = world.shop.add_product("Elden Ring Steam Key", "199.00")
    names = [f"buyer{i:03d}" for i in range(count)]
    for name in names:
        world.shop.add_order(email=f"{name}@example.com", items=[(product, 1)], status="completed")
        world.forum.add_user(name, f"{name}@example.com")
    return names


def configure(world, **settings):
    """Set keys of ``[communities.forum]``."""
    lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
    text = world.config_path.read_text()
    world.config_path.write_text(text.replace("unmatched_retry_seconds = 0\n", "unmatched_retry_seconds = 0\n" + lines))


def grants_per_user(world, names):
    return Counter({name: world.forum.badges_of(name).count(BADGE) for name in names})


def outbox_statuses(world):
    with sqlite3.connect(world.db_path) as db:
        return dict(db.execute("select status, count(*) from outbox where kind = 'badge' group by status").fetchall())


def test_200_buyers_are_badged_with_a_handful_of_forum_requests(world):
    names = buyers(world, 200)
    run = world.cli("backfill")
    assert run.code == 0, run.output

    assert set(grants_per_user(world, names).values()) == {1}  # everyone, once
    assert all(GROUP in world.forum.groups_of(name) for name in names)
    assert world.forum.count("POST", AWARD) == 1 and world.forum.count("POST", r"^/user_badges") == 0
    awarded = next(
        r for r in world.forum.requests if r["method"] == "POST" and r["path"].startswith("/admin/badges/award")
    )
    assert "replace_badge_owners" not in awarded["body"] and "grant_existing_holders" not in awarded["body"]
    assert sorted(awarded["body"]["file"].split()) == names  # usernames, one a line
    assert len(world.forum.requests) <= 20, [(r["method"], r["path"]) for r in world.forum.requests]
    assert world.forum.rate_limited_count == 0
    assert outbox_statuses(world) == {"done": 200}


def test_a_crash_before_the_read_back_never_grants_twice_and_the_next_pass_sends_only_the_missing(world):
    names = buyers(world, 120)
    world.forum.mass_award_delay = None  # the forum's jobs wait until the test runs them
    world.forum.knobs.add_fault(r"^/user_badges\.json$", kind="hang_before", method="GET", seconds=60)
    process = world.spawn("backfill")
    assert world.forum.knobs.hung.wait(60), "the read-back never reached the forum"
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    world.forum.knobs.clear_faults()
    assert world.forum.count("POST", AWARD) == 1 and outbox_statuses(world) == {"sending": 120}

    # The jobs have not run: the next pass reads the holders, finds nobody, and sends nothing (a second award now
    # would give everyone the badge twice once both awards' jobs run).
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert world.forum.count("POST", AWARD) == 1 and world.forum.count("POST", r"^/user_badges") == 0
    assert outbox_statuses(world) == {"sending": 120}

    # The forum's jobs run, except that five grants never happen (removed, as if their jobs were lost).
    world.forum.run_jobs()
    lost = names[:5]
    for name in lost:
        world.forum.revoke_by_hand(name, BADGE)
    configure(world, mass_award_settle_seconds=0)  # the award is old enough to resend what it did not show
    world.forum.reset_log()
    run = world.cli("sync")
    assert run.code == 0, run.output

    assert set(grants_per_user(world, names).values()) == {1}  # nobody twice, nobody without
    sent_again = [r["body"].get("username") for r in world.forum.requests if r["method"] == "POST"
                  and r["path"] == "/user_badges.json"]  # fmt: skip
    assert sorted(sent_again) == lost and world.forum.count("POST", AWARD) == 0
    assert outbox_statuses(world) == {"done": 120}


def test_a_disabled_badge_fails_the_rows_with_the_reason_and_nothing_loops(world):
    names = buyers(world, 60)
    world.write_config(max_attempts=2)
    with world.forum.state.lock:  # an admin disabled the badge the rules name
        from sandbox.discourse.state import new_badge

        badge_id = world.forum.state.take_id("badge")
        world.forum.state.badges[badge_id] = new_badge(badge_id, BADGE, 3, enabled=False)

    first = world.cli("backfill")
    assert first.code == 1, first.output  # a pass with failed actions exits 1
    assert world.forum.count("POST", AWARD) == 1
    with sqlite3.connect(world.db_path) as db:
        errors = {e for (e,) in db.execute("select last_error from outbox where kind = 'badge'")}
    assert len(errors) == 1 and "422" in next(iter(errors))
    assert outbox_statuses(world) == {"failed": 60}

    assert world.cli("sync").code == 1  # the retry: one more award, then the rows are parked
    assert outbox_statuses(world) == {"dead": 60}
    world.cli("sync")
    assert world.forum.count("POST", AWARD) == 2  # dead rows are not sent again
    assert all(world.forum.badges_of(name) == [] for name in names)


@pytest.mark.parametrize("count", [30, 50])
def test_at_or_below_the_threshold_each_buyer_gets_a_single_grant(world, count):
    names = buyers(world, count)
    run = world.cli("backfill")
    assert run.code == 0, run.output
    assert world.forum.count("POST", r"^/user_badges\.json$") == count and world.forum.count("POST", AWARD) == 0
    assert set(grants_per_user(world, names).values()) == {1}


def test_every_due_grant_of_a_badge_goes_in_one_award_whatever_rows_lie_between_them(world):
    # 1,200 buyers: their badge and group rows alternate in the outbox, so a delivery round of 1,000 rows held about
    # 500 badge grants, and the backfill sent three awards (and three read-backs) where one does.
    names = buyers(world, 1200)
    run = world.cli("backfill")
    assert run.code == 0, run.output

    assert world.forum.count("POST", AWARD) == 1 and world.forum.count("POST", r"^/user_badges") == 0
    assert set(grants_per_user(world, names).values()) == {1}
    assert all(GROUP in world.forum.groups_of(name) for name in names)
    by_route = Counter(f"{r['method']} {r['path'].split('?')[0]}" for r in world.forum.requests)
    # Identity pages (100 users each), the read-back (50 grants a page), group adds (1,000 a call) and a few set-up
    # calls: nothing per buyer.
    assert by_route["GET /user_badges.json"] <= 1200 // 50 + 1, by_route
    assert len(world.forum.requests) <= 1200 // 50 + 1200 // 100 + 12, by_route
    assert outbox_statuses(world) == {"done": 1200}

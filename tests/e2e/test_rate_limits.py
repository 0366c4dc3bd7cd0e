"""Rate limits as the real servers apply them, through the CLI over loopback: a Discord ``shared`` 429 asking for 1337 s
never holds a pass (the action waits in the outbox for its time, the rest goes on), and the Discourse admin-API limit
(60 a minute per site) answers 429s that CardBridge obeys without losing anything."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.discord import API, DiscordSandbox
from sandbox.server import SandboxServer

CONFIG = """
[state]
url = "sqlite:///state.db"
[shop]
kind = "woocommerce"
base_url = "{shop}"
consumer_key = "${{WC_CONSUMER_KEY}}"
consumer_secret = "${{WC_CONSUMER_SECRET}}"
[communities.discord]
kind = "discord"
bot_token = "bot-token-123"
guild_id = "{guild}"
api_base = "{api}"
[[rules]]
name = "verified-buyer"
products = "*"
grant.discord = {{ role = "{buyer}" }}
[reviews]
discord = {{ forum_channel = "{forum}", thread_per = "review" }}
[delivery]
max_attempts = 2
retry_base_seconds = 0
"""

#: rate-limits.mdx:84-102: the documented shared 429 says ``Retry-After: 1337``, ``retry_after: 1336.57``.
SHARED_WAIT = 1336.57


@pytest.fixture
def shared_world(world):
    world.skew = 0.0  # how far the Discord sandbox's clock runs ahead of the wall clock ("time passes")
    world.discord = d = DiscordSandbox(bot_token="bot-token-123", clock=lambda: time.time() + world.skew)
    world.discord_server = SandboxServer(d.app).start()
    world.buyer_role = d.add_role("Buyer", 2)
    world.forum_id = d.add_forum("reviews")
    world.product = world.shop.add_product("Elden Ring Steam Key", "199.00")
    world.config_path.write_text(
        CONFIG.format(
            shop=world.shop_server.url,
            guild=d.guild_id,
            api=world.discord_server.url + API,
            buyer=world.buyer_role,
            forum=world.forum_id,
        ),
        encoding="utf-8",
    )
    yield world
    world.discord_server.stop()


def timed_cli(world, *args: str, limit: float = 60.0):
    """Run the CLI; fail (not hang) if it takes longer than ``limit`` seconds."""
    process = world.spawn(*args)
    started = time.monotonic()
    try:
        out, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"`cardbridge {' '.join(args)}` was still running after {limit:.0f} s")
    return process.returncode, out + err, time.monotonic() - started


def review_rows(world):
    with sqlite3.connect(world.db_path) as db:
        return db.execute(
            "select id, status, attempts, next_attempt_at, last_error from outbox where kind = 'review' order by id"
        ).fetchall()


def shift_outbox_clock(world, seconds: float) -> None:
    """Time passes for the connector: every not-before time in the outbox moves ``seconds`` into the past."""
    with sqlite3.connect(world.db_path) as db:
        for row_id, stamp in db.execute("select id, next_attempt_at from outbox where next_attempt_at is not null"):
            moved = datetime.fromisoformat(stamp) - timedelta(seconds=seconds)
            db.execute("update outbox set next_attempt_at = ? where id = ?", (moved.isoformat(sep=" "), row_id))


def thread_posts(world):
    return [r for r in world.discord.requests if r["method"] == "POST" and r["path"].endswith("/threads")]


def test_a_1337_second_shared_429_defers_the_action_and_the_pass_goes_on(shared_world):
    world, d = shared_world, shared_world.discord
    bob = world.shop.add_customer("bob@example.com", "Bob", "Li")
    order = world.shop.add_order(customer_id=bob, items=[(world.product, 1)], status="pending")
    bob_member = d.add_member()
    assert world.cli("sync").code == 0
    assert world.cli("link", "--customer", str(bob), "--discord-user", bob_member).code == 0
    # Two reviews (one thread each, in the forum channel) and a role grant (the guild's bucket) in the same pass.
    world.shop.set_status(order, "completed")
    reviews = [
        world.shop.add_review(world.product, "Bob", "bob@example.com", 5, "Fast key"),
        world.shop.add_review(world.product, "Guest", "guest@example.com", 4, "Works"),
    ]
    held = d.limiter.hold_resource(world.forum_id, SHARED_WAIT, d.clock(), method="POST")

    code, output, took = timed_cli(world, "sync")
    assert took < 30, output  # not 1337 s
    assert code == 0, output  # a deferral is not a failure
    assert "deferred" in output
    assert d.roles_of(bob_member) == {world.buyer_role}  # another bucket on another resource went on
    assert d.threads_of(world.forum_id) == []
    # One request drew the 429; the second review's request was held back by the limiter, never sent.
    assert held.refused == 1 and len(thread_posts(world)) == 1
    rows = review_rows(world)
    assert [(status, attempts) for _, status, attempts, _, _ in rows] == [("pending", 0), ("pending", 0)]
    for _, _, _, not_before, reason in rows:
        wait = (
            datetime.fromisoformat(not_before).replace(tzinfo=None) - datetime.now(UTC).replace(tzinfo=None)
        ).total_seconds()
        assert 1300 < wait < 1345, wait
        assert reason.startswith("deferred until") and "shared" in reason
    status = world.cli("status", "--json").json()
    assert status["outbox"]["dead"] == 0 and status["outbox"]["failed"] == 0 and status["outbox"]["pending"] == 2
    # `status` says they wait, and until when (not just "pending 2").
    assert status["outbox_not_due"]["count"] == 2
    assert status["outbox_not_due"]["next_at"][:16] == min(row[3] for row in rows)[:16].replace(" ", "T")
    shown = world.cli("status").output
    assert "waiting to be retried" in shown and "2 (the first at " in shown, shown

    # Before the time: the rows are not due, so nothing is sent to the held forum.
    d.reset_log()
    code, output, took = timed_cli(world, "sync")
    assert code == 0 and took < 30, output
    assert thread_posts(world) == []

    # 1337 seconds later (for the forum and for the outbox): each review is posted once.
    world.skew += SHARED_WAIT + 5
    shift_outbox_clock(world, SHARED_WAIT + 5)
    code, output, _ = timed_cli(world, "sync")
    assert code == 0, output
    threads = d.threads_of(world.forum_id)
    assert len(threads) == 2
    for review in reviews:
        assert sum(t["name"].endswith(f" · #{review}") for t in threads) == 1
    assert [status for _, status, _, _, _ in review_rows(world)] == ["done", "done"]
    d.reset_log()
    assert world.cli("sync").code == 0
    assert d.writes() == []


def test_discourse_admin_limit_answers_429_and_cardbridge_obeys_it(world):
    """The real default (60 admin-API requests a minute, per site) with CardBridge told it may send more: the forum
    answers 429 ``Retry-After`` and ``Discourse-Rate-Limit-Error-Code: admin_api_key_rate_limit``; CardBridge waits
    what it was told and every grant lands once."""
    assert world.forum.rate_limit_per_minute == 60  # the World's forum has the real default
    world.write_config(rpm=6000)  # CardBridge's own budget above the forum's: it will bounce off the limit
    card = world.shop.add_product("月卡", "15.00")
    for name in ("amy", "ben"):
        world.forum.add_user(name, f"{name}@example.com")
        world.shop.add_order(email=f"{name}@example.com", items=[(card, 1)], status="completed")
    # Another admin integration has used 60 requests in the last 50 seconds: the window frees in 10 seconds (long
    # enough that the CLI's start and the shop's reads, slow on a busy machine, cannot outlast it).
    now = math.floor(world.forum.clock())  # the limiter stamps whole seconds (Time.now.to_i)
    world.forum.limiter.window.extend([now - 50] * 60)
    code, output, took = timed_cli(world, "sync")
    assert code == 0, output
    assert world.forum.rate_limited_count >= 1
    answered = [r for r in world.forum.requests if r["status"] == 429]
    assert answered and took >= 2  # it waited instead of failing
    assert world.forum.badges_of("amy") and world.forum.badges_of("ben")
    status = world.cli("status", "--json").json()["outbox"]
    assert status["dead"] == 0 and status["failed"] == 0 and status["pending"] == 0


def test_the_daemons_retry_job_delivers_a_deferred_action_when_its_time_comes(shared_world):
    """A wait above the cap (here 3 s over a 1 s cap, so the test takes seconds) is deferred by the daemon's first pass
    and delivered by its retry job once the time has come: once, with nothing failed."""
    import signal
    import socket

    world, d = shared_world, shared_world.discord
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = (
        world.config_path.read_text().replace('api_base = "', 'max_retry_wait_seconds = 1\napi_base = "')
        + f'[schedule]\nsync_every = 3600\nreconcile_every = 3600\nretry_every = 1\n[server]\nlisten = "127.0.0.1:{port}"\n'
    )
    world.config_path.write_text(text, encoding="utf-8")
    review = world.shop.add_review(world.product, "Guest", "guest@example.com", 4, "Works")
    held = d.limiter.hold_resource(world.forum_id, 3.0, d.clock(), method="POST")
    daemon = world.spawn("run")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (held.refused and len(d.threads_of(world.forum_id)) == 1):
            assert daemon.poll() is None, daemon.communicate()
            time.sleep(0.1)
        assert held.refused == 1  # the first pass was told to wait 3 s and did not
        threads = d.threads_of(world.forum_id)
        assert len(threads) == 1 and threads[0]["name"].endswith(f" · #{review}")
        assert [status for _, status, _, _, _ in review_rows(world)] == ["done"]
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
    assert len(thread_posts(world)) == 2  # the refused one and the one that went through: never sent twice


def test_a_discourse_wait_above_the_forums_cap_is_deferred_not_slept(world):
    """``max_retry_wait_seconds`` holds for a forum too: a 429 asking for more than it returns the pass at once with
    the revokes pending (no attempt counted, none dead); a pass after the window has freed delivers them once."""
    world.write_config(rpm=6000)
    world.config_path.write_text(
        world.config_path.read_text().replace(
            "requests_per_minute = 6000\n", "requests_per_minute = 6000\nmax_retry_wait_seconds = 2\n", 1
        ),
        encoding="utf-8",
    )
    card = world.shop.add_product("季卡", "40.00")
    world.forum.add_user("cid", "cid@example.com")
    order = world.shop.add_order(email="cid@example.com", items=[(card, 1)], status="completed")
    assert world.cli("sync").code == 0
    assert world.forum.badges_of("cid") and world.forum.groups_of("cid")

    world.shop.set_status(order, "refunded")
    # Another admin integration has used the whole window: the forum will ask for about 50 seconds.
    now = math.floor(world.forum.clock())
    world.forum.limiter.window.extend([now - 10] * 60)
    code, output, took = timed_cli(world, "sync")
    assert took < 30, output
    # The forum stopped for this pass (its limit is site-wide): said as a problem, and the wait as a deferral.
    assert code == 1 and "deferred by a rate limit" in output, output
    assert world.forum.rate_limited_count >= 1
    assert world.forum.badges_of("cid") and world.forum.groups_of("cid")
    status = world.cli("status", "--json").json()["outbox"]
    assert status["dead"] == 0 and status["failed"] == 0 and status["pending"] == 2, status

    world.forum.limiter.window.clear()
    with sqlite3.connect(world.db_path) as db:
        db.execute("UPDATE outbox SET next_attempt_at = NULL WHERE status = 'pending'")
    assert world.cli("sync").code == 0
    assert world.forum.badges_of("cid") == [] and world.forum.groups_of("cid") == []
    status = world.cli("status", "--json").json()["outbox"]
    assert status["dead"] == 0 and status["failed"] == 0 and status["pending"] == 0, status

"""Sellix over loopback HTTP: paid buyers get the grant, refunds revoke it, feedback becomes reviews, nothing secret
is kept, and an error envelope is reported."""

from __future__ import annotations

import pytest

from sandbox.sellix import SellixSandbox
from sandbox.server import SandboxServer


@pytest.fixture
def sellix_world(world):
    world.sellix = SellixSandbox()
    world.sellix_server = SandboxServer(world.sellix.app).start()
    world.set_shop(
        f'kind = "sellix"\nbase_url = "{world.sellix_server.url}/v1"\napi_key = "${{SELLIX_API_KEY}}"\nlookback_seconds = 0'
    )
    with world.config_path.open("a", encoding="utf-8") as config:
        config.write('\n[reviews]\nforum = { category = "Reviews" }\n')
    key = world.sellix.add_product("Elden Ring Steam Key", 29.99)
    world.paid = world.sellix.add_order("Paid@Example.com", key, "COMPLETED")
    world.waiting = world.sellix.add_order("wait@example.com", key, "WAITING_FOR_CONFIRMATIONS")
    for i in range(45):  # more than two pages of other buyers
        world.sellix.add_order(f"bulk{i}@example.com", key, "PENDING")
    world.feedback = world.sellix.add_feedback(world.paid, 5, "Instant delivery, key worked.")
    world.forum.add_user("paid", "paid@example.com")
    world.forum.add_user("wait", "wait@example.com")
    yield world
    world.sellix_server.stop()


def test_sellix_grant_refund_feedback_and_no_secrets(sellix_world):
    world = sellix_world
    env = {"SELLIX_API_KEY": world.sellix.api_key}
    run = world.cli("sync", **env)
    assert run.code == 0, run.output
    assert world.forum.badges_of("paid") == ["Verified Buyer"] and world.forum.badges_of("wait") == []
    [topic] = world.forum.topics()
    [post] = [p for p in world.forum.posts_of_topic(topic["id"]) if p["post_number"] > 1]
    assert "Verified purchase: paid" in post["raw"] and "Instant delivery" in post["raw"]
    world.sellix.set_status(world.paid, "REFUNDED")
    world.sellix.requests.clear()
    again = world.cli("sync", **env)
    assert again.code == 0, again.output
    assert world.forum.badges_of("paid") == []
    order_pages = [r for r in world.sellix.requests if r["path"] == "/v1/orders"]
    assert len(order_pages) == 1  # the newest page already reaches the cursor: early stop
    stored = b"".join(p.read_bytes() for p in world.dir.glob("state.db*"))
    for secret in [*world.sellix.secrets(), "203.0.113.7"]:
        assert secret.encode() not in stored and secret not in run.output + again.output


def test_malformed_orders_are_quarantined_alone(sellix_world):
    """Issue 12, item 5: a status that is a list, a total of 1e30 with points on, an update time in 9999 (which
    would have carried the client-side cursor past every order to come): each is quarantined alone."""
    world = sellix_world
    env = {"SELLIX_API_KEY": world.sellix.api_key}
    with world.config_path.open("a", encoding="utf-8") as config:
        config.write('[points]\nper_order = 10\nper_currency_unit = 1\nforum = { mode = "gamification" }\n')
    product = world.sellix.orders[world.paid]["product_id"]
    bad = {
        name: world.sellix.add_order(f"{name}@example.com", product, "COMPLETED") for name in ("listy", "huge", "ahead")
    }
    world.sellix.orders[bad["listy"]]["status"] = ["COMPLETED"]
    world.sellix.orders[bad["huge"]]["total"] = "1e30"
    world.sellix.orders[bad["ahead"]]["updated_at"] = 253_402_300_000  # 9999-12-31
    for name in ("listy", "huge", "ahead", "later"):
        world.forum.add_user(name, f"{name}@example.com")
    run = world.cli("sync", **env)
    assert run.code == 0, run.output
    assert world.forum.badges_of("paid") == ["Verified Buyer"]
    assert [e["points"] for e in world.forum.score_events(world.forum.user("paid")["id"])] == [19]  # 10 + 9.99
    assert all(world.forum.badges_of(name) == [] for name in bad)
    status = world.cli("status", "--json", **env).json()
    reasons = {q["record_id"]: q["reason"] for q in status["quarantined"]["records"]}
    assert reasons == {
        bad["listy"]: "unknown order status a list",
        bad["huge"]: "total: Value error, the amount is absurdly large (10^12 or more)",
        bad["ahead"]: "modified_at: Value error, timestamp is more than a day in the future",
    }
    world.sellix.add_order("later@example.com", product, "COMPLETED")
    again = world.cli("sync", **env)
    assert again.code == 0, again.output
    assert world.forum.badges_of("later") == ["Verified Buyer"]  # the cursor is not in 9999


def test_sellix_error_envelope_is_reported(sellix_world):
    world = sellix_world
    run = world.cli("sync", SELLIX_API_KEY="wrong")
    assert run.code == 1
    assert "Unauthorized" in run.stdout


def test_signed_sellix_webhook_through_the_daemon(sellix_world):
    import json

    import httpx

    from adapters.shops.sellix_webhook import SELLIX
    from tests.e2e.test_daemon import free_port, wait_for

    world = sellix_world
    port = free_port()
    world.config_path.write_text(
        world.config_path.read_text()
        + f"""
[schedule]
sync_every = 3600
[server]
listen = "127.0.0.1:{port}"
sellix_webhook_secret = "sx-secret"
""",
        encoding="utf-8",
    )
    import subprocess

    daemon = subprocess.Popen(
        world.command("run"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=world.env(SELLIX_API_KEY=world.sellix.api_key),
    )
    try:
        assert wait_for(lambda: _ready(port), 20)
        world.sellix.set_status(world.waiting, "COMPLETED")
        body = json.dumps({"event": "order:paid", "data": world.sellix.orders[world.waiting]}).encode()
        bad = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/sellix",
            content=body,
            headers={"X-Sellix-Signature": "0" * 128, "X-Sellix-Event": "order:paid"},
        )
        assert bad.status_code == 401
        good = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/sellix",
            content=body,
            headers={"X-Sellix-Signature": SELLIX.sign("sx-secret", body), "X-Sellix-Event": "order:paid"},
        )
        assert good.json() == {"ok": "accepted"}
        assert wait_for(lambda: world.forum.badges_of("wait") == ["Verified Buyer"], 10)
    finally:
        daemon.terminate()
        assert daemon.wait(30) == 0


def _ready(port):
    import httpx

    try:
        return bool(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()["last_pass"])
    except httpx.HTTPError:
        return False

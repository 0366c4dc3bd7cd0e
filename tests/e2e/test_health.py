"""Issue 14, honest health: the status page headline, ``/healthz`` and ``status`` agree while a remote fails, and a
buyer the forum could not be asked about is "waiting for a look-up", not "unmatched"."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

BADGE = "Verified Buyer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def health(world):
    try:
        answer = httpx.get(world.base + "/healthz", timeout=5)
        return answer.status_code, answer.json()
    except httpx.HTTPError as error:
        return 0, {"error": str(error)}


@pytest.fixture
def hworld(world):
    world.port = free_port()
    world.base = f"http://127.0.0.1:{world.port}"
    world.card = world.shop.add_product("Steam 钱包充值卡 $20", "145.00")
    world.processes = []
    yield world
    for process in world.processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def run_daemon(world, unhealthy_after: int, sync_every: int = 1, retry_every: int = 3600):
    world.write_config(
        extra=f"""
[schedule]
sync_every = {sync_every}
reconcile_every = 3600
retry_every = {retry_every}
[server]
listen = "127.0.0.1:{world.port}"
unhealthy_after_seconds = {unhealthy_after}
unhealthy_after_failed_passes = 1000
"""
    )
    process = world.spawn("run")
    world.processes.append(process)
    assert wait_for(lambda: health(world)[1].get("last_pass"), 30), process.poll()
    return process


def forum_down(world):
    world.forum.knobs.add_fault(r".", kind="status", status=503, times=-1)


def test_a_failing_forum_makes_the_daemon_degraded_then_unhealthy_and_it_heals(hworld):
    world = hworld
    world.forum.add_user("alice", "alice@example.com")
    world.shop.add_order(email="alice@example.com", items=[(world.card, 1)], status="processing")
    run_daemon(world, unhealthy_after=20)
    assert wait_for(lambda: BADGE in world.forum.badges_of("alice"))
    code, body = health(world)
    assert code == 200 and body["health"] == "healthy" and body["status"] == "ok", body
    assert "healthy" in httpx.get(world.base + "/").text

    # The forum answers 503 to everything; a new buyer needs a look-up, so every pass asks it.
    forum_down(world)
    world.shop.add_order(email="bob@example.com", items=[(world.card, 1)], status="processing")
    assert wait_for(lambda: health(world)[1].get("health") == "degraded"), health(world)
    code, body = health(world)
    assert code == 200 and body["status"] == "degraded", body  # no longer "ok" while a remote fails
    assert list(body["failing"]) == ["forum"] and body["failing"]["forum"]["since"], body
    assert "503" not in json.dumps(body) and "Service Unavailable" not in json.dumps(body)  # no error text
    page = httpx.get(world.base + "/").text
    assert "CardBridge — <span" in page and "degraded" in page and ">healthy<" not in page
    assert "forum" in page

    # Past unhealthy_after_seconds of continuous failure: 503, and the page says so too.
    assert wait_for(lambda: health(world)[0] == 503, 60), health(world)
    code, body = health(world)
    assert body["health"] == "unhealthy" and body["status"] == "failing", body
    assert any(p.startswith("forum: failing since") for p in body["problems"]), body
    page = httpx.get(world.base + "/").text
    assert "unhealthy" in page and ">healthy<" not in page

    world.forum.knobs.clear_faults()
    assert wait_for(lambda: health(world)[1].get("health") == "healthy", 60), health(world)
    assert health(world)[0] == 200 and health(world)[1]["failing"] == {}


def test_a_failing_shop_is_degraded_with_its_name_and_time(hworld):
    world = hworld
    run_daemon(world, unhealthy_after=3600)
    world.shop.knobs.add_fault(r"/orders$", kind="status", status=503, times=-1)
    assert wait_for(lambda: health(world)[1].get("health") == "degraded"), health(world)
    code, body = health(world)
    assert code == 200 and "shop" in body["failing"] and body["problems"] == [], body
    assert "degraded" in httpx.get(world.base + "/").text
    metrics = httpx.get(world.base + "/metrics").text  # the same verdict for Prometheus
    assert 'cardbridge_health{level="degraded"} 1.0' in metrics and 'cardbridge_health{level="healthy"} 0.0' in metrics
    assert 'cardbridge_remote_failing{remote="shop"} 1.0' in metrics
    assert 'cardbridge_remote_failing{remote="forum"} 0.0' in metrics


def test_buyers_the_forum_could_not_be_asked_about_wait_for_a_look_up(hworld):
    world = hworld
    world.shop.add_order(email="carol@example.com", items=[(world.card, 1)], status="processing")
    world.shop.add_order(email="dave@example.com", items=[(world.card, 1)], status="processing")
    forum_down(world)
    world.cli("sync")
    data = world.cli("status", "--json").json()
    assert data["unmatched_customers"] == 0, data
    assert data["waiting_for_lookup"] == 2, data
    human = world.cli("status").stdout
    assert "waiting for a look-up" in human and "2" in human.split("waiting for a look-up")[1].splitlines()[0]
    assert "unmatched customers" in human and human.split("unmatched customers")[1].splitlines()[0].strip(" │") == "0"

    # The forum is back: carol has an account (matched), dave has none (now truly unmatched).
    world.forum.knobs.clear_faults()
    world.forum.add_user("carol", "carol@example.com")
    assert world.cli("sync").code == 0
    data = world.cli("status", "--json").json()
    assert data["unmatched_customers"] == 1 and data["waiting_for_lookup"] == 0, data
    assert BADGE in world.forum.badges_of("carol")


def test_status_says_what_healthz_says_with_a_communities_failing_row(hworld):
    world = hworld
    assert world.cli("status", "--json").json()["health"] is None  # no pass recorded yet: not "healthy"
    assert "no pass recorded yet" in world.cli("status").stdout
    world.forum.add_user("alice", "alice@example.com")
    world.shop.add_order(email="alice@example.com", items=[(world.card, 1)], status="processing")
    run_daemon(world, unhealthy_after=3600)
    assert wait_for(lambda: BADGE in world.forum.badges_of("alice"))
    data = world.cli("status", "--json").json()
    assert data["health"]["level"] == health(world)[1]["health"] == "healthy", data["health"]
    assert data["communities_failing"] == {}

    forum_down(world)
    world.shop.add_order(email="bob@example.com", items=[(world.card, 1)], status="processing")
    assert wait_for(lambda: health(world)[1].get("health") == "degraded"), health(world)
    data = world.cli("status", "--json").json()
    since = health(world)[1]["failing"]["forum"]["since"]
    assert data["health"]["level"] == "degraded" and data["communities_failing"] == {"forum": since}, data["health"]
    human = world.cli("status").stdout
    row = human.split("communities failing")[1].splitlines()[0]
    assert f"forum since {since[:19]} UTC" in row, human
    assert "degraded" in human.split("health")[1].splitlines()[0]


def test_a_restarted_daemon_keeps_counting_from_when_the_failure_began(hworld):
    world = hworld
    world.shop.add_order(email="bob@example.com", items=[(world.card, 1)], status="processing")
    forum_down(world)
    first = run_daemon(world, unhealthy_after=3600)
    assert wait_for(lambda: health(world)[1].get("health") == "degraded"), health(world)
    since = health(world)[1]["failing"]["forum"]["since"]
    first.terminate()
    first.wait(30)
    time.sleep(1.5)
    run_daemon(world, unhealthy_after=3600)
    assert wait_for(lambda: health(world)[1].get("health") == "degraded"), health(world)
    assert health(world)[1]["failing"]["forum"]["since"] == since  # not reset by the restart


def test_passes_that_do_not_ask_the_failing_forum_do_not_clear_it(hworld):
    world = hworld
    world.shop.add_order(email="bob@example.com", items=[(world.card, 1)], status="processing")
    forum_down(world)
    # One sync at start (it asks the forum about bob); then only the outbox retry job, every second, which has
    # nothing for the forum and does not ask it.
    run_daemon(world, unhealthy_after=3600, sync_every=3600, retry_every=1)
    assert wait_for(lambda: health(world)[1].get("health") == "degraded"), health(world)
    since = health(world)[1]["failing"]["forum"]["since"]
    assert wait_for(lambda: health(world)[1]["last_pass"] > since)  # a retry pass ran since
    time.sleep(3)
    _, body = health(world)
    assert body["health"] == "degraded" and body["failing"]["forum"]["since"] == since, body


def test_passes_from_cron_are_recorded_for_status(hworld):
    """No daemon: `sync` from cron records its pass, so `status` says which community failed, and a later good pass
    clears it."""
    world = hworld
    world.forum.add_user("alice", "alice@example.com")
    world.shop.add_order(email="alice@example.com", items=[(world.card, 1)], status="processing")
    forum_down(world)
    assert world.cli("sync").code == 1
    data = world.cli("status", "--json").json()
    assert data["health"] is not None and data["health"]["level"] == "degraded", data["health"]
    assert list(data["communities_failing"]) == ["forum"], data["communities_failing"]

    world.forum.knobs.clear_faults()
    assert world.cli("sync").code == 0
    data = world.cli("status", "--json").json()
    assert data["health"]["level"] == "healthy" and data["communities_failing"] == {}, data["health"]

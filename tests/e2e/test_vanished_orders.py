"""Issue 13, items 7 and 8: a paid WooCommerce order moved to the trash or deleted for good loses what it granted.

WooCommerce never lists a trashed order under ``status=any`` (the default) nor under ``include=``, and a deleted one
is simply gone (see ``sandbox/shop/orders.py`` for the upstream citations). ``sync`` finds what was trashed since its
cursor (``status=trash``), ``reconcile`` finds what was deleted (ids missing from an ``include=`` read), and an order
restored from the trash grants again.
"""

from __future__ import annotations

import pytest

BADGE = "Verified Buyer"


@pytest.fixture
def woo(world):
    """Ann and Ben each paid one order; Cat paid twice (one order is enough for her badge)."""
    shop, forum = world.shop, world.forum
    card = shop.add_product("PlayStation Plus 12 个月", "399.00")
    ann = shop.add_customer("ann@example.com", "Ann", "Wu")
    world.ann = shop.add_order(customer_id=ann, items=[(card, 1)], status="completed")
    world.ben = shop.add_order(email="ben@example.com", items=[(card, 1)], status="processing")
    world.cat_first = shop.add_order(email="cat@example.com", items=[(card, 1)], status="completed")
    world.cat_second = shop.add_order(email="cat@example.com", items=[(card, 1)], status="completed")
    for name in ("ann", "ben", "cat"):
        forum.add_user(name, f"{name}@example.com")
    first = world.cli("sync")
    assert first.code == 0, first.output
    assert badged(world) == {"ann", "ben", "cat"}
    return world


def badged(world):
    return {u for u in ("ann", "ben", "cat") if BADGE in world.forum.badges_of(u)}


def test_a_trashed_order_is_revoked_by_the_next_sync_and_a_restored_one_grants_again(woo):
    woo.shop.trash_order(woo.ann)
    woo.shop.trash_order(woo.cat_first)  # Cat still has another paid order
    run = woo.cli("sync")
    assert run.code == 0, run.output
    assert badged(woo) == {"ben", "cat"}
    woo.shop.untrash_order(woo.ann)
    again = woo.cli("sync")
    assert again.code == 0, again.output
    assert badged(woo) == {"ann", "ben", "cat"}
    status = woo.cli("status", "--json").json()
    assert status["outbox"]["dead"] == 0 and status["outbox"]["failed"] == 0


def test_an_order_deleted_for_good_is_revoked_by_reconcile(woo):
    woo.shop.delete_order(woo.ben)
    woo.shop.delete_order(woo.cat_second)
    run = woo.cli("reconcile")
    assert run.code == 0, run.output
    assert badged(woo) == {"ann", "cat"}
    assert "2 paid order(s) are gone from the shop" in run.stdout
    assert "0 manual removal(s) found." in run.stdout  # a vanished order is no moderator's doing
    status = woo.cli("status", "--json").json()
    assert status["totals"]["paid_orders"] == 2
    assert status["outbox"]["dead"] == 0 and status["outbox"]["failed"] == 0


def test_an_order_trashed_then_deleted_before_a_sync_is_revoked_by_that_sync_or_reconcile(woo):
    woo.shop.trash_order(woo.ben)  # in the trash, then the trash is emptied before any sync saw it
    woo.shop.delete_order(woo.ben)
    woo.shop.trash_order(woo.ann)
    run = woo.cli("sync")
    assert run.code == 0, run.output
    assert badged(woo) == {"ben", "cat"}  # Ann's trash is seen; Ben's order left no trace a sync can read
    later = woo.cli("reconcile")
    assert later.code == 0, later.output
    assert badged(woo) == {"cat"}


def test_a_backfill_revokes_orders_that_vanished_as_well(woo):
    woo.shop.delete_order(woo.ann)
    woo.shop.reset_log()
    run = woo.cli("backfill")
    assert run.code == 0, run.output
    assert badged(woo) == {"ben", "cat"}
    # the walk read every order the shop has: only the one it did not see is asked for (and then in the trash)
    asked = [r["query"] for r in woo.shop.requests if "include" in r["query"] and r["path"].endswith("/orders")]
    assert [(q["include"], q.get("status")) for q in asked] == [(str(woo.ann), "any"), (str(woo.ann), "trash")]


def test_a_shop_that_answers_none_of_many_paid_orders_is_not_believed(world):
    """A key that reads another (empty) shop must not take every badge away: nothing is revoked, reconcile says why
    and exits 1."""
    from sandbox.server import SandboxServer
    from sandbox.shop import WooCommerceSandbox
    from tests.e2e.conftest import ENV

    card = world.shop.add_product("Apple Gift Card ¥100", "100.00")
    for n in range(25):
        world.shop.add_order(email=f"buyer{n}@example.com", items=[(card, 1)], status="completed")
    world.forum.add_user("buyer0", "buyer0@example.com")
    assert world.cli("sync").code == 0
    assert BADGE in world.forum.badges_of("buyer0")
    other = WooCommerceSandbox(consumer_key=ENV["WC_CONSUMER_KEY"], consumer_secret=ENV["WC_CONSUMER_SECRET"])
    with SandboxServer(other.app) as server:
        world.config_path.write_text(world.config_path.read_text().replace(world.shop_server.url, server.url))
        run = world.cli("reconcile")
    assert run.code == 1, run.output
    assert "the shop has none of the 25 paid orders" in run.output
    assert BADGE in world.forum.badges_of("buyer0")
    assert world.cli("status", "--json").json()["totals"]["paid_orders"] == 25


def test_thousands_deleted_at_once_are_believed_when_the_shop_still_has_others(world):
    """An admin may delete many paid orders at once (acg-faka's export-and-delete takes up to 5,000): a chunk of 500
    ids that are all gone is believed once the shop answers any other order."""
    card = world.shop.add_product("Google Play ¥50", "50.00")
    ids = [world.shop.add_order(email=f"b{n}@example.com", items=[(card, 1)], status="completed") for n in range(560)]
    world.forum.add_user("first", "b0@example.com")
    world.forum.add_user("last", "b559@example.com")
    assert world.cli("sync").code == 0
    assert BADGE in world.forum.badges_of("first") and BADGE in world.forum.badges_of("last")
    for order_id in ids[:500]:  # the first chunk of the store's paid ids, in id order
        world.shop.delete_order(order_id)
    run = world.cli("reconcile")
    assert run.code == 0, run.output
    assert "500 paid order(s) are gone from the shop" in run.stdout
    assert BADGE not in world.forum.badges_of("first") and BADGE in world.forum.badges_of("last")


def test_an_order_deleted_webhook_revokes_at_once(world):
    """WooCommerce's ``order.deleted`` webhook (sent on trash and on delete) carries only ``{"id": N}``
    (plugins/woocommerce/includes/class-wc-webhook.php ``build_payload()``); the daemon re-reads that order, and one
    the shop no longer has (in the trash or gone) stops granting without waiting for a reconcile."""
    import json

    import httpx

    from adapters.shops.woocommerce_webhook import WOOCOMMERCE
    from tests.e2e.test_daemon import SECRET, start, wait_for

    world.port = _free_port()
    world.write_config(
        extra=f"""
[schedule]
sync_every = 3600
reconcile_every = 3600
retry_every = 3600
[server]
listen = "127.0.0.1:{world.port}"
woocommerce_webhook_secret = "{SECRET}"
discourse_webhook_secret = "unused-secret"
"""
    )
    world.base = f"http://127.0.0.1:{world.port}"
    world.processes = []
    card = world.shop.add_product("Nintendo eShop ¥500", "500.00")
    trashed = world.shop.add_order(email="dan@example.com", items=[(card, 1)], status="completed")
    deleted = world.shop.add_order(email="eve@example.com", items=[(card, 1)], status="completed")
    world.forum.add_user("dan", "dan@example.com")
    world.forum.add_user("eve", "eve@example.com")
    try:
        start(world)
        assert wait_for(lambda: BADGE in world.forum.badges_of("eve"), 10)
        world.shop.trash_order(trashed)
        world.shop.delete_order(deleted)
        for delivery, order_id in (("7", trashed), ("8", deleted)):
            body = json.dumps({"id": order_id}).encode()
            answer = httpx.post(
                world.base + "/webhooks/woocommerce",
                content=body,
                headers={
                    "X-WC-Webhook-Signature": WOOCOMMERCE.sign(SECRET, body),
                    "X-WC-Webhook-Topic": "order.deleted",
                    "X-WC-Webhook-Delivery-ID": delivery,
                    "Content-Type": "application/json",
                },
            )
            assert answer.status_code == 200, answer.text
        assert wait_for(lambda: not world.forum.badges_of("dan") and not world.forum.badges_of("eve"), 15)
    finally:
        for process in world.processes:
            process.kill()
            process.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

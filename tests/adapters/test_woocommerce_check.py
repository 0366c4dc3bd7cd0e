"""``cardbridge check`` for WooCommerce, against the sandbox shop over loopback: a good key passes everything; each bad
key, URL or permalink setting fails at the right line, names the config key to change, and never shows a secret."""

from __future__ import annotations

import socket

import pytest

from adapters.checks import Check, SelfCheck
from adapters.shops.woocommerce import WooCommerceSettings, WooCommerceShop
from connector.core.settings import validate_table
from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox
from sandbox.shop.keys import CUSTOMER, SHOP_MANAGER

KEY, SECRET = "ck_check_good", "cs_check_good_s3cret"


@pytest.fixture
def shop():
    sandbox = WooCommerceSandbox(consumer_key=KEY, consumer_secret=SECRET)
    product = sandbox.add_product("Steam 钱包充值卡 $20")
    buyer = sandbox.add_customer("buyer@example.com")
    sandbox.add_order(buyer, items=[(product, 1)])
    sandbox.add_review(product, "Buyer", "buyer@example.com", 5, "fast delivery")
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url  # type: ignore[attr-defined]
        yield sandbox


def run(base_url: str, key: str = KEY, secret: str = SECRET) -> list[Check]:
    settings = validate_table(
        WooCommerceSettings,
        {
            "kind": "woocommerce",
            "base_url": base_url,
            "consumer_key": key,
            "consumer_secret": secret,
            "max_retry_seconds": 2,
        },
        "shop",
    )
    adapter = WooCommerceShop(settings)
    assert isinstance(adapter, SelfCheck)
    try:
        checks = list(adapter.check())
    finally:
        adapter.close()
    for line in checks:  # no secret, ever, in what the operator sees
        assert SECRET not in line.detail + line.fix and "s3cret" not in line.detail + line.fix
    return checks


def lines(checks: list[Check]) -> list[tuple[str, bool]]:
    return [(c.what, c.ok) for c in checks]


def test_a_shop_managers_read_key_passes_every_check(shop):
    shop.add_key("ck_reader", "cs_reader_s3cret", permissions="read", capabilities=SHOP_MANAGER)
    checks = run(shop.url, "ck_reader", "cs_reader_s3cret")
    assert lines(checks) == [
        ("reach the REST API", True),
        ("key accepted", True),
        ("read orders", True),
        ("read customers", True),
        ("read product reviews", True),
    ]
    assert "(1 in the shop)" in checks[2].detail
    # read-only, a handful of requests, nothing personal asked for
    asked = [r for r in shop.requests if r["path"] != "/wp-json/wc/v3/"]
    assert all(r["method"] == "GET" for r in shop.requests) and len(shop.requests) == 4
    assert all(r["query"]["_fields"] == "id" and r["query"]["per_page"] == "1" for r in asked)


def test_a_wrong_secret_is_refused_and_the_checks_stop(shop):
    checks = run(shop.url, KEY, "cs_wrong_s3cret")
    assert lines(checks) == [("reach the REST API", True), ("key accepted", False)]
    refused = checks[1]
    assert "woocommerce_rest_authentication_error" in refused.detail and "401" in refused.detail
    assert "shop.consumer_secret" in refused.fix and "shop.consumer_key" in refused.fix
    assert "cs_wrong" not in refused.detail + refused.fix


def test_an_unknown_key_reads_as_a_visitor(shop):
    checks = run(shop.url, "ck_not_a_key", "cs_whatever_s3cret")
    assert lines(checks) == [("reach the REST API", True), ("key accepted", False)]
    assert "woocommerce_rest_cannot_view" in checks[1].detail and "visitor" in checks[1].detail
    assert "shop.consumer_key" in checks[1].fix and "https://" in checks[1].fix


def test_a_write_only_key_is_refused(shop):
    shop.add_key("ck_writer", "cs_writer_s3cret", permissions="write")
    checks = run(shop.url, "ck_writer", "cs_writer_s3cret")
    assert lines(checks) == [("reach the REST API", True), ("key accepted", False)]
    assert "read permissions" in checks[1].detail and "Read or Read/Write" in checks[1].fix


def test_a_key_of_a_customer_user_is_accepted_but_reads_nothing(shop):
    shop.add_key("ck_customer", "cs_customer_s3cret", capabilities=CUSTOMER)
    checks = run(shop.url, "ck_customer", "cs_customer_s3cret")
    assert lines(checks) == [
        ("reach the REST API", True),
        ("key accepted", True),
        ("read orders", False),
        ("read customers", False),
        ("read product reviews", False),
    ]
    orders = checks[2]
    assert "HTTP 403 woocommerce_rest_cannot_view" in orders.detail and "read_private_shop_orders" in orders.detail
    assert "Shop manager" in orders.fix and "shop.consumer_key" in orders.fix
    assert "list_users" in checks[3].detail and "moderate_comments" in checks[4].detail


def test_a_user_without_list_users_fails_only_the_customers_line(shop):
    shop.add_key("ck_no_users", "cs_no_users_s3cret", capabilities=SHOP_MANAGER - {"list_users"})
    checks = run(shop.url, "ck_no_users", "cs_no_users_s3cret")
    assert [c.what for c in checks if not c.ok] == ["read customers"]


def test_plain_permalinks_are_named_in_the_fix(shop):
    shop.pretty_permalinks = False
    checks = run(shop.url)
    assert lines(checks) == [("reach the REST API", False)]
    assert "HTTP 404" in checks[0].detail and "permalinks" in checks[0].fix and "shop.base_url" in checks[0].fix


def test_a_site_without_woocommerce_active_is_named(shop):
    shop.woocommerce_active = False
    checks = run(shop.url)
    assert lines(checks) == [("reach the REST API", False)]
    assert "rest_no_route" in checks[0].detail and "activate WooCommerce" in checks[0].fix


def test_a_wrong_base_url_is_named(shop):
    checks = run(shop.url + "/shop")
    assert lines(checks) == [("reach the REST API", False)]
    assert "/shop/wp-json/wc/v3" in checks[0].detail and "shop.base_url" in checks[0].fix


def test_a_shop_that_is_not_there_is_one_failed_line_naming_the_url():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    checks = run(f"http://user:pw@127.0.0.1:{port}")
    assert lines(checks) == [("reach the REST API", False)]
    assert f"127.0.0.1:{port}/wp-json/wc/v3" in checks[0].detail and "pw@" not in checks[0].detail
    assert "shop.base_url" in checks[0].fix

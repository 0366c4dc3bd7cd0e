"""``cardbridge check`` for Sellix, against the sandbox over loopback: a good key passes; a bad key, a merchant name the
account does not own and an API that is not there each fail at their line, naming the key to change."""

from __future__ import annotations

import socket

import pytest

from adapters.checks import Check, SelfCheck
from adapters.shops.sellix import SellixSettings, SellixShop
from connector.core.settings import validate_table
from sandbox.sellix import SellixSandbox
from sandbox.server import SandboxServer

KEY = "sellix-check-s3cret-key"


@pytest.fixture
def sellix():
    sandbox = SellixSandbox(api_key=KEY)
    product = sandbox.add_product("Netflix 1 month", 9.99)
    order = sandbox.add_order("buyer@example.com", product)
    sandbox.add_feedback(order, 5, "works")
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url + "/v1"  # type: ignore[attr-defined]
        yield sandbox


def run(base_url: str, api_key: str = KEY, merchant: str = "") -> list[Check]:
    table = {"kind": "sellix", "base_url": base_url, "api_key": api_key, "merchant": merchant, "max_retry_seconds": 2}
    adapter = SellixShop(validate_table(SellixSettings, table, "shop"))
    assert isinstance(adapter, SelfCheck)
    try:
        checks = list(adapter.check())
    finally:
        adapter.close()
    for line in checks:
        assert "s3cret" not in line.detail + line.fix and api_key not in line.detail + line.fix
    return checks


def lines(checks: list[Check]) -> list[tuple[str, bool]]:
    return [(c.what, c.ok) for c in checks]


def test_a_good_key_passes(sellix):
    assert lines(run(sellix.url)) == [("key accepted", True), ("read orders", True), ("read feedback", True)]
    assert len(sellix.requests) == 2  # page 1 of each list, nothing more


def test_a_good_key_with_a_shop_the_account_owns_passes(sellix):
    sellix.merchants.add("second-shop")
    checks = run(sellix.url, merchant="second-shop")
    assert all(c.ok for c in checks) and "'second-shop'" in checks[0].detail


def test_a_bad_key_is_refused_and_the_checks_stop(sellix):
    checks = run(sellix.url, api_key="not-the-key")
    assert lines(checks) == [("key accepted", False)]
    assert "HTTP 401" in checks[0].detail and "shop.api_key" in checks[0].fix


def test_a_merchant_the_account_does_not_own_is_told_apart_from_a_bad_key(sellix):
    checks = run(sellix.url, merchant="someone-elses-shop")
    assert lines(checks) == [("key accepted", True), ("shop 'someone-elses-shop'", False)]
    assert "shop.merchant" in checks[1].fix and "without it passes" in checks[1].detail
    assert lines(run(sellix.url, api_key="not-the-key", merchant="someone-elses-shop")) == [("key accepted", False)]


def test_an_api_that_is_not_there_is_one_line_naming_the_url():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    checks = run(f"http://127.0.0.1:{port}/v1")
    assert lines(checks) == [("reach the Sellix API", False)]
    assert f"127.0.0.1:{port}/v1/orders" in checks[0].detail and "shop.base_url" in checks[0].fix

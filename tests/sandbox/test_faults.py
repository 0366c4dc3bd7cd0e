"""Fault knobs over real sockets, and the connector's client riding them out (retries on drops, timeouts, 5xx)."""

import httpx
import pytest

from connector.core.http import RemoteClient
from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox


@pytest.fixture
def shop():
    sandbox = WooCommerceSandbox()
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url + "/wp-json/wc/v3"  # type: ignore[attr-defined]
        yield sandbox


def client(shop, timeout=5.0):
    return RemoteClient(
        "shop", shop.url, auth=(shop.consumer_key, shop.consumer_secret), timeout=timeout, sleep=lambda s: None
    )


def test_dropped_connection_is_a_protocol_error_then_retried(shop):
    shop.knobs.add_fault(r"/orders$", kind="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(shop.url + "/orders", auth=(shop.consumer_key, shop.consumer_secret))
    shop.knobs.add_fault(r"/orders$", kind="drop")
    c = client(shop)
    assert c.request("GET", "/orders").status_code == 200
    assert c.stats.retries == 1


def test_slow_answer_times_out_then_retried(shop):
    shop.knobs.add_fault(r"/orders$", kind="delay", seconds=1.0)
    c = client(shop, timeout=0.2)
    assert c.request("GET", "/orders").status_code == 200
    assert c.stats.retries == 1


def test_5xx_retried_and_latency_knob(shop):
    shop.knobs.add_fault(r"/orders$", kind="status", status=502, times=2)
    shop.knobs.latency = 0.05
    c = client(shop)
    assert c.request("GET", "/orders").status_code == 200
    assert c.stats.retries == 2 and c.stats.by_status[502] == 2

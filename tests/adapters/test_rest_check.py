"""``cardbridge check`` for the declarative REST shop, against a 发卡 reseller-style API and a bearer-token API on
loopback: a good config passes; a refused signature or token, a wrong records path, a field mapped to nothing and a
status the map does not know each fail at their line, naming the key under ``shop.rest``; no secret, card secret or
buyer email is ever shown."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.checks import Check, SelfCheck
from adapters.shops.rest import RestShop, RestShopSettings
from connector.core.settings import validate_table
from sandbox.server import SandboxServer
from tests.e2e.test_rest_adapter import APP_ID, SECRET, FakaApi

FIELDS = {
    "id": "order_no",
    "email": "contact",
    "status": "state",
    "product_id": "goods_id",
    "modified_at": "update_time",
}
TOKEN = "bearer-s3cret-token"


@pytest.fixture
def faka():
    api = FakaApi()
    api.add("buyer@example.com", 1, "KAMI-CARD-SECRET-1")
    with SandboxServer(api.app) as server:
        api.url = server.url  # type: ignore[attr-defined]
        yield api


def rest(base_url: str, secret: str = SECRET, fields: dict[str, str] | None = None, **orders: Any) -> list[Check]:
    table = {
        "kind": "rest",
        "base_url": base_url,
        "max_retry_seconds": 2,
        "rest": {
            "time_format": "%Y-%m-%d %H:%M:%S",
            "status_map": {"1": "paid", "0": "unpaid"},
            "auth": {"type": "md5_sign", "key_param": "app_id", "key": APP_ID, "secret": secret},
            "orders": {
                "path": "/api/order/list",
                "records": "data.list",
                "ok_path": "code",
                "ok_value": "0",
                "message_path": "msg",
                "pagination": {"type": "page", "size": 2},
            }
            | orders,
            "fields": fields or FIELDS,
        },
    }
    return run(RestShop(validate_table(RestShopSettings, table, "shop")), secret)


def run(adapter: RestShop, *secrets: str) -> list[Check]:
    assert isinstance(adapter, SelfCheck)
    try:
        checks = list(adapter.check())
    finally:
        adapter.close()
    for line in checks:
        shown = line.detail + line.fix
        assert not any(s in shown for s in secrets) and "KAMI" not in shown and "buyer@" not in shown
    return checks


def lines(checks: list[Check]) -> list[tuple[str, bool]]:
    return [(c.what, c.ok) for c in checks]


def test_a_good_config_passes(faka):
    assert lines(rest(faka.url)) == [
        ("reach the orders endpoint", True),
        ("auth accepted", True),
        ("records found", True),
        ("mapped fields", True),
        ("status_map", True),
    ]


def test_a_refused_signature_fails_auth_with_the_apis_own_code(faka):
    checks = rest(faka.url, secret="not-the-s3cret")
    assert lines(checks) == [("reach the orders endpoint", True), ("auth accepted", False)]
    assert "code = '403'" in checks[1].detail and "签名错误" in checks[1].detail and "shop.rest.auth" in checks[1].fix


def test_a_wrong_records_path_names_the_top_level_keys(faka):
    checks = rest(faka.url, records="data.items")
    assert lines(checks)[-1] == ("records found", False)
    assert "code, data, msg" in checks[-1].detail and "shop.rest.orders.records" in checks[-1].fix


def test_a_field_mapped_to_nothing_is_named(faka):
    checks = rest(faka.url, fields={**FIELDS, "email": "buyer.mail", "product_id": "sku"})
    mapped = next(c for c in checks if c.what == "mapped fields")
    assert not mapped.ok and "email (buyer.mail)" in mapped.detail and "product_id (sku)" in mapped.detail
    assert "shop.rest.fields.email" in mapped.fix and "shop.rest.fields.product_id" in mapped.fix


def test_a_status_the_map_does_not_know_is_named(faka):
    faka.orders.clear()
    faka.add("buyer@example.com", 7, "KAMI-CARD-SECRET-2")
    status = rest(faka.url)[-1]
    assert (status.what, status.ok) == ("status_map", False) and "'7'" in status.detail
    assert "shop.rest.status_map" in status.fix


def test_an_empty_first_page_cannot_test_the_fields(faka):
    faka.orders.clear()
    checks = rest(faka.url)
    assert checks[-1].ok and "not tested" in checks[-1].detail


def test_a_refused_bearer_token_is_a_failed_auth_line():
    async def orders(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "invalid token"}, status_code=401)
        return JSONResponse([{"id": 1, "mail": "buyer@example.com", "state": "paid", "sku": "A", "at": 1}])

    api = Starlette(routes=[Route("/v2/orders", orders)])
    fields = {"id": "id", "email": "mail", "status": "state", "product_id": "sku", "modified_at": "at"}

    def bearer(url: str, token: str) -> list[Check]:
        table = {
            "kind": "rest",
            "base_url": url,
            "rest": {
                "auth": {"type": "bearer", "token": token},
                "orders": {"path": "/v2/orders"},
                "fields": fields,
                "status_map": {"paid": "paid"},
            },
        }
        return run(RestShop(validate_table(RestShopSettings, table, "shop")), token)

    with SandboxServer(api) as server:
        assert all(c.ok for c in bearer(server.url, TOKEN))
        refused = bearer(server.url, "wrong-s3cret-token")
    assert lines(refused) == [("reach the orders endpoint", True), ("auth accepted", False)]
    assert "HTTP 401" in refused[1].detail and "invalid token" in refused[1].detail
    assert "'bearer'" in refused[1].detail and "shop.rest.auth" in refused[1].fix


def test_an_api_that_is_not_there_is_one_line_naming_the_url():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    checks = rest(f"http://127.0.0.1:{port}")
    assert lines(checks) == [("reach the orders endpoint", False)]
    assert f"127.0.0.1:{port}/api/order/list" in checks[0].detail and "shop.base_url" in checks[0].fix

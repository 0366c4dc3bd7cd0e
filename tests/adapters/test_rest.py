"""The declarative REST adapter's pagination, incremental modes and auth (respx)."""

import httpx
import pytest
import respx

from adapters.shops.rest import RestShop, RestShopSettings
from connector.core.config import ConfigError, validate_table

BASE = "https://shop.example.com"
FIELDS = {"id": "id", "email": "email", "status": "status", "product_id": "sku", "modified_at": "updated"}


def shop(**orders):
    rest = {
        "status_map": {"ok": "paid", "no": "unpaid"},
        "fields": FIELDS,
        "time_format": "iso",
        "orders": {"path": "/orders"} | orders,
    }
    return RestShop(settings(rest, lookback_seconds=0))


def settings(rest, **keys):
    """The ``[shop]`` table validated as the config validates it (errors name the key)."""
    return validate_table(RestShopSettings, {"kind": "rest", "base_url": BASE, "rest": rest, **keys}, "shop")


def rec(i, updated="2026-11-01T10:00:00Z"):
    return {"id": i, "email": f"b{i}@example.com", "status": "ok", "sku": "X1", "updated": updated}


@respx.mock
def test_offset_pagination_and_id_watermark():
    route = respx.get(f"{BASE}/orders").mock(
        side_effect=[httpx.Response(200, json=[rec(1), rec(2)]), httpx.Response(200, json=[rec(3)])]
    )
    s = shop(pagination={"type": "offset", "size": 2}, incremental={"type": "id_watermark", "param": "since_id"})
    pages = list(s.order_pages("1"))
    assert [o.id for p in pages for o in p.orders] == ["2", "3"]  # 1 is at the watermark
    assert pages[-1].cursor == "3"
    assert [c.request.url.params["offset"] for c in route.calls] == ["0", "2"]
    assert route.calls[0].request.url.params["since_id"] == "1"


@respx.mock
def test_cursor_pagination():
    route = respx.get(f"{BASE}/orders").mock(
        side_effect=[
            httpx.Response(200, json={"items": [rec(1)], "next": "abc"}),
            httpx.Response(200, json={"items": [rec(2)], "next": None}),
        ]
    )
    s = shop(records="items", pagination={"type": "cursor", "next_path": "next"})
    assert [o.id for p in s.order_pages(None) for o in p.orders] == ["1", "2"]
    assert route.calls[1].request.url.params["cursor"] == "abc"


@respx.mock
def test_link_header_and_next_url_pagination():
    respx.get(f"{BASE}/orders").mock(
        return_value=httpx.Response(200, json=[rec(1)], headers={"Link": f'<{BASE}/orders2>; rel="next"'})
    )
    respx.get(f"{BASE}/orders2").mock(return_value=httpx.Response(200, json=[rec(2)]))
    assert [o.id for p in shop(pagination={"type": "link"}).order_pages(None) for o in p.orders] == ["1", "2"]
    respx.get(f"{BASE}/orders3").mock(return_value=httpx.Response(200, json={"data": [rec(3)], "next_page_url": None}))
    respx.get(f"{BASE}/o").mock(
        return_value=httpx.Response(200, json={"data": [rec(4)], "next_page_url": f"{BASE}/orders3"})
    )
    s = shop(path="/o", records="data", pagination={"type": "next_url", "next_path": "next_page_url"})
    assert [o.id for p in s.order_pages(None) for o in p.orders] == ["4", "3"]


@respx.mock
def test_client_side_filter_and_total_pages_header():
    respx.get(f"{BASE}/orders").mock(
        side_effect=[
            httpx.Response(
                200,
                json=[rec(1, "2026-10-01T00:00:00Z"), rec(2, "2026-11-02T00:00:00Z")],
                headers={"X-Total-Pages": "1"},
            )
        ]
    )
    s = shop(
        pagination={"type": "page", "size": 5, "total_pages_header": "X-Total-Pages"},
        incremental={"type": "client_filter"},
    )
    pages = list(s.order_pages("2026-11-01T00:00:00Z"))
    assert [o.id for p in pages for o in p.orders] == ["2"]
    assert pages[-1].cursor == "2026-11-02T00:00:00Z"


@respx.mock
def test_bearer_and_header_auth():
    route = respx.get(f"{BASE}/orders").mock(return_value=httpx.Response(200, json=[]))
    rest = {
        "status_map": {"ok": "paid"},
        "fields": FIELDS,
        "orders": {"path": "/orders"},
        "auth": {"type": "bearer", "token": "t0k"},
    }
    list(RestShop(settings(rest)).order_pages(None))
    assert route.calls.last.request.headers["Authorization"] == "Bearer t0k"
    rest["auth"] = {"type": "header", "name": "X-Api-Key", "value": "k3y"}
    list(RestShop(settings(rest)).order_pages(None))
    assert route.calls.last.request.headers["X-Api-Key"] == "k3y"


def test_md5_signature_is_over_sorted_parameters():
    rest = {
        "status_map": {"ok": "paid"},
        "fields": FIELDS,
        "orders": {"path": "/orders"},
        "auth": {"type": "md5_sign", "key": "app", "secret": "s"},
    }
    signed = RestShop(settings(rest)).sign({"page": 2, "limit": 10})
    import hashlib

    query = f"app_id=app&limit=10&page=2&timestamp={signed['timestamp']}"
    assert signed["sign"] == hashlib.md5(f"{query}&key=s".encode()).hexdigest()


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"shop.rest.fields.email: 'card_password' looks like a secret field"):
        settings({"status_map": {}, "orders": {"path": "/o"}, "fields": {**FIELDS, "email": "card_password"}})
    with pytest.raises(ConfigError, match=r"shop.rest.status_map.1: Input should be 'paid'"):
        settings({"status_map": {"1": "shipped"}, "orders": {"path": "/o"}, "fields": FIELDS})
    with pytest.raises(ConfigError, match=r'shop.rest: is required for kind = "rest"'):
        validate_table(RestShopSettings, {"kind": "rest", "base_url": BASE}, "shop")

"""The sandbox shop answers like WooCommerce's REST API v3 (docs in shared/specs/shops/woocommerce)."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def shop():
    now = [T0]
    sandbox = WooCommerceSandbox(consumer_key="ck_t", consumer_secret="cs_t", clock=lambda: now[0])
    sandbox.advance = lambda seconds: now.__setitem__(0, now[0] + timedelta(seconds=seconds))  # type: ignore[attr-defined]
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url + "/wp-json/wc/v3"  # type: ignore[attr-defined]
        yield sandbox


def client(shop, key="ck_t", secret="cs_t"):
    return httpx.Client(base_url=shop.url, auth=(key, secret) if key else None)


def test_auth_failures_have_the_documented_bodies(shop):
    missing = httpx.get(shop.url + "/orders")
    assert missing.status_code == 401 and missing.json()["code"] == "woocommerce_rest_cannot_view"
    wrong_key = client(shop, key="ck_nope").get("/orders")
    assert wrong_key.status_code == 401 and wrong_key.json()["code"] == "woocommerce_rest_cannot_view"  # a visitor
    wrong_secret = client(shop, secret="cs_nope").get("/orders")
    assert wrong_secret.status_code == 401 and wrong_secret.json()["code"] == "woocommerce_rest_authentication_error"
    via_query = httpx.get(shop.url + "/orders", params={"consumer_key": "ck_t", "consumer_secret": "cs_t"})
    assert via_query.status_code == 200


def test_pagination_headers_and_limits(shop):
    product = shop.add_product("Steam 钱包充值卡 $20", "145.00")
    for _ in range(25):
        shop.add_order(email="a@example.com", items=[(product, 1)])
    page = client(shop).get("/orders", params={"per_page": 10, "page": 2})
    assert page.headers["X-WP-Total"] == "25" and page.headers["X-WP-TotalPages"] == "3"
    links = page.headers["Link"]
    assert 'rel="prev"' in links and 'rel="next"' in links and "page=3" in links and "per_page=10" in links
    assert len(page.json()) == 10
    too_big = client(shop).get("/orders", params={"per_page": 101})
    assert too_big.status_code == 400
    assert too_big.json()["data"]["params"]["per_page"] == "per_page must be between 1 (inclusive) and 100 (inclusive)"
    assert client(shop).get("/orders", params={"orderby": "nonsense"}).status_code == 400
    assert client(shop).get("/nope").json()["code"] == "rest_no_route"


def test_modified_after_in_gmt_and_site_time(shop):
    product = shop.add_product("Elden Ring Steam Key", "199.00")
    first = shop.add_order(email="a@example.com", items=[(product, 1)])
    shop.advance(60)
    second = shop.add_order(email="b@example.com", items=[(product, 1)])
    shop.advance(60)
    shop.set_status(first, "refunded")  # moves to the end of the modified order
    c = client(shop)
    params = {"orderby": "modified", "order": "asc", "dates_are_gmt": "true", "modified_after": "2026-11-01T08:00:30"}
    assert [o["id"] for o in c.get("/orders", params=params).json()] == [second, first]
    # without dates_are_gmt the bound is site time (Asia/Shanghai, UTC+8)
    local = {"orderby": "modified", "order": "asc", "modified_after": "2026-11-01T16:01:30"}
    assert [o["id"] for o in c.get("/orders", params=local).json()] == [first]
    order = c.get(f"/orders/{first}").json()
    assert order["date_modified_gmt"] == "2026-11-01T08:02:00" and order["date_modified"] == "2026-11-01T16:02:00"
    assert order["status"] == "refunded" and order["customer_id"] == 0


def test_orders_carry_what_the_connector_must_not_keep(shop):
    product = shop.add_product("Windows 11 专业版 激活码", "89.00")
    order_id = shop.add_order(email="a@example.com", items=[(product, 1)])
    order = client(shop).get(f"/orders/{order_id}").json()
    secrets = shop.secrets()
    assert order["line_items"][0]["meta_data"][0]["value"] in secrets
    assert order["meta_data"][0]["value"] in secrets
    assert order["billing"]["phone"] and order["shipping"]["address_1"] and order["transaction_id"]


def test_customers_include_and_reviews(shop):
    a = shop.add_customer("a@example.com", "A", "One")
    shop.add_customer("b@example.com", "B", "Two")
    found = client(shop).get("/customers", params={"include": str(a)}).json()
    assert [c["id"] for c in found] == [a] and found[0]["email"] == "a@example.com"
    product = shop.add_product("月卡", "15.00")
    shop.add_review(product, "A", "a@example.com", 5, "很好")
    [review] = client(shop).get("/products/reviews").json()
    assert review["rating"] == 5 and review["verified"] is False and review["product_id"] == product


def test_fault_knob_answers_once(shop):
    shop.knobs.add_fault(r"/orders$", kind="status", status=503)
    assert client(shop).get("/orders").status_code == 503
    assert client(shop).get("/orders").status_code == 200


def test_the_trash_is_hidden_from_lists_and_deleted_orders_are_gone(shop):
    product = shop.add_product("Xbox Game Pass 3 个月", "99.00")
    kept, trashed, deleted = (shop.add_order(email=f"{n}@example.com", items=[(product, 1)]) for n in "abc")
    c = client(shop)
    shop.advance(60)
    gone = c.delete(f"/orders/{trashed}")  # force=false: to the trash, answered as it was
    assert gone.status_code == 200 and gone.json()["status"] == "processing"
    assert c.delete(f"/orders/{trashed}").json()["code"] == "woocommerce_rest_already_trashed"
    assert c.delete(f"/orders/{deleted}", params={"force": "true"}).status_code == 200
    ids = ",".join(map(str, (kept, trashed, deleted)))
    for params in ({}, {"orderby": "modified", "order": "asc"}, {"include": ids}, {"status": "any", "include": ids}):
        assert [o["id"] for o in c.get("/orders", params=params).json()] == [kept], params
    trash = c.get(
        "/orders", params={"status": "trash", "modified_after": "2026-11-01T08:00:30", "dates_are_gmt": "true"}
    )
    assert [(o["id"], o["status"]) for o in trash.json()] == [(trashed, "trash")]
    assert trash.json()[0]["date_modified_gmt"] == "2026-11-01T08:01:00"  # trashing moved date_modified
    assert c.get(f"/orders/{trashed}").json()["status"] == "trash"
    assert c.get("/orders", params={"status": "deleted"}).json()["code"] == "rest_invalid_param"
    assert c.get(f"/orders/{deleted}").json()["code"] == "woocommerce_rest_shop_order_invalid_id"
    shop.advance(60)
    shop.untrash_order(trashed)
    back = c.get("/orders", params={"orderby": "modified", "order": "asc"}).json()
    assert [(o["id"], o["status"]) for o in back] == [(kept, "processing"), (trashed, "processing")]

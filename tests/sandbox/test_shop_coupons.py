"""The sandbox shop's ``/coupons`` and ``POST /orders`` with ``coupon_lines`` answer as WooCommerce does (citations in
``sandbox/shop/coupons.py``): who may list and create, the code's normalisation and look-up, the trash, and every
check a buyer's order makes of a coupon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox
from sandbox.shop.keys import SHOP_MANAGER

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def shop():
    now = [T0]
    sandbox = WooCommerceSandbox(consumer_key="ck_rw", consumer_secret="cs_rw", clock=lambda: now[0])
    sandbox.add_key("ck_r", "cs_r", "read")
    sandbox.add_key("ck_nocap", "cs_nocap", "read_write", SHOP_MANAGER - {"publish_shop_coupons"})
    sandbox.advance = lambda seconds: now.__setitem__(0, now[0] + timedelta(seconds=seconds))  # type: ignore[attr-defined]
    sandbox.product = sandbox.add_product("Steam 钱包充值卡 $20", "145.00")  # type: ignore[attr-defined]
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url + "/wp-json/wc/v3"  # type: ignore[attr-defined]
        yield sandbox


def client(shop, key="ck_rw", secret="cs_rw"):
    return httpx.Client(base_url=shop.url, auth=(key, secret) if key else None)


def order(shop, code, email, customer_id=0):
    body = {
        "status": "processing",
        "customer_id": customer_id,
        "billing": {"email": email},
        "line_items": [{"product_id": shop.product, "quantity": 1}],
        "coupon_lines": [{"code": code}],
    }
    return client(shop).post("/orders", json=body)


def test_who_may_list_and_create(shop):
    coupon = {"code": "CB-X", "amount": "5"}
    visitor = httpx.post(shop.url + "/coupons", json=coupon)
    assert (visitor.status_code, visitor.json()["code"]) == (401, "woocommerce_rest_cannot_create")
    read_key = client(shop, "ck_r", "cs_r").post("/coupons", json=coupon)
    assert (read_key.status_code, read_key.json()["code"]) == (401, "woocommerce_rest_authentication_error")
    no_cap = client(shop, "ck_nocap", "cs_nocap").post("/coupons", json=coupon)
    assert (no_cap.status_code, no_cap.json()["code"]) == (403, "woocommerce_rest_cannot_create")
    assert httpx.get(shop.url + "/coupons").json()["code"] == "woocommerce_rest_cannot_view"
    assert client(shop, "ck_r", "cs_r").get("/coupons").status_code == 200  # reading needs Read only
    # arguments are validated before any permission callback: the no-capability user gets the 400
    missing = client(shop, "ck_nocap", "cs_nocap").post("/coupons", json={})
    assert (missing.status_code, missing.json()["code"]) == (400, "rest_missing_callback_param")
    assert shop.all_coupons() == []


def test_codes_are_normalised_unique_and_found_exactly(shop):
    api = client(shop)
    made = api.post("/coupons", json={"code": "CB-MixedCase", "amount": "5", "usage_limit": 1})
    assert made.status_code == 201 and made.json()["code"] == "cb-mixedcase" and made.json()["usage_limit"] == 1
    twin = api.post("/coupons", json={"code": "cb-MIXEDcase", "amount": "9"})
    assert (twin.status_code, twin.json()["code"]) == (400, "woocommerce_rest_coupon_code_already_exists")
    empty = api.post("/coupons", json={"code": "", "amount": "9"})
    assert (empty.status_code, empty.json()["code"]) == (400, "woocommerce_rest_empty_coupon_code")
    over = api.post("/coupons", json={"code": "CB-Y", "discount_type": "percent", "amount": "101"})
    assert (over.status_code, over.json()["code"]) == (400, "coupon_invalid_amount")
    not_email = api.post("/coupons", json={"code": "CB-Y", "email_restrictions": ["member at example"]})
    assert (not_email.status_code, not_email.json()["code"]) == (400, "coupon_invalid_email_address")
    bad_type = api.post("/coupons", json={"code": "CB-Y", "discount_type": "free_money"})
    assert (bad_type.status_code, bad_type.json()["code"]) == (400, "rest_invalid_param")
    api.post("/coupons", json={"code": "CB-Mixed", "amount": "1"})
    assert [c["code"] for c in api.get("/coupons", params={"code": "CB-MIXEDCASE"}).json()] == ["cb-mixedcase"]
    assert api.get("/coupons", params={"code": "CB-Mix"}).json() == []  # exact, not LIKE
    assert len(api.get("/coupons").json()) == 2


def test_a_trashed_coupon_is_not_found_and_its_code_is_free(shop):
    api = client(shop)
    first = api.post("/coupons", json={"code": "CB-T", "amount": "5"}).json()["id"]
    assert api.delete(f"/coupons/{first}").status_code == 200
    assert api.get("/coupons", params={"code": "CB-T"}).json() == []
    again = api.post("/coupons", json={"code": "CB-T", "amount": "5"})
    assert again.status_code == 201 and again.json()["id"] != first


def test_an_order_uses_a_coupon_once_and_only_for_its_email(shop):
    api = client(shop)
    api.post(
        "/coupons",
        json={"code": "CB-ONCE", "amount": "5", "usage_limit": 1, "usage_limit_per_user": 1,
              "email_restrictions": ["Member@Example.com"]},
    )  # fmt: skip
    other = order(shop, "CB-ONCE", "someone@example.com")
    assert (other.status_code, other.json()["code"]) == (400, "woocommerce_rest_invalid_coupon")
    assert other.json()["message"] == 'Please enter a valid email at checkout to use coupon code "cb-once".'
    used = order(shop, "cb-once", "MEMBER@example.com")  # any case, on both sides
    assert used.status_code == 201 and [c["code"] for c in used.json()["coupon_lines"]] == ["cb-once"]
    assert shop.coupon("CB-ONCE")["usage_count"] == 1 and shop.coupon("CB-ONCE")["used_by"] == ["member@example.com"]
    again = order(shop, "CB-ONCE", "member@example.com")
    assert (again.status_code, again.json()["message"]) == (400, 'Usage limit for coupon "cb-once" has been reached.')
    assert len(shop.orders) == 1  # refused orders are not made
    missing = order(shop, "CB-NONE", "member@example.com")
    assert missing.json()["message"] == 'Coupon "cb-none" does not exist!'


def test_wildcards_expiry_and_a_guests_own_limit(shop):
    api = client(shop)
    # site-local without an offset (the site runs in Asia/Shanghai, UTC+8): T0 + 1 h
    expires = (T0 + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%S")
    api.post(
        "/coupons",
        json={"code": "CB-TEAM", "amount": "5", "usage_limit_per_user": 1, "email_restrictions": ["*@corp.example"],
              "date_expires": expires},
    )  # fmt: skip
    assert order(shop, "CB-TEAM", "ann@corp.example").status_code == 201
    second = order(shop, "CB-TEAM", "ann@corp.example")  # a guest: her uses are counted by billing email
    assert second.json()["message"] == 'Usage limit for coupon "cb-team" has been reached.'
    assert order(shop, "CB-TEAM", "bob@corp.example").status_code == 201
    shop.advance(3601)
    late = order(shop, "CB-TEAM", "cy@corp.example")
    assert (late.status_code, late.json()["message"]) == (400, 'Coupon "cb-team" has expired.')


def test_only_date_expires_is_written_and_an_offset_is_read_exactly(shop):
    api = client(shop)
    gmt_only = api.post("/coupons", json={"code": "CB-GMT", "date_expires_gmt": "2026-11-01T09:00:00"}).json()
    assert gmt_only["date_expires_gmt"] is None  # WC_Coupon has no set_date_expires_gmt: dropped
    exact = api.post("/coupons", json={"code": "CB-UTC", "date_expires": "2026-11-01T09:00:00+00:00"}).json()
    assert (exact["date_expires_gmt"], exact["date_expires"]) == ("2026-11-01T09:00:00", "2026-11-01T17:00:00")
    local = api.post("/coupons", json={"code": "CB-LOCAL", "date_expires": "2026-11-01T09:00:00"}).json()
    assert local["date_expires_gmt"] == "2026-11-01T01:00:00"

"""Points redeemed for a coupon in a web shop, end to end over loopback: the adapter found by kind from its ``[shop]``
table makes the coupon for member A; the shop takes it once from A's order, refuses B's and a second one; a create
whose answer is lost is found on the retry and never made twice; the read-only key makes nothing; and no coupon code
shows in any exception or log line along the way."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from structlog.testing import capture_logs

from adapters.coupons import CouponIssuer, CouponSpec, CouponsUnavailable
from connector.core import plugins
from connector.core.http import RemoteError, outcome_unknown
from connector.core.settings import validate_table
from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox
from sandbox.shop.generic_coupons import GenericCouponApi

READ = ("ck_reader_0001", "cs_reader_0001")
WRITE = ("ck_coupons_0002", "cs_coupons_0002")
CODE = "CB-E2EWXYZ23456"


def redemption(code: str = CODE, email: str = "Alice@Example.com") -> CouponSpec:
    return CouponSpec(
        code=code,
        amount=Decimal("10.00"),
        type="fixed_cart",
        email=email,
        expires_at=datetime.now(UTC) + timedelta(days=30),
        description="CardBridge redemption r:forum:42",
    )


def shop_from_toml(text: str) -> CouponIssuer:
    table = tomllib.loads(text)["shop"]
    cls = plugins.adapter_class(plugins.SHOPS, table["kind"])
    adapter = cls(validate_table(cls.settings, table, "shop"))
    assert isinstance(adapter, CouponIssuer)
    return adapter


@pytest.fixture
def woo():
    sandbox = WooCommerceSandbox(consumer_key=READ[0], consumer_secret=READ[1])
    sandbox.add_key(*READ, "read")  # the reading key is Read only, as the README asks
    sandbox.add_key(*WRITE, "read_write")
    sandbox.product = sandbox.add_product("Steam 钱包充值卡 $20", "145.00")  # type: ignore[attr-defined]
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url  # type: ignore[attr-defined]
        yield sandbox


def woo_config(sandbox, coupon_key=WRITE) -> str:
    return f"""
[shop]
kind = "woocommerce"
base_url = "{sandbox.url}"
consumer_key = "{READ[0]}"
consumer_secret = "{READ[1]}"
coupon_consumer_key = "{coupon_key[0]}"
coupon_consumer_secret = "{coupon_key[1]}"
max_retry_seconds = 2
"""


def checkout(sandbox, code: str, email: str) -> httpx.Response:
    """A buyer's order with the coupon (WooCommerce REST ``POST /orders`` with ``coupon_lines``)."""
    body = {
        "status": "processing",
        "billing": {"email": email},
        "line_items": [{"product_id": sandbox.product, "quantity": 1}],
        "coupon_lines": [{"code": code}],
    }
    return httpx.post(f"{sandbox.url}/wp-json/wc/v3/orders", json=body, auth=WRITE)


def test_a_redeemed_coupon_works_once_for_its_member_only(woo):
    shop = shop_from_toml(woo_config(woo))
    seen: list[str] = []
    with capture_logs() as logs:
        coupon = shop.create_coupon(redemption())
        bob = checkout(woo, CODE, "bob@example.com")
        alice = checkout(woo, CODE.lower(), "alice@example.com")
        again = checkout(woo, CODE, "alice@example.com")
    assert (bob.status_code, bob.json()["code"]) == (400, "woocommerce_rest_invalid_coupon")
    assert alice.status_code == 201 and alice.json()["coupon_lines"][0]["code"] == CODE.lower()
    assert (again.status_code, again.json()["code"]) == (400, "woocommerce_rest_invalid_coupon")
    now = shop.find_coupon(CODE)
    assert now is not None and now.remote_id == coupon.remote_id and (now.used, now.usage_limit) == (1, 1)
    seen += [str(entry) for entry in logs]
    shop.close()  # type: ignore[attr-defined]
    assert not [text for text in seen if CODE.lower() in text.lower()]


def test_a_lost_answer_is_found_on_the_retry_and_never_made_twice(woo):
    shop = shop_from_toml(woo_config(woo))
    woo.knobs.add_fault(r"/wp-json/wc/v3/coupons$", kind="drop", method="POST")  # made, then the connection is cut
    with capture_logs() as logs:
        with pytest.raises(httpx.TransportError) as lost:
            shop.create_coupon(redemption())
        assert outcome_unknown(lost.value)  # delivery verifies before it sends again
        found = shop.find_coupon(CODE)  # the verification
        retried = shop.create_coupon(redemption())  # and a retry that did not verify first
    assert found is not None and retried.remote_id == found.remote_id
    assert len(woo.all_coupons()) == 1
    for text in [str(lost.value), repr(lost.value), *(str(entry) for entry in logs)]:
        assert CODE.lower() not in text.lower(), text
    shop.close()  # type: ignore[attr-defined]


def test_the_read_only_key_cannot_make_coupons(woo):
    shop = shop_from_toml(woo_config(woo, coupon_key=READ))
    with pytest.raises(CouponsUnavailable, match="coupon_consumer_key") as refused:
        shop.create_coupon(redemption())
    assert CODE.lower() not in str(refused.value).lower()
    assert woo.all_coupons() == []
    shop.close()  # type: ignore[attr-defined]


def test_a_rest_shop_coupon_from_the_readme_example():
    api = GenericCouponApi()
    with SandboxServer(api.app) as server:
        shop = shop_from_toml(
            f"""
[shop]
kind = "rest"
base_url = "{server.url}"
max_retry_seconds = 2
[shop.rest]
auth = {{ type = "bearer", token = "{api.token}" }}
orders = {{ path = "/api/orders" }}
status_map = {{ "1" = "paid" }}
fields = {{ id = "id", email = "email", status = "status", product_id = "goods_id", modified_at = "updated" }}
[shop.coupons]
create = {{ method = "POST", path = "/api/coupons", id_field = "data.id", body = {{ code = "{{code}}", amount = "{{amount}}", type = "{{type}}", email = "{{email}}", expires_at = "{{expires_at}}", note = "{{description}}", max_uses = 1 }} }}
find = {{ path = "/api/coupons/{{code}}", items = "data", amount_field = "amount", used_field = "used", limit_field = "max_uses" }}
"""
        )
        api.knobs.add_fault(r"^/api/coupons$", kind="status_after", method="POST", status=502)
        with pytest.raises(RemoteError) as lost:
            shop.create_coupon(redemption())
        assert outcome_unknown(lost.value) and CODE not in str(lost.value)
        coupon = shop.create_coupon(redemption())
        assert len(api.coupons) == 1 and coupon.usage_limit == 1
        redeem = f"{server.url}/api/coupons/{CODE}/redeem"
        headers = {"Authorization": f"Bearer {api.token}"}
        assert httpx.post(redeem, json={"email": "bob@example.com"}, headers=headers).status_code == 422
        assert httpx.post(redeem, json={"email": "alice@example.com"}, headers=headers).status_code == 200
        assert httpx.post(redeem, json={"email": "alice@example.com"}, headers=headers).status_code == 422
        shop.close()  # type: ignore[attr-defined]

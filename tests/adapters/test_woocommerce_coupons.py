"""WooCommerce coupons through the adapter, against the sandbox shop over loopback: what the coupon is made with, read
before create, a taken code read back (never a twin), the read-only key refused, and what ``cardbridge check`` says."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from adapters.coupons import CouponIssuer, CouponRefused, CouponSpec, CouponsUnavailable
from adapters.shops.woocommerce import WooCommerceSettings, WooCommerceShop
from connector.core.http import outcome_unknown
from connector.core.settings import validate_table
from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox
from sandbox.shop.keys import SHOP_MANAGER

READ_KEY, READ_SECRET = "ck_read_only", "cs_read_only"
WRITE_KEY, WRITE_SECRET = "ck_coupons_rw", "cs_coupons_rw"
CODE = "CB-ABCDEFGH2345"


def spec(code: str = CODE, email: str | None = "Member@Example.com") -> CouponSpec:
    return CouponSpec(
        code=code,
        amount=Decimal("5.00"),
        type="fixed_cart",
        email=email,
        expires_at=datetime(2027, 1, 31, 16, 0, tzinfo=UTC),
        description="CardBridge redemption r:forum:1",
    )


@pytest.fixture
def sandbox():
    shop = WooCommerceSandbox(consumer_key=READ_KEY, consumer_secret=READ_SECRET)
    shop.add_key(READ_KEY, READ_SECRET, "read")  # the reading key is Read only
    shop.add_key(WRITE_KEY, WRITE_SECRET, "read_write")
    with SandboxServer(shop.app) as server:
        shop.url = server.url  # type: ignore[attr-defined]
        yield shop


def adapter(sandbox, key=WRITE_KEY, secret=WRITE_SECRET, transport=None) -> WooCommerceShop:
    table = {
        "kind": "woocommerce",
        "base_url": sandbox.url,
        "consumer_key": READ_KEY,
        "consumer_secret": READ_SECRET,
        "coupon_consumer_key": key,
        "coupon_consumer_secret": secret,
        "max_retry_seconds": 2,
    }
    return WooCommerceShop(validate_table(WooCommerceSettings, table, "shop"), transport=transport)


def test_a_single_use_coupon_for_the_members_email(sandbox):
    shop = adapter(sandbox)
    assert isinstance(shop, CouponIssuer) and shop.coupons_ready() is None
    made = shop.create_coupon(spec())
    stored = sandbox.coupon(CODE)
    assert stored is not None and made.remote_id == str(stored["id"])
    assert stored["code"] == CODE.lower()  # WooCommerce lower-cases codes; CardBridge compares case-insensitively
    assert (stored["usage_limit"], stored["usage_limit_per_user"]) == (1, 1)
    assert stored["email_restrictions"] == ["member@example.com"]
    assert stored["date_expires_gmt"] == "2027-01-31T16:00:00"
    assert stored["discount_type"] == "fixed_cart" and stored["amount"] == "5.00"
    assert stored["individual_use"] is False
    assert made.amount == Decimal("5.00") and made.usage_limit == 1 and made.used == 0
    assert shop.find_coupon(CODE) == made
    shop.close()


def test_read_before_create_makes_no_second_coupon(sandbox):
    shop = adapter(sandbox)
    first = shop.create_coupon(spec())
    again = shop.create_coupon(spec())
    assert again.remote_id == first.remote_id
    assert len(sandbox.all_coupons()) == 1
    shop.close()


def test_a_code_taken_between_read_and_create_is_read_back(sandbox):
    """Another replica makes the coupon after our look-up: WooCommerce answers 400 ..._already_exists, and the
    adapter returns that coupon instead of failing or making a twin."""
    made: list[int] = []

    class Racing(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and not made:
                made.append(sandbox.add_coupon(CODE, amount="5.00", usage_limit=1, usage_limit_per_user=1))
            return self.inner.handle_request(request)

    shop = adapter(sandbox, transport=Racing())
    coupon = shop.create_coupon(spec())
    assert coupon.remote_id == str(made[0])
    assert len(sandbox.all_coupons()) == 1
    shop.close()


def test_a_trashed_coupon_is_not_found_and_its_code_is_free_again(sandbox):
    shop = adapter(sandbox)
    first = shop.create_coupon(spec())
    sandbox.trash_coupon(int(first.remote_id))
    assert shop.find_coupon(CODE) is None
    second = shop.create_coupon(spec())
    assert second.remote_id != first.remote_id
    shop.close()


def test_lost_answer_is_unsure_and_the_retry_finds_the_coupon(sandbox):
    sandbox.knobs.add_fault(r"/coupons$", kind="status_after", method="POST", status=502)
    shop = adapter(sandbox)
    with pytest.raises(Exception) as lost:
        shop.create_coupon(spec())
    assert outcome_unknown(lost.value)  # delivery verifies before resending
    found = shop.find_coupon(CODE)
    assert found is not None
    assert shop.create_coupon(spec()).remote_id == found.remote_id
    assert len(sandbox.all_coupons()) == 1
    shop.close()


def test_the_read_only_key_cannot_create(sandbox):
    shop = adapter(sandbox, key=READ_KEY, secret=READ_SECRET)
    with pytest.raises(CouponsUnavailable, match="woocommerce_rest_authentication_error") as refused:
        shop.create_coupon(spec())
    assert "coupon_consumer_key" in str(refused.value) and CODE not in str(refused.value)
    assert sandbox.all_coupons() == []
    shop.close()


def test_without_coupon_keys_the_shop_says_which_keys_to_set(sandbox):
    shop = adapter(sandbox, key="", secret="")
    reason = shop.coupons_ready()
    assert reason is not None and "shop.coupon_consumer_key" in reason and "Read/Write" in reason
    with pytest.raises(CouponsUnavailable):
        shop.find_coupon(CODE)
    assert not [r for r in sandbox.requests if "/coupons" in r["path"]]  # nothing was asked
    shop.close()


def test_check_proves_the_coupon_key_may_write_and_makes_nothing(sandbox):
    good = [c for c in adapter(sandbox).check() if c.what.startswith("coupon key")]
    assert len(good) == 1 and good[0].ok, good
    bad = [c for c in adapter(sandbox, READ_KEY, READ_SECRET).check() if c.what.startswith("coupon key")]
    assert len(bad) == 1 and not bad[0].ok
    assert "woocommerce_rest_authentication_error" in bad[0].detail and "Read/Write" in bad[0].fix
    assert sandbox.all_coupons() == []


def test_check_names_what_to_fix_for_a_user_without_coupon_rights_and_an_unknown_key(sandbox):
    sandbox.add_key("ck_no_coupons", "cs_no_coupons", "read_write", SHOP_MANAGER - {"read_private_shop_coupons"})
    [no_rights] = [c for c in adapter(sandbox, "ck_no_coupons", "cs_no_coupons").check() if c.what.startswith("coupon")]
    assert not no_rights.ok and "403 woocommerce_rest_cannot_view" in no_rights.detail
    assert "Shop manager" in no_rights.fix and "shop.coupon_consumer_key" in no_rights.fix
    [unknown] = [c for c in adapter(sandbox, "ck_typo", "cs_typo").check() if c.what.startswith("coupon")]
    assert not unknown.ok and "401 woocommerce_rest_cannot_view" in unknown.detail
    assert "cs_typo" not in unknown.detail + unknown.fix


def test_a_coupon_the_shop_refuses_is_a_permanent_refusal_with_its_code(sandbox):
    shop = adapter(sandbox)
    over = CouponSpec(CODE, Decimal("150"), "percent", "member@example.com", None, "CardBridge redemption r:forum:9")
    with pytest.raises(CouponRefused, match="HTTP 400 coupon_invalid_amount") as refused:
        shop.create_coupon(over)
    assert CODE.lower() not in str(refused.value).lower()
    assert sandbox.all_coupons() == []
    shop.close()

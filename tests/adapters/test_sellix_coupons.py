"""Sellix coupons through the adapter, against the Sellix sandbox over loopback: the create body (no email: Sellix
has no restriction), a look-up that walks the pages, read before create, a refused create read back, whole amounts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from adapters.coupons import CouponIssuer, CouponRefused, CouponSpec
from adapters.shops.sellix import SellixSettings, SellixShop
from adapters.shops.sellix_coupons import coupon_body
from connector.core.http import outcome_unknown
from connector.core.settings import validate_table
from sandbox.sellix import SellixSandbox
from sandbox.server import SandboxServer

CODE = "CB-QRSTUVWX2345"


def spec(code: str = CODE, amount: str = "5", kind: str = "fixed_cart") -> CouponSpec:
    return CouponSpec(
        code=code,
        amount=Decimal(amount),
        type=kind,  # type: ignore[arg-type]
        email="member@example.com",
        expires_at=datetime(2027, 1, 31, 16, 0, tzinfo=UTC),
        description="CardBridge redemption r:forum:2",
    )


@pytest.fixture
def sellix():
    sandbox = SellixSandbox()
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url  # type: ignore[attr-defined]
        yield sandbox


def adapter(sellix, transport=None) -> SellixShop:
    table = {"kind": "sellix", "api_key": sellix.api_key, "base_url": f"{sellix.url}/v1", "max_retry_seconds": 2}
    return SellixShop(validate_table(SellixSettings, table, "shop"), transport=transport)


def test_a_single_use_coupon_without_an_email(sellix):
    shop = adapter(sellix)
    assert isinstance(shop, CouponIssuer) and shop.coupons_ready() is None  # the same key writes
    made = shop.create_coupon(spec())
    stored = sellix.coupon(CODE)
    assert stored is not None and made.remote_id == stored["uniqid"]
    assert (stored["discount"], stored["discount_type"], stored["max_uses"]) == (5, "FIXED", 1)
    assert stored["expire_at"] == int(datetime(2027, 1, 31, 16, 0, tzinfo=UTC).timestamp())
    assert "member@example.com" not in str(coupon_body(spec()))  # Sellix has no email restriction to send it to
    assert coupon_body(spec(kind="percent"))["discount_type"] == "PERCENTAGE"
    shop.close()


def test_find_walks_the_pages_and_create_reads_first(sellix):
    shop = adapter(sellix)
    target = shop.create_coupon(spec())
    for i in range(45):  # newer coupons push ours to the third page
        sellix.add_coupon(f"CB-AAAAAAAA{i:04d}", max_uses=1)
    assert shop.find_coupon(CODE) == shop.find_coupon(CODE.lower()) is not None
    assert shop.find_coupon(CODE).remote_id == target.remote_id  # type: ignore[union-attr]
    assert shop.create_coupon(spec()).remote_id == target.remote_id
    assert len(sellix.coupons) == 46
    assert shop.find_coupon("CB-ZZZZZZZZ7777") is None
    shop.close()


def test_a_refused_create_is_read_back_before_it_is_called_permanent(sellix):
    made: list[str] = []

    class Racing(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and not made:  # another replica's create lands first
                other = adapter(sellix)
                made.append(other.create_coupon(spec()).remote_id)
                other.close()
            return self.inner.handle_request(request)

    shop = adapter(sellix, transport=Racing())
    assert shop.create_coupon(spec()).remote_id == made[0]
    assert len(sellix.coupons) == 1
    shop.close()


def test_an_amount_with_cents_is_refused_before_anything_is_sent(sellix):
    shop = adapter(sellix)
    with pytest.raises(CouponRefused, match="whole discount values"):
        shop.create_coupon(spec(amount="5.50"))
    assert sellix.coupons == {}
    shop.close()


def test_a_lost_answer_is_unsure_and_the_retry_finds_the_coupon(sellix):
    sellix.knobs.add_fault(r"/v1/coupons$", kind="status_after", method="POST", status=502)
    shop = adapter(sellix)
    with pytest.raises(Exception) as lost:
        shop.create_coupon(spec())
    assert outcome_unknown(lost.value)
    assert CODE not in str(lost.value)
    found = shop.find_coupon(CODE)
    assert found is not None and shop.create_coupon(spec()).remote_id == found.remote_id
    assert len(sellix.coupons) == 1
    shop.close()

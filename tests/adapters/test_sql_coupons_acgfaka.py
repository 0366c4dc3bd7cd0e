"""acg-faka coupons on a real MariaDB (the shop's own DDL): an amount or a whole percentage off any of the system's
commodities, made once, accepted by the shop's own order code exactly once, and no longer after its expiry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from adapters.coupons import Coupon, CouponRefused
from tests.adapters.test_sql_coupons import ShopDb, scratch, spec

CODE = "CB-2M8XQ4TA9KD3"
SHANGHAI = ZoneInfo("Asia/Shanghai")
SHANGHAI_NOW = "CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', '+08:00')"


@pytest.fixture
def acg() -> Iterator[ShopDb]:
    """A scratch acg-faka database (tests/fixtures/acgfaka/coupon.sql, prefix acg_) with two commodities: the
    system's (owner 0, 30.00) and a merchant's (分站, owner 1001)."""
    for db in scratch("acgfaka"):
        with db.engine.connect() as conn:
            for commodity_id, owner in ((1, 0), (2, 1001)):
                conn.execute(
                    text(
                        "INSERT INTO acg_commodity (id, category_id, name, price, owner, create_time, code) "
                        "VALUES (:id, 1, 'Steam 充值卡', 30, :owner, NOW(), :code)"
                    ),
                    {"id": commodity_id, "owner": owner, "code": f"C{commodity_id}"},
                )
        yield db


def shop_price(db: ShopDb, code: str, commodity_id: int, now: datetime | None = None) -> Decimal | None:
    """The unit price an order of one item pays with ``code`` (None: the coupon is refused), as acg-faka computes it
    in ``Order::valuation`` (lizhipay/acg-faka app/Service/Bind/Order.php:321-378): found by ``where code = ?``; the
    owner must be the commodity's (:328); ``commodity_id`` 0 or the commodity (:332); race and sku only bind a coupon
    for one commodity (:337, :342); ``category_id`` 0 or the commodity's (:359); ``status`` 0 (:363); ``expire_time``
    NULL or not past (:368, PHP's clock in Asia/Shanghai, kernel/Kernel.php:18); an amount at or above the price makes
    it free (:373); else the amount, or the price times the share, off (:377)."""
    voucher = next(iter(db.rows("SELECT * FROM acg_coupon WHERE code = :c LIMIT 1", c=code)), None)
    commodity = db.rows("SELECT * FROM acg_commodity WHERE id = :i", i=commodity_id)[0]
    if voucher is None or voucher.owner != commodity.owner:
        return None
    if voucher.commodity_id != 0 and voucher.commodity_id != commodity.id:
        return None
    if voucher.commodity_id == 0 and voucher.category_id != 0 and voucher.category_id != commodity.category_id:
        return None
    if voucher.status != 0:
        return None
    clock = now or datetime.now(UTC)
    if voucher.expire_time is not None and voucher.expire_time < clock.astimezone(SHANGHAI).replace(tzinfo=None):
        return None
    price = commodity.price
    if voucher.mode == 0 and voucher.money >= price:
        return Decimal("0")
    deduction = voucher.money if voucher.mode == 0 else (price * voucher.money).quantize(Decimal("0.01"))
    return price - deduction


def shop_uses(db: ShopDb, code: str) -> bool:
    """The order's transaction (app/Service/Bind/Order.php:948-963): the row locked by code, refused unless
    ``status`` is 0, then ``use_life + 1``, ``life - 1``, ``status = 1`` once ``life <= 0``."""
    with db.engine.begin() as conn:
        voucher = conn.execute(text("SELECT * FROM acg_coupon WHERE code = :c FOR UPDATE"), {"c": code}).first()
        if voucher is None or voucher.status != 0:
            return False
        life = voucher.life - 1
        conn.execute(
            text(
                f"UPDATE acg_coupon SET service_time = {SHANGHAI_NOW}, use_life = use_life + 1, life = :life, "
                "status = :status, trade_no = '24120112000000000001' WHERE id = :id"
            ),
            {"life": life, "status": 1 if life <= 0 else voucher.status, "id": voucher.id},
        )
    return True


def test_an_amount_off_is_made_once_and_taken_once_by_the_shop(acg):
    shop = acg.shop()
    made = shop.create_coupon(spec(CODE, "5"))
    assert made == Coupon(code=CODE, remote_id=made.remote_id, amount=Decimal("5.00"), usage_limit=1, used=0)
    assert shop.find_coupon(CODE.lower()) == made  # utf8mb4_general_ci (Install.sql:268), as the shop compares
    assert shop.create_coupon(spec(CODE, "5")).remote_id == made.remote_id
    rows = acg.rows("SELECT * FROM acg_coupon")
    assert len(rows) == 1
    row = rows[0]
    # what the admin's generator writes (app/Controller/Admin/Api/Coupon.php:352-367): any commodity of the system's
    assert (row.commodity_id, row.category_id, row.owner, row.status, row.life, row.use_life, row.mode) == (
        0,
        0,
        0,
        0,
        1,
        0,
        0,
    )
    assert row.note == "CardBridge redemption r:forum:123"[:32] and row.expire_time is None
    assert shop_price(acg, CODE, 1) == Decimal("25.00")
    assert shop_price(acg, CODE, 2) is None  # a merchant's commodity: the coupon is the system's (owner 0)
    assert shop_uses(acg, CODE)
    assert shop_price(acg, CODE, 1) is None and not shop_uses(acg, CODE)
    assert shop.find_coupon(CODE) == Coupon(
        code=CODE, remote_id=made.remote_id, amount=Decimal("5.00"), usage_limit=0, used=1
    )


def test_a_whole_percentage_is_the_shops_share_mode(acg):
    made = acg.shop().create_coupon(spec(CODE, "10", "percent"))
    assert made.amount == Decimal("10.00")
    row = acg.rows("SELECT mode, money FROM acg_coupon")[0]
    assert (row.mode, row.money) == (1, Decimal("0.10"))
    assert shop_price(acg, CODE, 1) == Decimal("27.00")  # 30 − 30 × 0.10


def test_the_expiry_is_written_in_the_shops_zone_and_ends_the_coupon(acg):
    expires = datetime(2031, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    acg.shop().create_coupon(spec(CODE, "5", expires_at=expires))
    assert acg.rows("SELECT expire_time FROM acg_coupon")[0].expire_time == datetime(2031, 6, 1, 12, 0)
    assert shop_price(acg, CODE, 1, now=expires - timedelta(minutes=1)) == Decimal("25.00")
    assert shop_price(acg, CODE, 1, now=expires + timedelta(minutes=1)) is None


@pytest.mark.parametrize(
    ("amount", "kind", "more"),
    [
        ("12.5", "percent", {}),  # money is decimal(10,2): 0.125 cannot be kept
        ("0", "percent", {}),
        ("101", "percent", {}),
        ("0.001", "fixed_cart", {}),
        ("5", "fixed_cart", {"expires_at": datetime(2020, 1, 1, tzinfo=UTC)}),  # the admin refuses a past expiry
    ],
)
def test_what_acgfaka_cannot_express_is_refused_and_nothing_is_written(acg, amount, kind, more):
    with pytest.raises(CouponRefused) as refused:
        acg.shop().create_coupon(spec(CODE, amount, kind, **more))
    assert CODE not in str(refused.value)
    assert acg.rows("SELECT * FROM acg_coupon") == []


def test_a_code_longer_than_the_column_is_refused_not_cut(acg):
    long = "CB-" + "X" * 30  # code is varchar(32) (Install.sql:268)
    with pytest.raises(CouponRefused):
        acg.shop().create_coupon(spec(long, "5"))
    assert acg.shop().find_coupon(long) is None
    assert acg.rows("SELECT * FROM acg_coupon") == []


def test_check_counts_the_commodities_that_show_the_coupon_field(acg):
    field = next(c for c in acg.shop().check() if c.what == "coupon field shown")
    assert not field.ok and "none of the system's 1 commodities" in field.detail  # the merchant's is not counted
    assert "优惠卷" in field.fix
    with acg.engine.connect() as conn:  # the admin turns the switch on (Install.sql:151)
        conn.execute(text("UPDATE acg_commodity SET coupon = 1 WHERE id = 1"))
    again = next(c for c in acg.shop().check() if c.what == "coupon field shown")
    assert again.ok and again.detail.startswith("1 of the system's 1 commodities")

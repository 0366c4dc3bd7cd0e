"""dujiaoka coupons on a real MariaDB (the shop's own DDL): made once, found by the shop's comparison, and accepted by
the shop's own validation exactly once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from adapters.coupons import Coupon, CouponRefused
from tests.adapters.test_sql_coupons import GOODS, ShopDb, scratch, spec

CODE = "CB-7K3Q9D2MXW4P"


@pytest.fixture
def dj() -> Iterator[ShopDb]:
    """A scratch dujiaoka database (tests/fixtures/dujiaoka/coupons.sql) and its users."""
    yield from scratch("dujiaoka")


def add_goods(db: ShopDb, *ids: int, deleted: bool = False) -> None:
    with db.engine.connect() as conn:
        for goods_id in ids:
            conn.execute(text(GOODS), {"id": goods_id})
            if deleted:
                conn.execute(text("UPDATE goods SET deleted_at = NOW() WHERE id = :id"), {"id": goods_id})


def shop_accepts(db: ShopDb, code: str, goods_id: int) -> bool:
    """What dujiaoka does with a ``coupon_code`` on an order for goods ``goods_id``, as SQL.

    ``CouponService::withHasGoods`` (assimon/dujiaoka app/Service/CouponService.php:29-34): Eloquent's ``whereHas``
    on the ``goods`` belongsToMany through ``coupons_goods`` (app/Models/Coupon.php:43-46), with the SoftDeletes scope
    of Goods (app/Models/Goods.php:12) and of Coupon (app/Models/Coupon.php:10), ``is_open = 1`` and ``coupon = ?``,
    ``first()``; then ``OrderService::validatorCoupon`` refuses none and ``ret <= 0`` (app/Service/OrderService.php:
    154-171)."""
    rows = db.rows(
        "SELECT * FROM `coupons` WHERE EXISTS (SELECT * FROM `goods` INNER JOIN `coupons_goods` ON `goods`.`id` = "
        "`coupons_goods`.`goods_id` WHERE `coupons`.`id` = `coupons_goods`.`coupons_id` AND `goods_id` = :gid AND "
        "`goods`.`deleted_at` IS NULL) AND `is_open` = 1 AND `coupon` = :code AND `coupons`.`deleted_at` IS NULL "
        "LIMIT 1",
        gid=goods_id,
        code=code,
    )
    return bool(rows) and rows[0].ret > 0


def shop_uses(db: ShopDb, code: str) -> None:
    """An order made with the coupon (app/Service/OrderProcessService.php:355-361): ``used()`` sets ``is_use = 2`` and
    ``retDecr()`` takes one from ``ret``, both by code (app/Service/CouponService.php:42-63; Eloquent adds
    ``updated_at`` and the SoftDeletes scope)."""
    with db.engine.connect() as conn:
        for change in ("`is_use` = 2", "`ret` = `ret` - 1"):
            conn.execute(
                text(
                    f"UPDATE `coupons` SET {change}, `updated_at` = NOW() WHERE `coupon` = :c AND `deleted_at` IS NULL"
                ),
                {"c": code},
            )


def test_a_coupon_is_made_once_for_every_goods_and_found_by_the_shops_comparison(dj):
    add_goods(dj, 1, 2)
    add_goods(dj, 3, deleted=True)
    shop = dj.shop()
    assert shop.find_coupon(CODE) is None
    made = shop.create_coupon(spec(CODE, "5"))
    assert made == Coupon(code=CODE, remote_id=made.remote_id, amount=Decimal("5.00"), usage_limit=1, used=None)
    # utf8_unicode_ci (install.sql:249): the shop finds the code in any case, and so does find_coupon
    assert shop.find_coupon(CODE.lower()) == made
    again = shop.create_coupon(spec(CODE, "5"))  # a retry whose first answer was lost
    assert again.remote_id == made.remote_id
    rows = dj.rows("SELECT * FROM coupons")
    assert len(rows) == 1
    row = rows[0]
    # what the admin form writes (app/Admin/Controllers/CouponController.php:107-111): 未使用, 启用, one use
    assert (row.discount, row.is_use, row.is_open, row.ret, row.deleted_at) == (Decimal("5.00"), 1, 1, 1, None)
    assert (
        row.created_at is not None
        and abs((row.created_at - shop.local(datetime.now().astimezone())).total_seconds()) < 120
    )
    bound = [
        r.goods_id
        for r in dj.rows("SELECT goods_id FROM coupons_goods WHERE coupons_id = :c ORDER BY goods_id", c=row.id)
    ]
    assert bound == [1, 2]  # every goods not deleted; the deleted one is not bound


def test_the_coupon_written_passes_the_shops_validation_once(dj):
    add_goods(dj, 1)
    shop = dj.shop()
    shop.create_coupon(spec(CODE, "12.50"))
    assert shop_accepts(dj, CODE, 1)
    assert shop_accepts(dj, CODE.lower(), 1)  # a buyer typing it in lower case
    assert not shop_accepts(dj, CODE, 2)  # goods the coupon is not bound to
    shop_uses(dj, CODE)
    assert not shop_accepts(dj, CODE, 1)  # ret is 0: "lack of available opportunities"
    assert shop.find_coupon(CODE).usage_limit == 0


def test_configured_goods_are_the_only_goods_the_coupon_is_valid_for(dj):
    add_goods(dj, 1, 2, 3)
    shop = dj.shop(coupon_goods=[2, 3])
    made = shop.create_coupon(spec(CODE, "5"))
    assert [shop_accepts(dj, CODE, g) for g in (1, 2, 3)] == [False, True, True]
    assert {
        r.goods_id for r in dj.rows("SELECT goods_id FROM coupons_goods WHERE coupons_id = :c", c=int(made.remote_id))
    } == {2, 3}
    goods = next(c for c in dj.shop(coupon_goods=[2, 9]).check() if c.what == "coupon goods")
    assert not goods.ok and "no goods 9" in goods.detail and "shop.coupon_goods" in goods.fix


@pytest.mark.parametrize(
    ("amount", "kind"), [("10", "percent"), ("0.005", "fixed_cart"), ("0", "fixed_cart"), ("100000000", "fixed_cart")]
)
def test_what_dujiaoka_cannot_express_is_refused_and_nothing_is_written(dj, amount: str, kind: str):
    add_goods(dj, 1)
    with pytest.raises(CouponRefused) as refused:
        dj.shop().create_coupon(spec(CODE, amount, kind))
    assert CODE not in str(refused.value)
    assert dj.rows("SELECT * FROM coupons") == [] and dj.rows("SELECT * FROM coupons_goods") == []


def test_two_replicas_making_the_same_coupon_at_once_make_one(dj):
    add_goods(dj, 1, 2)
    shops = [dj.shop(), dj.shop()]
    start = threading.Barrier(2)
    answers: list[Any] = [None, None]

    def make(n: int) -> None:
        start.wait()
        try:
            answers[n] = shops[n].create_coupon(spec(CODE, "5"))
        except Exception as error:  # the test's assertion shows it
            answers[n] = error

    threads = [threading.Thread(target=make, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(isinstance(a, Coupon) for a in answers), answers
    assert answers[0].remote_id == answers[1].remote_id
    assert len(dj.rows("SELECT * FROM coupons")) == 1
    assert len(dj.rows("SELECT * FROM coupons_goods")) == 2  # the loser's pivot rows were rolled back with it


def test_a_deleted_coupon_is_found_with_no_use_left_and_is_not_made_again(dj):
    add_goods(dj, 1)
    shop = dj.shop()
    made = shop.create_coupon(spec(CODE, "5"))
    with dj.engine.connect() as conn:  # the admin deletes it (SoftDeletes: deleted_at)
        conn.execute(text("UPDATE coupons SET deleted_at = NOW()"))
    found = shop.find_coupon(CODE)
    assert found is not None and found.remote_id == made.remote_id and found.usage_limit == 0
    assert shop.create_coupon(spec(CODE, "5")).remote_id == made.remote_id  # the unique key still holds the code
    assert len(dj.rows("SELECT * FROM coupons")) == 1

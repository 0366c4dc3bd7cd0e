"""独角数卡 dujiaoka coupons (优惠码): what a points redemption buys, written as the shop's own admin writes one.

The shop, as read (assimon/dujiaoka @ 9f5467a):

- Table ``coupons`` (database/sql/install.sql:244-256): ``discount`` decimal(10,2) 优惠金额, a **fixed amount** taken
  off the order's total (app/Service/OrderProcessService.php:229-236, :293-300); ``is_use`` 1 未使用 / 2 已使用;
  ``is_open`` 1 是 / 0 否; ``coupon`` varchar(150) ``utf8_unicode_ci`` with ``UNIQUE KEY idx_coupon`` (:249, :255);
  ``ret`` 剩余使用次数 (default 0!); ``created_at``, ``updated_at``, ``deleted_at`` (the model is soft-deleted,
  app/Models/Coupon.php:10). No expiry column, no email, no percentage.
- Bound to goods: ``coupons_goods`` (install.sql:264-269: ``goods_id``, ``coupons_id``). An order accepts a coupon
  only through it: ``withHasGoods`` (app/Service/CouponService.php:29-34) is ``whereHas('goods', goods_id = gid)``
  (a goods not soft-deleted, app/Models/Goods.php:12) ``AND is_open = 1 AND coupon = ?`` (and ``deleted_at IS NULL``),
  then ``ret <= 0`` is refused (app/Service/OrderService.php:154-171). ``is_use`` is not checked.
- Use: the order's creation sets ``is_use = 2`` and ``ret = ret - 1`` by code (OrderProcessService.php:356-361,
  CouponService.php:42-63); an order that expires unpaid gives the use back, ``ret + 1`` (app/Jobs/OrderExpired.php:60
  → app/Jobs/CouponBack.php:50-54), leaving ``is_use = 2``. So ``ret`` is the uses left and ``is_use`` says nothing.
- The admin form (app/Admin/Controllers/CouponController.php:96-113) sets goods, ``discount``, ``coupon``, ``ret``
  (default 1), ``is_use`` (default 1 未使用) and ``is_open`` (default 1); Eloquent adds the timestamps in the app's
  zone (config/app.php:70, PRC).

The buy page shows the coupon field on a goods that has a coupon bound (app/Http/Controllers/Home/HomeController.php:
69-70), so binding is also what offers the field.

Which goods: ``[shop] coupon_goods`` when set; otherwise every goods not soft-deleted when the coupon is made (a coupon
that buys points is meant for the whole shop, and a goods added later is not in the pivot: the README says so).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, text

from adapters.checks import Check, failed, passed
from adapters.coupons import Coupon, CouponRefused, CouponSpec, CouponsUnavailable
from adapters.shops.sql import SqlShop, unset
from adapters.shops.sql_coupons import GrantNeed, SqlCoupons, money
from connector.core.clock import utcnow

#: Goods one coupon is bound to at most (rows in ``coupons_goods``): beyond it, name them in ``coupon_goods``.
MAX_GOODS = 2000
READ = ("id", "coupon", "discount", "ret", "is_open", "deleted_at")
INSERTED = ("discount", "is_use", "is_open", "coupon", "ret", "created_at", "updated_at")
#: ``Coupon::STATUS_UNUSED`` (app/Models/Coupon.php:27) and ``BaseModel::STATUS_OPEN`` (app/Models/BaseModel.php:17).
UNUSED, OPEN = 1, 1


class DujiaokaCoupons(SqlCoupons):
    """The coupon side of :class:`~adapters.shops.dujiaoka.DujiaokaShop`. ``goods``: the goods ids a coupon is
    valid for (``[shop] coupon_goods``), or None for every goods not deleted at the time."""

    name = "coupons"
    code_column = "coupon"
    code_length = 150
    read_columns = READ
    needs = (
        GrantNeed("coupons", "SELECT", READ),
        GrantNeed("coupons", "INSERT", INSERTED),
        GrantNeed("coupons_goods", "INSERT", ("goods_id", "coupons_id")),
    )

    def __init__(self, shop: SqlShop, goods: Sequence[int] | None = None) -> None:
        super().__init__(shop)
        self.goods = sorted(set(goods)) if goods else None

    def refuse(self, spec: CouponSpec) -> None:
        if spec.type != "fixed_cart":
            raise CouponRefused("dujiaoka coupons take a fixed amount off (coupons.discount): no percentage")
        money(spec.amount, "coupons.discount")

    def insert(self, conn: Connection, spec: CouponSpec) -> None:
        goods = self.goods or self.all_goods()
        now = self.shop.local(utcnow())
        made = conn.execute(
            text(
                f"INSERT INTO {self.table} (`discount`, `is_use`, `is_open`, `coupon`, `ret`, `created_at`, "
                "`updated_at`) VALUES (:discount, :unused, :open, :code, 1, :now, :now)"
            ),
            {"discount": money(spec.amount, "discount"), "unused": UNUSED, "open": OPEN, "code": spec.code, "now": now},
        )
        coupon_id = made.lastrowid
        conn.execute(
            text(f"INSERT INTO {self.shop.table('coupons_goods')} (`goods_id`, `coupons_id`) VALUES (:goods, :coupon)"),
            [{"goods": goods_id, "coupon": coupon_id} for goods_id in goods],
        )

    def all_goods(self) -> list[int]:
        """Every goods not soft-deleted, read with the reading user (the writer may read the coupon table only)."""
        with self.shop.engine.connect() as conn:
            ids = [
                int(row[0])
                for row in conn.execute(
                    text(
                        f"SELECT `id` FROM {self.shop.table('goods')} WHERE `deleted_at` IS NULL ORDER BY `id` LIMIT :n"
                    ),
                    {"n": MAX_GOODS + 1},
                )
            ]
        if not ids:
            raise CouponsUnavailable("the shop has no goods a coupon could be bound to ([shop] coupon_goods)")
        if len(ids) > MAX_GOODS:
            raise CouponsUnavailable(f"more than {MAX_GOODS} goods: name the coupon's goods in [shop] coupon_goods")
        return ids

    def coupon(self, row: Any) -> Coupon:
        usable = unset(row.deleted_at) and self.shop.integer(row.is_open) == OPEN
        left = self.shop.integer(row.ret)
        return Coupon(
            code=str(row.coupon),
            remote_id=str(row.id),
            amount=row.discount,
            # what an order would still accept: a deleted or closed coupon, none (OrderService.php:154-171)
            usage_limit=max(left or 0, 0) if usable else 0,
            used=None,  # dujiaoka counts uses left only (``ret``), and gives one back when an order expires
        )

    def extra_checks(self, conn: Connection) -> Iterator[Check]:
        """Which goods a coupon will be valid for, read with the reading user (the writer may read coupons only)."""
        what = "coupon goods"
        goods = self.shop.table("goods")
        with self.shop.engine.connect() as reader:
            if self.goods is None:
                live = reader.execute(
                    text(f"SELECT COUNT(*) FROM (SELECT `id` FROM {goods} WHERE `deleted_at` IS NULL LIMIT :n) AS g"),
                    {"n": MAX_GOODS + 1},
                ).scalar()
            else:
                marks, values = self.shop.in_list(self.goods)
                found = {
                    int(row[0])
                    for row in reader.execute(
                        text(f"SELECT `id` FROM {goods} WHERE `id` IN ({marks}) AND `deleted_at` IS NULL"), values
                    )
                }
        if self.goods is not None:
            missing = [str(goods_id) for goods_id in self.goods if goods_id not in found]
            if missing:
                yield failed(what, f"no goods {', '.join(missing)} (or deleted)", "shop.coupon_goods: the goods ids")
            else:
                yield passed(what, f"goods {', '.join(map(str, self.goods))} (shop.coupon_goods)")
        elif not live:
            yield failed(what, "the shop has no goods: a coupon would be valid for none", "add goods to the shop")
        elif int(live) > MAX_GOODS:
            yield failed(what, f"more than {MAX_GOODS} goods", "name the coupon's goods in shop.coupon_goods")
        else:
            yield passed(
                what, f"every goods there when a coupon is made ({live} now); goods added later do not take it"
            )

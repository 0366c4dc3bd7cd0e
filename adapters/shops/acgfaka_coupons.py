"""异次元发卡 acg-faka coupons (优惠卷): what a points redemption buys, written as the shop's own admin writes one.

The shop, as read (lizhipay/acg-faka @ 574c3ff):

- Table ``coupon`` (kernel/Install/Install.sql:266-294, prefixed ``acg_``): ``code`` varchar(32)
  ``utf8mb4_general_ci`` with ``UNIQUE INDEX code`` (:268, :285); ``commodity_id`` (0: any commodity),
  ``category_id`` (0: any category), ``owner`` (0: the system, else the merchant 分站 whose commodities take it; not a
  buyer); ``create_time``; ``expire_time`` (NULL: never); ``money`` decimal(10,2) with ``mode`` 0 金额 (an amount off)
  or 1 百分比 (``money`` is the share taken off, 0 < money ≤ 1); ``status`` 0 未使用, 1 已使用, 2 锁定; ``life`` uses
  left (default 1) and ``use_life`` uses so far (:270-281); ``note`` varchar(32); ``race`` and ``sku`` (NULL: any).
- An order accepts it (app/Service/Bind/Order.php:321-378, the price; :1541-1605, the same checks for the amount
  shown): found ``where code = ?``; ``owner`` equal to the commodity's owner; ``commodity_id`` 0 or the commodity;
  ``category_id`` 0 or its category; ``status = 0``; ``expire_time`` NULL or not past (PHP's clock in Asia/Shanghai,
  kernel/Kernel.php:18). Only an order of **one** item gets the discount (:321 ``$num == 1``).
- Use (:948-963, in the order's transaction, the row locked): ``status != 0`` is refused; ``life - 1``,
  ``use_life + 1``, ``status = 1`` once ``life <= 0``, ``service_time`` and ``trade_no`` set.
- No email or buyer column: the code's secrecy is the protection.
- The admin's generator (app/Controller/Admin/Api/Coupon.php:252-391) refuses ``money <= 0``, ``mode`` 1 with
  ``money > 1``, a note over 32 characters and an expiry not in the future (:270-302), and writes ``code``,
  ``commodity_id``, ``category_id``, ``owner = 0``, ``create_time``, ``expire_time``, ``money``, ``status = 0``,
  ``note``, ``life``, ``mode``, ``sku`` (:352-367). CardBridge writes the same, for any commodity of the system's.
- The buyer sees a coupon field only on a commodity whose ``coupon`` switch is on (Install.sql:151;
  app/View/User/Theme/Cartoon/Index/Item.html:84): ``check`` counts them. The order code does not look at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from adapters.checks import Check, failed, passed
from adapters.coupons import Coupon, CouponRefused, CouponSpec
from adapters.shops.sql import unset
from adapters.shops.sql_coupons import GrantNeed, SqlCoupons, money
from connector.core.clock import utcnow

READ = ("id", "code", "money", "mode", "status", "life", "use_life", "expire_time")
INSERTED = (
    "code",
    "commodity_id",
    "category_id",
    "owner",
    "create_time",
    "expire_time",
    "money",
    "status",
    "note",
    "life",
    "mode",
    "sku",
)
#: ``mode``: an amount off, or a share of the price (Coupon.php:274-279 of the admin API).
AMOUNT, SHARE = 0, 1
#: ``status`` 0 未使用 (Install.sql:275).
UNUSED = 0
#: ``note`` is varchar(32) and the admin refuses longer (app/Controller/Admin/Api/Coupon.php:287).
NOTE_LENGTH = 32


class AcgFakaCoupons(SqlCoupons):
    """The coupon side of :class:`~adapters.shops.acgfaka.AcgFakaShop`: a coupon for any of the system's commodities
    (``commodity_id = 0``, ``category_id = 0``, ``owner = 0``), usable once (``life = 1``)."""

    name = "coupon"
    code_column = "code"
    code_length = 32
    read_columns = READ
    needs = (GrantNeed("coupon", "SELECT", READ), GrantNeed("coupon", "INSERT", INSERTED))

    def refuse(self, spec: CouponSpec) -> None:
        self.values(spec)
        if spec.expires_at is not None and spec.expires_at <= utcnow():
            raise CouponRefused("the expiry is not in the future (the admin refuses such a coupon too)")

    @staticmethod
    def values(spec: CouponSpec) -> tuple[int, Decimal]:
        """``mode`` and ``money`` for the spec: an amount as it is; a percentage as the share (10 → 0.10), which
        ``decimal(10,2)`` keeps in whole percents only."""
        if spec.type == "fixed_cart":
            return AMOUNT, money(spec.amount, "coupon.money")
        if not spec.amount.is_finite() or not Decimal(0) < spec.amount <= 100:
            raise CouponRefused("a percentage off must be above 0 and at most 100")
        return SHARE, money(spec.amount / 100, "a percentage off (whole percents only)")

    def insert(self, conn: Connection, spec: CouponSpec) -> None:
        mode, amount = self.values(spec)
        expires = self.shop.local(spec.expires_at) if spec.expires_at is not None else None
        conn.execute(
            text(
                f"INSERT INTO {self.table} (`code`, `commodity_id`, `category_id`, `owner`, `create_time`, "
                "`expire_time`, `money`, `status`, `note`, `life`, `mode`, `sku`) VALUES (:code, 0, 0, 0, :now, "
                ":expires, :money, :unused, :note, 1, :mode, '[]')"
            ),
            {
                "code": spec.code,
                "now": self.shop.local(utcnow()),
                "expires": expires,
                "money": amount,
                "unused": UNUSED,
                "note": spec.description[:NOTE_LENGTH],
                "mode": mode,
            },
        )

    def extra_checks(self, conn: Connection) -> Iterator[Check]:
        """How many of the system's commodities show the coupon field: the theme offers it only where the commodity's
        ``coupon`` switch is on (app/View/User/Theme/Cartoon/Index/Item.html:84; Install.sql:151, 0 关闭 / 1 启用).
        Read with the reading user."""
        what = "coupon field shown"
        try:
            with self.shop.engine.connect() as reader:
                row = reader.execute(
                    text(
                        f"SELECT COUNT(*) AS total, COALESCE(SUM(`coupon` = 1), 0) AS shown FROM "
                        f"{self.shop.table('commodity')} WHERE `owner` = 0"
                    )
                ).one()
        except DBAPIError:
            yield failed(what, "the commodity table has no coupon column", "check the shop's version and shop.kind")
            return
        total, shown = int(row.total), int(row.shown)
        if total and not shown:
            yield failed(
                what,
                f"none of the system's {total} commodities offers the coupon field: a coupon cannot be entered",
                "turn on 优惠卷 (coupon) in the settings of the commodities a coupon may buy",
            )
        else:
            yield passed(what, f"{shown} of the system's {total} commodities offer the coupon field")

    def coupon(self, row: Any) -> Coupon:
        mode = self.shop.integer(row.mode)
        amount = Decimal(row.money) * 100 if mode == SHARE else Decimal(row.money)
        if unset(row.expire_time):
            expired = False
        else:  # a date that is none (text) reads as past, as PHP's strtotime(…) === false < time() does
            expired = not isinstance(row.expire_time, datetime) or self.shop.utc(row.expire_time, "expire") < utcnow()
        usable = self.shop.integer(row.status) == UNUSED and not expired
        return Coupon(
            code=str(row.code),
            remote_id=str(row.id),
            amount=amount,
            usage_limit=max(self.shop.integer(row.life) or 0, 0) if usable else 0,
            used=self.shop.integer(row.use_life),
        )

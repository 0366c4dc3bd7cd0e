"""The shop side of points redemption (积分兑换): an optional capability of shop adapters that can make coupons.

A redemption is reserved in the ledger first; then delivery asks the shop for the coupon whose code CardBridge derived
from the redemption (``connector.core.redemption.coupon_code``): **read before
create**. ``find_coupon`` with the code finds a coupon an earlier, interrupted try made; only when it answers None is
``create_coupon`` called. A shop that rejects a code as taken (a race with another replica, or a try whose answer was
lost) is read again, never answered with a second coupon.

Writes need their own credentials (a WooCommerce key with write access, a database user allowed to insert into the
coupon table only); the reading credentials stay read-only. A shop adapter without them does not implement this
capability, or raises :class:`CouponsUnavailable` at construction of its coupon side; ``cardbridge check`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Generic, Literal, Protocol, TypeVar, runtime_checkable

#: ``fixed_cart``: an amount off the order; ``percent``: a percentage off.
CouponType = Literal["fixed_cart", "percent"]


@dataclass(frozen=True)
class CouponSpec:
    """The coupon one redemption buys. Nothing in it is personal but ``email`` (used by the shop, never logged)."""

    #: Derived from the redemption id (``CB-`` and 12 base-32 characters): the same redemption always asks for the
    #: same code, so a retry finds what an interrupted try made.
    code: str
    amount: Decimal
    type: CouponType
    #: The member's shop email: the coupon works for that buyer only where the shop can restrict it (WooCommerce
    #: ``email_restrictions``). None when the shop has no such restriction (the code's secrecy is the protection).
    email: str | None
    #: When the coupon stops working (None: never).
    expires_at: datetime | None
    #: A line for the shop's admin (e.g. ``CardBridge redemption r:forum:123``); no member data.
    description: str


@dataclass(frozen=True)
class Coupon:
    """A coupon as the shop has it now."""

    code: str
    #: The shop's own id of the coupon.
    remote_id: str
    amount: Decimal
    #: Uses left in total (None: the shop does not say, or no limit).
    usage_limit: int | None = None
    #: Times used so far (None: the shop does not say).
    used: int | None = None


class CouponRefused(Exception):
    """The shop refused to make the coupon and retrying the same request cannot help (a validation error). The
    message is the shop's own error code or status, never guessed wording."""


class CouponsUnavailable(Exception):
    """This shop cannot make coupons as configured (no write key, no write database user, no coupon route); the
    message names the config key to set."""


@runtime_checkable
class CouponIssuer(Protocol):
    """Optional: a shop adapter that makes single-use coupons (WooCommerce, Sellix, dujiaoka, acg-faka, a REST shop
    with ``[shop.coupons]``).

    Both calls go to the shop with the write credentials. Transient failures raise the usual HTTP/database errors
    (delivery retries them, within a bounded time, then parks the redemption); :class:`CouponRefused` is permanent.
    """

    def coupons_ready(self) -> str | None:
        """None when coupons can be made; otherwise why not, naming the key to set (for ``cardbridge check``)."""
        ...

    def find_coupon(self, code: str) -> Coupon | None:
        """The coupon with exactly this code (the shop's comparison, e.g. case-insensitive), or None."""
        ...

    def create_coupon(self, spec: CouponSpec) -> Coupon:
        """Make the coupon, usable once. A code the shop says exists already is read back and returned, not made
        again."""
        ...


Side = TypeVar("Side", bound=CouponIssuer)


class IssuesCoupons(Generic[Side]):
    """Mixed into a shop adapter whose coupon side is an object of its own (its own write key, client or engine):
    the :class:`CouponIssuer` methods, answered by :attr:`coupons`."""

    coupons: Side

    def coupons_ready(self) -> str | None:
        return self.coupons.coupons_ready()

    def find_coupon(self, code: str) -> Coupon | None:
        return self.coupons.find_coupon(code)

    def create_coupon(self, spec: CouponSpec) -> Coupon:
        return self.coupons.create_coupon(spec)

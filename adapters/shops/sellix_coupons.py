"""Sellix's side of points redemption: single-use coupons through ``POST /v1/coupons``, found by listing ``GET
/v1/coupons``.

From Sellix's API reference (docs.sellix.io, api-reference/coupons: ``post-coupons``, ``list-coupons``, ``model``):
the create body takes ``code`` and ``discount_value`` (required; an *integer*), ``discount_type`` (``PERCENTAGE`` or
``FIXED``), ``max_uses``, ``expire_at`` (a unix time) and ``products_bound``; the answer is the usual envelope. A
coupon is listed with ``uniqid``, ``code``, ``discount``, ``used`` and ``max_uses``; the list is paged by ``page``
and has no filter by code, so a look-up walks it (at most the shop's ``max_pages``).

What Sellix does not have, said plainly:

- **No email restriction.** A Sellix coupon works for whoever types its code: ``CouponSpec.email`` is not sent, and
  the code's secrecy (sent to the member privately, never logged) is the protection. ``max_uses = 1`` makes it
  single-use in all.
- **No separate write key.** Sellix API keys have no read-only scope: the shop's ``api_key`` makes coupons too, so
  there is nothing more to configure (:meth:`SellixCoupons.ready` is None).
- **No documented answer for a taken code.** Any refusal of a create is therefore read back by code before it is
  called permanent: a coupon with the code means an earlier try made it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.coupons import Coupon, CouponRefused, CouponSpec, CouponsUnavailable
from adapters.shops.coupon_secrecy import codes_hidden
from adapters.shops.paging import json_body
from connector.core.http import RemoteClient, RemoteError

REMOTE = "sellix"
#: CardBridge's coupon types → Sellix's ``discount_type``.
TYPES = {"fixed_cart": "FIXED", "percent": "PERCENTAGE"}


def parse_coupon(record: Any) -> Coupon | None:
    """A coupon as Sellix lists it; None for a record without a uniqid or code."""
    if not isinstance(record, dict):
        return None
    uniqid, code = record.get("uniqid"), record.get("code")
    if not isinstance(uniqid, str) or not uniqid or not isinstance(code, str):
        return None
    try:
        amount = Decimal(str(record.get("discount") if record.get("discount") is not None else "0"))
    except InvalidOperation:
        amount = Decimal(0)
    limit, used = record.get("max_uses"), record.get("used")
    return Coupon(
        code=code,
        remote_id=uniqid,
        amount=amount,
        usage_limit=limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None,
        used=used if isinstance(used, int) and not isinstance(used, bool) else None,
    )


def coupon_body(spec: CouponSpec) -> dict[str, Any]:
    """The create body. ``discount_value`` is an integer in Sellix's API: an amount with cents is refused here, before
    anything is sent, rather than rounded into another discount than the member paid points for."""
    if spec.amount != spec.amount.to_integral_value():
        raise CouponRefused(f"Sellix takes whole discount values (discount_value is an integer), not {spec.amount}")
    body: dict[str, Any] = {
        "code": spec.code,
        "discount_value": int(spec.amount),
        "discount_type": TYPES[spec.type],
        "max_uses": 1,
    }
    if spec.expires_at is not None:
        body["expire_at"] = int(spec.expires_at.astimezone(UTC).timestamp())
    return body


class SellixCoupons:
    """The coupon side of :class:`~adapters.shops.sellix.SellixShop`: its client, and its bounded page walk."""

    def __init__(self, client: RemoteClient, pages: Callable[[str, str], Iterator[list[Any]]]) -> None:
        self.client = client
        self.pages = pages

    def coupons_ready(self) -> str | None:
        return None  # the shop's api_key may write (Sellix keys have no read-only scope)

    def find_coupon(self, code: str) -> Coupon | None:
        wanted = code.casefold()  # Sellix's own comparison is not documented: a case-insensitive match is ours
        with codes_hidden(code):
            for records in self.pages("/coupons", "coupons"):
                for record in records:
                    coupon = parse_coupon(record)
                    if coupon is not None and coupon.code.casefold() == wanted:
                        return coupon
        return None

    def create_coupon(self, spec: CouponSpec) -> Coupon:
        found = self.find_coupon(spec.code)
        if found is not None:
            return found
        body = coupon_body(spec)
        try:
            with codes_hidden(spec.code):
                response = self.client.request("POST", "/coupons", json=body)
                answer = json_body(REMOTE, "/coupons", response)
        except RemoteError as error:
            if error.status >= 500 or error.status == 429:
                raise  # unsure after a POST: delivery verifies with find_coupon first
            if error.status in (401, 403):
                raise CouponsUnavailable(f"Sellix refused the key (HTTP {error.status}): check shop.api_key") from None
            again = self.find_coupon(spec.code)
            if again is not None:
                return again
            raise CouponRefused(f"Sellix answered HTTP {error.status}") from None
        envelope = answer if isinstance(answer, dict) else {}
        status = envelope.get("status")
        data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
        uniqid = data.get("uniqid") if isinstance(data, dict) else None
        if status == 200 and isinstance(uniqid, str) and uniqid:
            return Coupon(code=spec.code, remote_id=uniqid, amount=spec.amount, usage_limit=1, used=0)
        again = self.find_coupon(spec.code)  # an error envelope on HTTP 200, or no uniqid: what does the shop have?
        if again is not None:
            return again
        raise CouponRefused(f"Sellix answered status {status!r}")

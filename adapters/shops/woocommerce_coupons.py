"""WooCommerce's side of points redemption: single-use coupons through ``/wp-json/wc/v3/coupons``, with a second REST
key (Read/Write) so the reading key stays read-only.

How WooCommerce behaves (woocommerce/woocommerce @ 0379e4ee, plugins/woocommerce/…; the sandbox's copy is
``sandbox/shop/coupons.py``):

- **Codes are normalised**: ``wc_format_coupon_code()`` runs the ``woocommerce_coupon_code`` filters,
  ``html_entity_decode``, ``wc_sanitize_coupon_code`` and ``wc_strtolower`` (includes/wc-core-functions.php), so
  ``CB-ABC`` is stored and answered as ``cb-abc``. Comparisons here are case-insensitive.
- **Look-up**: ``GET /coupons?code=`` is ``wc_get_coupon_id_by_code()`` → ``post__in`` (Version2/
  class-wc-rest-coupons-v2-controller.php ``prepare_objects_query()``): an exact, case-insensitive match
  (``WC_Coupon_Data_Store_CPT::get_ids_by_code()``: ``LOWER(post_title) = LOWER(%s)``) among *published* coupons
  only. A trashed coupon is not found, and its code is free again.
- **Duplicates**: ``prepare_object_for_database()`` refuses a code ``wc_get_coupon_id_by_code()`` finds with
  ``400 woocommerce_rest_coupon_code_already_exists``; that answer is read back with ``?code=`` (a try whose answer
  was lost made it), never answered with a second coupon.
- **On use** (``WC_Discounts::is_coupon_valid()``, includes/class-wc-discounts.php; since 8.6 it includes
  ``validate_coupon_allowed_emails()``): ``usage_limit`` against ``usage_count``; ``usage_limit_per_user`` against
  the buyer's uses (by user id, or by billing email for a guest, ``WC_Abstract_Order::apply_coupon()``); the expiry;
  ``email_restrictions`` against the order's *billing email* and the logged-in user's email, lower-cased, ``*`` a
  wildcard (``DiscountsUtil::is_coupon_emails_allowed()``).

The coupon: ``usage_limit = 1`` and ``usage_limit_per_user = 1`` (one use in all), ``email_restrictions`` the
member's email, ``date_expires`` (with a UTC offset; see :func:`coupon_body`), and ``individual_use = false``: ``individual_use`` would remove every other
coupon from the cart (schema: "Other applied coupons will be removed from the cart"), so a member who redeemed twice
could not use both, and whether CardBridge's coupons stack with the shop's own promotions is decided by those
promotions' own ``individual_use``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from adapters.checks import Check, failed, passed
from adapters.coupons import Coupon, CouponRefused, CouponSpec, CouponsUnavailable
from adapters.shops.coupon_secrecy import COUPON_ATTEMPTS, codes_hidden
from adapters.shops.paging import json_body
from adapters.shops.remote_check import code_of, said, unreachable
from connector.core.http import RemoteClient, RemoteError

REMOTE = "woocommerce"
KEYS = "shop.coupon_consumer_key and shop.coupon_consumer_secret"
WHERE_KEYS = "WooCommerce > Settings > Advanced > REST API: Add key, Permissions Read/Write"
#: What a coupon look-up asks for (``_fields``): nothing personal (``email_restrictions``, ``used_by`` stay home).
FIELDS = "id,code,amount,usage_limit,usage_count,status"
#: ``prepare_object_for_database()``'s refusal of a taken code.
TAKEN = "woocommerce_rest_coupon_code_already_exists"


def parse_coupon(record: Any) -> Coupon | None:
    """A coupon from WooCommerce's answer; None when the record is not one (no id, no code, no readable amount)."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), int) or not isinstance(record.get("code"), str):
        return None
    try:
        amount = Decimal(str(record.get("amount") or "0"))
    except InvalidOperation:
        return None
    limit, used = record.get("usage_limit"), record.get("usage_count")
    return Coupon(
        code=record["code"],
        remote_id=str(record["id"]),
        amount=amount,
        usage_limit=limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
        used=used if isinstance(used, int) and not isinstance(used, bool) else None,
    )


def coupon_body(spec: CouponSpec) -> dict[str, Any]:
    """The ``POST /coupons`` body for one redemption (see the module docstring for each field)."""
    body: dict[str, Any] = {
        "code": spec.code,
        "discount_type": spec.type,
        "amount": str(spec.amount),
        "usage_limit": 1,
        "usage_limit_per_user": 1,
        "individual_use": False,
        "description": spec.description[:500],
    }
    if spec.email:
        body["email_restrictions"] = [spec.email.strip().lower()]
    if spec.expires_at is not None:
        # ``date_expires`` with its offset: the controller sets writable props through ``set_{key}`` when callable,
        # and WC_Coupon has ``set_date_expires`` but no ``set_date_expires_gmt``, so ``date_expires_gmt`` is dropped
        # without a word; ``WC_Data::set_date_prop()`` reads an ISO 8601 offset exactly (without one, the site's zone).
        body["date_expires"] = spec.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return body


class WooCommerceCoupons:
    """The coupon side of :class:`~adapters.shops.woocommerce.WooCommerceShop`, with its own key and client."""

    def __init__(
        self,
        api_url: str,
        key: str,
        secret: str,
        *,
        timeout: float,
        connect_timeout: float,
        max_retry_seconds: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url
        self.configured = bool(key and secret)
        self.client = RemoteClient(
            REMOTE,
            api_url,
            auth=(key, secret),
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retry_seconds=max_retry_seconds,
            keys="[shop]",
            attempts=COUPON_ATTEMPTS,
            transport=transport,
        )

    def coupons_ready(self) -> str | None:
        if self.configured:
            return None
        return f"set {KEYS} to a second REST API key with Read/Write permission ({WHERE_KEYS})"

    def _require(self) -> None:
        reason = self.coupons_ready()
        if reason is not None:
            raise CouponsUnavailable(reason)

    def find_coupon(self, code: str) -> Coupon | None:
        self._require()
        with codes_hidden(code):
            response = self.client.request("GET", "/coupons", params={"code": code, "_fields": FIELDS})
            body = json_body(REMOTE, "/coupons", response)
        records = body if isinstance(body, list) else []
        for record in records[:100]:  # ?code= answers one coupon at most; a shop that ignores it is not read whole
            coupon = parse_coupon(record)
            if coupon is not None and coupon.code.casefold() == code.casefold():
                return coupon
        return None

    def create_coupon(self, spec: CouponSpec) -> Coupon:
        found = self.find_coupon(spec.code)  # read before create (the seam's rule): an interrupted try may have made it
        if found is not None:
            return found
        try:
            with codes_hidden(spec.code):
                response = self.client.request("POST", "/coupons", json=coupon_body(spec))
                body = json_body(REMOTE, "/coupons", response)
        except RemoteError as error:
            if error.status >= 500 or error.status == 429:
                raise  # transient or unsure (UnsureStatus): delivery verifies with find_coupon before resending
            code = code_of(error)
            if code == TAKEN:
                again = self.find_coupon(spec.code)
                if again is not None:
                    return again
                raise CouponRefused(f"HTTP 400 {TAKEN}, and no published coupon has the code") from None
            if error.status in (401, 403):
                raise CouponsUnavailable(f"{said(error)}: set {KEYS} to a key with Read/Write permission") from None
            raise CouponRefused(f"HTTP {error.status} {code}".strip()) from None
        coupon = parse_coupon(body)
        if coupon is None:
            # Made, but the answer is unreadable: read it back rather than guess its id.
            again = self.find_coupon(spec.code)
            if again is None:
                raise CouponRefused("the shop answered the new coupon without an id or code")
            return again
        return coupon

    def check(self) -> Iterator[Check]:
        """``cardbridge check``: the coupon key may list coupons (``GET /coupons?per_page=1``, its user's
        ``read_private_shop_coupons``) and has write permission: ``POST /coupons`` with an empty body makes nothing
        (``code`` is a required argument: WordPress answers ``400 rest_missing_callback_param`` before any
        permission callback: ``WP_REST_Server::dispatch()`` validates arguments first), while a Read key is refused first with
        ``401 woocommerce_rest_authentication_error`` (``WC_REST_Authentication::check_permissions()``, run on
        ``rest_pre_dispatch``). Asked only when the coupon key is set."""
        what = "coupon key may make coupons"
        try:
            self.client.request("GET", "/coupons", params={"per_page": 1, "_fields": "id"})
        except httpx.TransportError as error:
            yield unreachable(what, error, self.api_url)
            return
        except RemoteError as error:
            if error.status == 403:  # a good key whose user lacks read_private_shop_coupons
                fix = f"make the coupon key for a Shop manager or Administrator ({WHERE_KEYS}), then set {KEYS}"
            else:
                fix = f"set {KEYS} to a key from {WHERE_KEYS}"
            yield failed(what, f"GET /coupons: {said(error)}", fix)
            return
        try:
            self.client.request("POST", "/coupons", json={})
        except httpx.TransportError as error:
            yield unreachable(what, error, self.api_url)
            return
        except RemoteError as error:
            if error.status == 400 and code_of(error) == "rest_missing_callback_param":
                yield passed(what, "the coupon key may list coupons and has write permission")
                return
            yield failed(what, f"POST /coupons: {said(error)}", f"give the coupon key Read/Write ({WHERE_KEYS})")
            return
        yield failed(
            what,
            "POST /coupons without a code was accepted: that is not how WooCommerce's coupon API answers",
            "check shop.base_url (the WordPress site root)",
        )

    def close(self) -> None:
        self.client.close()

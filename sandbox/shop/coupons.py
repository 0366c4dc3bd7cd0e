"""``/coupons`` as WooCommerce answers it, and ``POST /orders`` with ``coupon_lines``: how a buyer's order uses one.

Everything here follows woocommerce/woocommerce @ 0379e4ee (plugins/woocommerce/…) unless a line says otherwise:

- Routes and answers: includes/rest-api/Controllers/Version2/class-wc-rest-coupons-v2-controller.php (v3 extends it):
  ``get_formatted_item_data()`` is :func:`render_coupon`; a create answers ``201`` with the coupon
  (``WC_REST_CRUD_Controller::create_item()``).
- Who may: the list needs the key user's ``read_private_shop_coupons``, a create ``publish_shop_coupons``
  (``wc_rest_check_post_permissions( 'shop_coupon', 'read' | 'create' )``, includes/wc-rest-functions.php), refused
  with ``woocommerce_rest_cannot_view`` / ``woocommerce_rest_cannot_create``, 401 for a visitor (an unknown key), 403
  for a user without the capability. A key whose *permission* is Read is refused before any route with
  ``401 woocommerce_rest_authentication_error`` (:mod:`sandbox.shop.keys`).
- Argument validation runs before the permission callback (WordPress ≥ 5.6 wp-includes/rest-api/
  class-wp-rest-server.php: ``dispatch()`` calls ``has_valid_params()`` after matching the route and hands the error
  to ``respond_to_request()``, which skips the permission callback when there is one): a create
  without ``code`` is ``400 rest_missing_callback_param``, a ``discount_type`` outside ``wc_get_coupon_types()`` is
  ``400 rest_invalid_param``, whoever asks.
- The code: ``wc_format_coupon_code()`` = ``html_entity_decode``, ``wc_sanitize_coupon_code`` (kses; not imitated),
  ``wc_strtolower`` (includes/wc-core-functions.php). An empty one is ``400 woocommerce_rest_empty_coupon_code``;
  one that ``wc_get_coupon_id_by_code()`` finds is ``400 woocommerce_rest_coupon_code_already_exists``.
- The expiry is ``date_expires`` only (:meth:`Coupons.date_prop`): ``date_expires_gmt`` is in the schema but the
  controller sets props through ``set_{key}`` when callable, and ``WC_Coupon`` has no ``set_date_expires_gmt``.
- ``?code=``: ``prepare_objects_query()`` (Version3/class-wc-rest-coupons-controller.php @ 53cdfa9) →
  ``post__in = [ wc_get_coupon_id_by_code( code ) ]``; the data store's
  ``get_ids_by_code()`` (includes/data-stores/class-wc-coupon-data-store-cpt.php @ 0138905) matches
  ``LOWER(post_title) = LOWER(%s)`` among ``post_status = 'publish'`` coupons, newest first. A trashed coupon is
  found by neither, so its code may be taken again.
- Using a coupon, ``POST /orders`` with ``coupon_lines``: Version3/class-wc-rest-orders-controller.php
  ``calculate_coupons()`` checks each code with ``WC_Discounts::is_coupon_valid()`` and applies it with
  ``WC_Order::apply_coupon()``; a refusal is ``400 woocommerce_rest_invalid_coupon`` ("woocommerce_rest_" + the
  ``invalid_coupon`` WP_Error code) with ``WC_Coupon::get_coupon_error()``'s message. ``is_coupon_valid()`` (includes/
  class-wc-discounts.php @ 9fc9855, WooCommerce ≥ 8.6) checks, in order: the coupon exists (105), ``usage_limit``
  against ``usage_count`` (106), ``usage_limit_per_user`` against the customer's uses by user id (106), the expiry
  (107), and ``validate_coupon_allowed_emails()``: the order's billing email and the API user's email, sanitised and
  lower-cased, against ``email_restrictions`` with ``*`` as a wildcard (``DiscountsUtil::is_coupon_emails_allowed()``)
  (102). ``WC_Abstract_Order::apply_coupon()`` then checks a guest's uses by billing email (106). The sandbox's API
  users have no email of their own, so only the billing email can match (the real server also accepts the key
  user's own address). A refused order is not made.
- Uses are counted when an order with the coupon is pending, processing, completed or on-hold
  (``wc_update_coupon_usage_counts()`` on those ``woocommerce_order_status_*`` hooks, includes/wc-order-functions.php):
  ``usage_count`` + 1 and a ``_used_by`` entry (the customer id, else the billing email, lower-cased).
"""

from __future__ import annotations

import html
import re
import threading
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.shop.keys import ApiKey, credentials
from sandbox.shop.render import render_order
from sandbox.shop.rest import API, err, fields_of, invalid, list_response, paging, single_response
from sandbox.shop.state import Order, ShopState

_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(Z|[-+]\d{2}:\d{2})?$")
COUPON_TYPES = ("percent", "fixed_cart", "fixed_product")
#: Order statuses whose hooks count a coupon's use (``wc_update_coupon_usage_counts``).
COUNTED = ("pending", "processing", "completed", "on-hold")
#: ``WC_Coupon::get_coupon_error()`` (includes/class-wc-coupon.php @ 0430101), by error code; 102 is the variant for
#: a request without a ``billing_email`` form field (a REST order's JSON body is not ``$_POST``).
COUPON_ERRORS = {
    102: 'Please enter a valid email at checkout to use coupon code "{code}".',
    105: 'Coupon "{code}" does not exist!',
    106: 'Usage limit for coupon "{code}" has been reached.',
    107: 'Coupon "{code}" has expired.',
}
#: ``is_email()``'s shape, roughly: something, one @, a domain with a dot.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _offset(zone: str) -> int:
    """``iso8601_timezone_to_offset()``: ``Z`` is 0, ``+08:00`` is 28800 seconds."""
    if zone == "Z":
        return 0
    sign = -1 if zone[0] == "-" else 1
    return sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)


def format_code(value: str) -> str:
    """``wc_format_coupon_code()``: entities decoded, trimmed, lower-cased. ``wc_sanitize_coupon_code()``'s kses
    filtering of markup is not imitated (CardBridge's codes are letters, digits and a dash)."""
    return html.unescape(value).strip().lower()


def emails_allowed(emails: list[str], restrictions: list[str]) -> bool:
    """``DiscountsUtil::is_coupon_emails_allowed()``: a direct match, or the restriction as a regex with ``*`` →
    ``(.+)?`` (the rest unescaped, as WooCommerce builds it)."""
    for email in emails:
        if email in restrictions:
            return True
        for restriction in restrictions:
            try:
                if re.search("^" + restriction.replace("*", "(.+)?") + "$", email):
                    return True
            except re.error:  # preg_match on a broken pattern matches nothing
                continue
    return False


def render_coupon(shop: ShopState, c: dict[str, Any]) -> dict[str, Any]:
    """``get_formatted_item_data()``: the coupon's fields in WooCommerce's order, dates local and GMT, ``_links``."""
    created_local, created_gmt = shop.dates(c["created"])
    expires = c["date_expires"]
    expires_local, expires_gmt = shop.dates(expires) if expires is not None else (None, None)
    return {
        "id": c["id"],
        "code": c["code"],
        "amount": c["amount"],
        "status": c["status"],
        "date_created": created_local,
        "date_created_gmt": created_gmt,
        "date_modified": created_local,
        "date_modified_gmt": created_gmt,
        "discount_type": c["discount_type"],
        "description": c["description"],
        "date_expires": expires_local,
        "date_expires_gmt": expires_gmt,
        "usage_count": c["usage_count"],
        "individual_use": c["individual_use"],
        "product_ids": [],
        "excluded_product_ids": [],
        "usage_limit": c["usage_limit"] or None,
        "usage_limit_per_user": c["usage_limit_per_user"] or None,
        "limit_usage_to_x_items": None,
        "free_shipping": False,
        "product_categories": [],
        "excluded_product_categories": [],
        "exclude_sale_items": False,
        "minimum_amount": "0.00",
        "maximum_amount": "0.00",
        "email_restrictions": list(c["email_restrictions"]),
        "used_by": list(c["used_by"]),
        "meta_data": [],
        "_links": {
            "self": [{"href": f"https://shop.example.com{API}/coupons/{c['id']}"}],
            "collection": [{"href": f"https://shop.example.com{API}/coupons"}],
        },
    }


class Coupons:
    """The coupons of one shop and their routes. ``keys`` is the sandbox's key table (the permission callbacks need
    the key's user)."""

    def __init__(self, shop: ShopState, keys: dict[str, ApiKey]) -> None:
        self.shop = shop
        self.keys = keys
        self.lock: threading.RLock = shop.lock
        #: By id. Each: code, amount, discount_type, status (publish / trash), usage_limit, usage_limit_per_user,
        #: usage_count, used_by, email_restrictions, date_expires (unix seconds or None), description, created.
        self.coupons: dict[int, dict[str, Any]] = {}
        self._next_id = 700

    # ---- the data store ----------------------------------------------------------------------------------------

    def id_by_code(self, code: str) -> int:
        """``wc_get_coupon_id_by_code()``: the newest published coupon with the code, case-insensitively; 0 if none."""
        wanted = format_code(code)
        found = [c for c in self.coupons.values() if c["status"] == "publish" and c["code"].lower() == wanted]
        return max(found, key=lambda c: (c["created"], c["id"]))["id"] if found else 0

    def add(self, code: str, amount: str = "5", discount_type: str = "fixed_cart", **fields: Any) -> int:
        """Make a coupon directly (wp-admin), no checks."""
        with self.lock:
            self._next_id += 1
            self.coupons[self._next_id] = {
                "id": self._next_id,
                "code": format_code(code),
                "amount": amount,
                "discount_type": discount_type,
                "status": "publish",
                "usage_limit": None,
                "usage_limit_per_user": None,
                "usage_count": 0,
                "used_by": [],
                "email_restrictions": [],
                "date_expires": None,
                "description": "",
                "individual_use": False,
                "created": self.shop.stamp(),
                **fields,
            }
            return self._next_id

    def date_prop(self, value: Any) -> int | None:
        """``WC_Data::set_date_prop()`` (includes/abstracts/abstract-wc-data.php @ 026770b): a number is a UTC
        timestamp; ``YYYY-MM-DDTHH:MM:SS`` with ``Z`` or ``±HH:MM`` is exact, without one it is site-local; anything
        unreadable leaves the prop unset (the exception is swallowed). ``date_expires_gmt`` never gets here: the
        controller calls ``set_date_expires_gmt``, which ``WC_Coupon`` does not have, so it is dropped."""
        if value in (None, "", 0, "0000-00-00 00:00:00"):
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
        if not isinstance(value, str):
            return None
        match = _ISO.match(value)
        try:
            if match:
                moment = datetime.fromisoformat(match.group(1))
                zone = match.group(2)
                if zone:
                    return int(moment.replace(tzinfo=UTC).timestamp()) - _offset(zone)
                return int(moment.replace(tzinfo=self.shop.tz).timestamp())
            return int(datetime.fromisoformat(value).replace(tzinfo=self.shop.tz).timestamp())
        except ValueError:
            return None

    # ---- HTTP ----------------------------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{API}/coupons", self.index, methods=["GET", "POST"]),
            Route(f"{API}/coupons/{{id:int}}", self.one, methods=["GET", "DELETE"]),
            Route(f"{API}/orders", self.create_order, methods=["POST"]),
        ]

    def _denied(self, request: Request, capability: str, code: str, message: str) -> JSONResponse | None:
        """The permission callback: a visitor is 401, a user without ``capability`` 403."""
        key, _ = credentials(request)
        found = self.keys.get(key or "")
        if found is None:
            return err(401, code, message)
        if capability not in found.capabilities:
            return err(403, code, message)
        return None

    async def index(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.create(request)
        denied = self._denied(request, "read_private_shop_coupons", "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")  # fmt: skip
        if denied is not None:
            return denied
        pages = paging(request)
        if isinstance(pages, Response):
            return pages
        page, per_page, offset = pages
        with self.lock:
            listed = [c for c in self.coupons.values() if c["status"] != "trash"]
            code = request.query_params.get("code")
            if code:
                wanted = self.id_by_code(code)
                listed = [c for c in listed if c["id"] == wanted]
            listed.sort(key=lambda c: (c["created"], c["id"]), reverse=True)
            chosen = listed[offset : offset + per_page]
            fields = fields_of(request, self.shop.honour_fields)
            rendered = [render_coupon(self.shop, c) for c in chosen]
        return list_response(request, rendered, len(listed), page, per_page, fields)

    async def create(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return err(400, "rest_invalid_json", "Invalid JSON body passed.")
        if not isinstance(body, dict):
            body = {}
        if "code" not in body:  # argument validation first (the module docstring)
            return err(400, "rest_missing_callback_param", "Missing parameter(s): code", params=["code"])
        discount_type = body.get("discount_type", "fixed_cart")
        if discount_type not in COUPON_TYPES:
            return invalid("discount_type", f"discount_type is not one of {', '.join(COUPON_TYPES)}.")
        denied = self._denied(request, "publish_shop_coupons", "woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources.")  # fmt: skip
        if denied is not None:
            return denied
        code = format_code(str(body.get("code") or ""))
        if not code:
            return err(400, "woocommerce_rest_empty_coupon_code", "The coupon code cannot be empty.")
        # The setters' own refusals (WC_Coupon::set_amount(), set_email_restrictions()): a WC_Data_Exception, which
        # WC_REST_CRUD_Controller::create_item() answers as a WP_Error with its code and status 400.
        try:
            amount = Decimal(str(body.get("amount", "0") or "0"))
        except (InvalidOperation, ValueError, TypeError):
            amount = Decimal(0)  # wc_format_decimal() of something not numeric: 0
        if amount < 0 or (discount_type == "percent" and amount > 100):
            return err(400, "coupon_invalid_amount", "Invalid discount amount.")
        emails = [str(e).strip().lower() for e in body.get("email_restrictions") or [] if str(e).strip()]
        if any(not _EMAIL.match(email) for email in emails):
            return err(400, "coupon_invalid_email_address", "Invalid email address restriction.")
        expires_at = self.date_prop(body.get("date_expires"))
        with self.lock:
            if self.id_by_code(code):
                return err(400, "woocommerce_rest_coupon_code_already_exists", "The coupon code already exists")
            coupon_id = self.add(
                code,
                amount=f"{amount:.2f}",
                discount_type=discount_type,
                usage_limit=int(body.get("usage_limit") or 0) or None,
                usage_limit_per_user=int(body.get("usage_limit_per_user") or 0) or None,
                email_restrictions=emails,
                date_expires=expires_at,
                description=str(body.get("description") or ""),
                individual_use=bool(body.get("individual_use")),
            )
            rendered = render_coupon(self.shop, self.coupons[coupon_id])
        response = single_response(rendered, fields_of(request, self.shop.honour_fields))
        response.status_code = 201
        return response

    async def one(self, request: Request) -> Response:
        denied = self._denied(request, "read_private_shop_coupons", "woocommerce_rest_cannot_view", "Sorry, you cannot view this resource.")  # fmt: skip
        if denied is not None:
            return denied
        with self.lock:
            coupon = self.coupons.get(request.path_params["id"])
            if coupon is None:
                return err(404, "woocommerce_rest_shop_coupon_invalid_id", "Invalid ID.")
            before = render_coupon(self.shop, coupon)
            if request.method == "DELETE":
                if request.query_params.get("force", "false").lower() in ("true", "1"):
                    del self.coupons[coupon["id"]]
                elif coupon["status"] == "trash":
                    return err(410, "woocommerce_rest_already_trashed", "The coupon has already been deleted.")
                else:
                    coupon["status"] = "trash"
        return single_response(before, fields_of(request, self.shop.honour_fields))

    async def create_order(self, request: Request) -> Response:
        """``POST /orders``: an order as a buyer's checkout makes it, with its coupons checked and counted."""
        try:
            body = await request.json()
        except ValueError:
            return err(400, "rest_invalid_json", "Invalid JSON body passed.")
        body = body if isinstance(body, dict) else {}
        billing = body.get("billing")
        email = str((billing if isinstance(billing, dict) else {}).get("email") or "").strip().lower()
        customer_id = int(body.get("customer_id") or 0)
        status = str(body.get("status") or "pending")
        with self.lock:
            applied: list[dict[str, Any]] = []
            for line in body.get("coupon_lines") or []:
                if not isinstance(line, dict) or not line.get("code"):
                    return err(400, "woocommerce_rest_invalid_coupon", "Coupon code is required.")
                code = format_code(str(line["code"]))
                refusal = self._refusal(code, email, customer_id)
                if refusal is not None:
                    return err(400, "woocommerce_rest_invalid_coupon", COUPON_ERRORS[refusal].format(code=code))
                applied.append(self.coupons[self.id_by_code(code)])
            items = [(int(i["product_id"]), int(i.get("quantity") or 1)) for i in body.get("line_items") or []]
            order_id = self.shop.take_id("order")
            stamp = self.shop.stamp()
            order = Order(
                id=order_id, customer_id=customer_id, email=email, first_name="", last_name="", status=status,
                items=items, created=stamp, modified=stamp, phone="", address="", city="", ip="127.0.0.1",
                transaction_id="", payment=("", ""), secrets=["" for _ in range(len(items) + 1)],
            )  # fmt: skip
            order.coupon_lines = [
                {"id": order_id * 10 + 9, "code": c["code"], "discount": c["amount"], "discount_tax": "0.00"}
                for c in applied
            ]
            self.shop.add_order(order)
            if status in COUNTED:
                for coupon in applied:
                    coupon["usage_count"] += 1
                    coupon["used_by"].append(str(customer_id) if customer_id else email)
            rendered = render_order(self.shop, order)
        response = single_response(rendered, None)
        response.status_code = 201
        return response

    def _refusal(self, code: str, email: str, customer_id: int) -> int | None:
        """``is_coupon_valid()`` then ``apply_coupon()``'s guest check: the ``WC_Coupon`` error code, or None."""
        coupon_id = self.id_by_code(code)
        if not coupon_id:
            return 105
        c = self.coupons[coupon_id]
        if c["usage_limit"] and c["usage_count"] >= c["usage_limit"]:
            return 106
        per_user = c["usage_limit_per_user"]
        if per_user and customer_id and c["used_by"].count(str(customer_id)) >= per_user:
            return 106
        if c["date_expires"] is not None and self.shop.stamp() > c["date_expires"]:
            return 107
        if c["email_restrictions"] and not emails_allowed([email] if email else [], c["email_restrictions"]):
            return 102
        if per_user and not customer_id and c["used_by"].count(email) >= per_user:
            return 106
        return None

"""A WooCommerce-shaped shop on loopback: REST API v3 orders, customers, products and product reviews.

Built from ``shared/specs/shops/woocommerce`` (docs and sample payloads): Basic auth with the consumer key and secret
(or the query parameters), the documented 401/400/404 bodies, ``page``/``per_page`` (1..100)/``offset``,
``X-WP-Total``/``X-WP-TotalPages``/``Link`` headers, ``modified_after``/``modified_before``/``after``/``before``
with ``dates_are_gmt``, ``orderby`` including ``modified``. The site runs in Asia/Shanghai, so site-local and GMT
dates differ as they do in a real 卡盟 shop.

Orders carry what a real order carries and the connector must never keep: addresses, phone, payment method and
transaction id, the buyer's IP, and card secrets (卡密) in order and line-item meta data. Orders are stored compactly
and rendered per request, with a sorted (modified, id) index, so 100,000 orders page quickly.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import html
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.faults import FaultInjector, Knobs

API = "/wp-json/wc/v3"
STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash")
ORDERBY = ("date", "id", "include", "title", "slug", "modified")


def _err(status: int, code: str, message: str, **data: Any) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": {"status": status, **data}}, status_code=status)


def _invalid(param: str, reason: str) -> JSONResponse:
    return _err(400, "rest_invalid_param", f"Invalid parameter(s): {param}", params={param: reason}, details={})


@dataclass
class _Order:
    id: int
    customer_id: int
    email: str
    first_name: str
    last_name: str
    status: str
    items: list[tuple[int, int]]
    created: int  # unix seconds, UTC
    modified: int
    phone: str
    address: str
    city: str
    ip: str
    transaction_id: str
    payment: tuple[str, str]
    secrets: list[str] = field(default_factory=list)
    raw_status: str | None = None  # set by corrupt_order: answered verbatim


class WooCommerceSandbox:
    """The shop's state and its HTTP app (``.app``)."""

    def __init__(
        self,
        consumer_key: str = "ck_sandbox",
        consumer_secret: str = "cs_sandbox",
        knobs: Knobs | None = None,
        timezone_name: str = "Asia/Shanghai",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.knobs = knobs or Knobs()
        self.tz = ZoneInfo(timezone_name)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._rng = random.Random(20261125)
        self.products: dict[int, dict[str, Any]] = {}
        self.customers: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, _Order] = {}
        self.reviews: dict[int, dict[str, Any]] = {}
        self._by_modified: list[tuple[int, int]] = []
        self._next_ids = {"product": 10, "customer": 100, "order": 1000, "review": 500}
        self.requests: list[dict[str, Any]] = []
        self.app = FaultInjector(self._build_app(), self.knobs)

    # ---- mutation API --------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def _stamp(self) -> int:
        return int(self.now().timestamp())

    def _id(self, kind: str) -> int:
        self._next_ids[kind] += 1
        return self._next_ids[kind]

    def add_product(self, name: str, price: str = "10.00", category: str = "游戏点卡") -> int:
        with self._lock:
            product_id = self._id("product")
            slug = f"product-{product_id}"
            self.products[product_id] = {
                "id": product_id,
                "name": name,
                "slug": slug,
                "price": price,
                "permalink": f"https://shop.example.com/product/{slug}/",
                "categories": [{"id": 15, "name": category, "slug": "cat"}],
                "type": "simple",
                "status": "publish",
            }
            return product_id

    def add_customer(self, email: str, first_name: str = "", last_name: str = "", username: str | None = None) -> int:
        with self._lock:
            customer_id = self._id("customer")
            stamp = self._stamp()
            self.customers[customer_id] = {
                "id": customer_id,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "username": username or email.split("@")[0],
                "created": stamp,
                "modified": stamp,
            }
            return customer_id

    def add_order(
        self,
        customer_id: int = 0,
        email: str | None = None,
        items: Iterable[tuple[int, int]] = (),
        status: str = "processing",
        modified: datetime | None = None,
        first_name: str = "张",
        last_name: str = "伟",
    ) -> int:
        with self._lock:
            if email is None:
                email = self.customers[customer_id]["email"]
            order_id = self._id("order")
            stamp = int(modified.timestamp()) if modified else self._stamp()
            rng = self._rng
            items = list(items)
            secrets = [f"KM-{rng.getrandbits(64):016X}" for _ in range(len(items) + 1)]
            order = _Order(
                id=order_id,
                customer_id=customer_id,
                email=email,
                first_name=first_name,
                last_name=last_name,
                status=status,
                items=items,
                created=stamp,
                modified=stamp,
                phone=f"138{rng.randrange(10**8):08d}",
                address=f"朝阳区建国路{rng.randrange(1, 999)}号",
                city="北京",
                ip=f"10.{rng.randrange(255)}.{rng.randrange(255)}.{rng.randrange(255)}",
                transaction_id=f"4200{rng.getrandbits(60):018d}"[:28],
                payment=rng.choice([("alipay", "支付宝"), ("wxpay", "微信支付"), ("stripe", "Credit Card (Stripe)")]),
                secrets=secrets,
            )
            self.orders[order_id] = order
            bisect.insort(self._by_modified, (stamp, order_id))
            return order_id

    def _touch(self, order: _Order, stamp: int | None = None) -> None:
        self._by_modified.remove((order.modified, order.id))
        order.modified = max(stamp if stamp is not None else self._stamp(), order.modified)
        bisect.insort(self._by_modified, (order.modified, order.id))

    def set_status(self, order_id: int, status: str) -> None:
        """Change an order's status as wp-admin does (a refund, a completion): ``date_modified`` moves to now."""
        with self._lock:
            order = self.orders[order_id]
            order.status = status
            order.raw_status = None
            self._touch(order)

    def corrupt_order(self, order_id: int, status: str) -> None:
        """Make an order answer a status no adapter knows (a plugin's custom status), for quarantine tests."""
        with self._lock:
            order = self.orders[order_id]
            order.raw_status = status
            self._touch(order)

    def add_review(
        self,
        product_id: int,
        reviewer: str,
        reviewer_email: str,
        rating: int,
        text: str,
        verified: bool | None = None,
        status: str = "approved",
    ) -> int:
        with self._lock:
            review_id = self._id("review")
            stamp = self._stamp()
            if verified is None:
                verified = any(
                    o.email.strip().lower() == reviewer_email.strip().lower()
                    and o.status in ("processing", "completed")
                    and any(p == product_id for p, _ in o.items)
                    for o in self.orders.values()
                )
            self.reviews[review_id] = {
                "id": review_id,
                "product_id": product_id,
                "reviewer": reviewer,
                "reviewer_email": reviewer_email,
                "rating": rating,
                "review": text,
                "verified": verified,
                "status": status,
                "created": stamp,
            }
            return review_id

    def edit_review(
        self, review_id: int, text: str | None = None, status: str | None = None, rating: int | None = None
    ) -> None:
        with self._lock:
            review = self.reviews[review_id]
            if text is not None:
                review["review"] = text
            if status is not None:
                review["status"] = status
            if rating is not None:
                review["rating"] = rating

    def delete_review(self, review_id: int) -> None:
        with self._lock:
            self.reviews.pop(review_id, None)

    def order(self, order_id: int) -> dict[str, Any]:
        with self._lock:
            return self._render_order(self.orders[order_id])

    def secrets(self) -> list[str]:
        """Every card secret (卡密) the shop has delivered: none may ever appear in the connector's state or logs."""
        with self._lock:
            return [s for o in self.orders.values() for s in o.secrets]

    # ---- rendering -----------------------------------------------------------------------------------------------

    def _dates(self, stamp: int) -> tuple[str, str]:
        moment = datetime.fromtimestamp(stamp, UTC)
        return moment.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M:%S"), moment.strftime("%Y-%m-%dT%H:%M:%S")

    def _render_order(self, o: _Order) -> dict[str, Any]:
        created_local, created_gmt = self._dates(o.created)
        modified_local, modified_gmt = self._dates(o.modified)
        paid = o.status in ("processing", "completed", "refunded")
        lines, total = [], 0.0
        for index, (product_id, quantity) in enumerate(o.items):
            product = self.products.get(product_id, {"name": f"Product {product_id}", "price": "10.00"})
            line_total = float(product["price"]) * quantity
            total += line_total
            lines.append(
                {
                    "id": o.id * 10 + index,
                    "name": product["name"],
                    "product_id": product_id,
                    "variation_id": 0,
                    "quantity": quantity,
                    "tax_class": "",
                    "subtotal": f"{line_total:.2f}",
                    "subtotal_tax": "0.00",
                    "total": f"{line_total:.2f}",
                    "total_tax": "0.00",
                    "taxes": [],
                    "meta_data": [{"id": o.id * 100 + index, "key": "_license_key", "value": o.secrets[index]}],
                    "sku": f"SKU-{product_id}",
                    "price": float(product["price"]),
                }
            )
        address = {
            "first_name": o.first_name,
            "last_name": o.last_name,
            "company": "",
            "address_1": o.address,
            "address_2": "",
            "city": o.city,
            "state": "BJ",
            "postcode": "100020",
            "country": "CN",
        }
        return {
            "id": o.id,
            "parent_id": 0,
            "number": str(o.id),
            "order_key": f"wc_order_{hashlib.md5(str(o.id).encode()).hexdigest()[:13]}",
            "created_via": "checkout",
            "version": "9.4.0",
            "status": o.raw_status or o.status,
            "currency": "CNY",
            "date_created": created_local,
            "date_created_gmt": created_gmt,
            "date_modified": modified_local,
            "date_modified_gmt": modified_gmt,
            "discount_total": "0.00",
            "discount_tax": "0.00",
            "shipping_total": "0.00",
            "shipping_tax": "0.00",
            "cart_tax": "0.00",
            "total": f"{total:.2f}",
            "total_tax": "0.00",
            "prices_include_tax": False,
            "customer_id": o.customer_id,
            "customer_ip_address": o.ip,
            "customer_user_agent": "Mozilla/5.0",
            "customer_note": "",
            "billing": {**address, "email": o.email, "phone": o.phone},
            "shipping": address,
            "payment_method": o.payment[0],
            "payment_method_title": o.payment[1],
            "transaction_id": o.transaction_id,
            "date_paid": created_local if paid else None,
            "date_paid_gmt": created_gmt if paid else None,
            "date_completed": modified_local if o.status == "completed" else None,
            "date_completed_gmt": modified_gmt if o.status == "completed" else None,
            "cart_hash": "",
            "meta_data": [{"id": o.id * 100 + 99, "key": "_kami_delivered", "value": o.secrets[-1]}],
            "line_items": lines,
            "tax_lines": [],
            "shipping_lines": [],
            "fee_lines": [],
            "coupon_lines": [],
            "refunds": [],
            "_links": {
                "self": [{"href": f"https://shop.example.com{API}/orders/{o.id}"}],
                "collection": [{"href": f"https://shop.example.com{API}/orders"}],
            },
        }

    def _render_customer(self, c: dict[str, Any]) -> dict[str, Any]:
        created_local, created_gmt = self._dates(c["created"])
        modified_local, modified_gmt = self._dates(c["modified"])
        billing = {
            "first_name": c["first_name"],
            "last_name": c["last_name"],
            "company": "",
            "address_1": "浦东新区世纪大道100号",
            "address_2": "",
            "city": "上海",
            "state": "SH",
            "postcode": "200120",
            "country": "CN",
            "email": c["email"],
            "phone": "13900000000",
        }
        return {
            "id": c["id"],
            "date_created": created_local,
            "date_created_gmt": created_gmt,
            "date_modified": modified_local,
            "date_modified_gmt": modified_gmt,
            "email": c["email"],
            "first_name": c["first_name"],
            "last_name": c["last_name"],
            "role": "customer",
            "username": c["username"],
            "billing": billing,
            "shipping": {k: v for k, v in billing.items() if k not in ("email", "phone")},
            "is_paying_customer": True,
            "avatar_url": "https://secure.gravatar.com/avatar/?s=96",
            "meta_data": [],
        }

    def _render_review(self, r: dict[str, Any]) -> dict[str, Any]:
        local, gmt = self._dates(r["created"])
        return {
            "id": r["id"],
            "date_created": local,
            "date_created_gmt": gmt,
            "product_id": r["product_id"],
            "status": r["status"],
            "reviewer": r["reviewer"],
            "reviewer_email": r["reviewer_email"],
            # WordPress stores comment text sanitised: what the member typed comes back as escaped HTML.
            "review": f"<p>{html.escape(r['review'])}</p>\n",
            "rating": r["rating"],
            "verified": r["verified"],
            "reviewer_avatar_urls": {"24": "https://secure.gravatar.com/avatar/?s=24"},
        }

    # ---- HTTP ----------------------------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        routes = [
            Route(f"{API}/orders", self._orders, methods=["GET"]),
            Route(f"{API}/orders/{{id:int}}", self._order, methods=["GET", "PUT"]),
            Route(f"{API}/customers", self._customers, methods=["GET"]),
            Route(f"{API}/customers/{{id:int}}", self._customer, methods=["GET"]),
            Route(f"{API}/products/reviews", self._reviews, methods=["GET"]),
            Route(f"{API}/products", self._products, methods=["GET"]),
            Route(f"{API}/products/{{id:int}}", self._product, methods=["GET"]),
        ]
        app = Starlette(routes=routes)

        async def no_route(request: Request, exc: Exception) -> Response:
            return _err(404, "rest_no_route", "No route was found matching the URL and request method.")

        app.add_exception_handler(404, no_route)  # type: ignore[arg-type]
        app.add_exception_handler(405, no_route)  # type: ignore[arg-type]
        outer = self

        async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                request = Request(scope)
                with outer._lock:
                    outer.requests.append(
                        {"method": request.method, "path": request.url.path, "query": dict(request.query_params)}
                    )
                denied = outer._auth(request)
                if denied is not None:
                    await denied(scope, receive, send)
                    return
            await app(scope, receive, send)

        return guarded  # type: ignore[return-value]

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def _auth(self, request: Request) -> Response | None:
        key = request.query_params.get("consumer_key")
        secret = request.query_params.get("consumer_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                key, _, secret = base64.b64decode(header[6:]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                key = secret = None
        if not key:
            return _err(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        if key != self.consumer_key:
            return _err(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if secret != self.consumer_secret:
            return _err(
                401, "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match."
            )
        return None

    def _paging(self, request: Request) -> tuple[int, int, int] | Response:
        params = request.query_params
        try:
            per_page = int(params.get("per_page", "10"))
        except ValueError:
            return _invalid("per_page", "per_page is not of type integer.")
        if not 1 <= per_page <= 100:
            return _invalid("per_page", "per_page must be between 1 (inclusive) and 100 (inclusive)")
        try:
            page = int(params.get("page", "1"))
            offset = int(params["offset"]) if "offset" in params else (page - 1) * per_page
        except ValueError:
            return _invalid("page", "page is not of type integer.")
        if page < 1:
            return _invalid("page", "page must be greater than or equal to 1")
        return page, per_page, offset

    def _list_response(self, request: Request, items: list[Any], total: int, page: int, per_page: int) -> Response:
        pages = (total + per_page - 1) // per_page if total else 0
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        base = str(request.url.replace(query="")).replace("http://", "http://", 1)
        query = dict(request.query_params)
        links = []
        if page > 1 and pages:
            links.append(f'<{base}?{urlencode({**query, "page": min(page - 1, pages)})}>; rel="prev"')
        if page < pages:
            links.append(f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return JSONResponse(items, headers=headers)

    def _bound(self, request: Request, name: str) -> int | Response | None:
        value = request.query_params.get(name)
        if not value:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return _invalid(name, "Invalid date.")
        if moment.tzinfo is None:
            gmt = request.query_params.get("dates_are_gmt", "false").lower() in ("true", "1")
            moment = moment.replace(tzinfo=UTC if gmt else self.tz)
        return int(moment.timestamp())

    async def _orders(self, request: Request) -> Response:
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        page, per_page, offset = paging
        params = request.query_params
        orderby = params.get("orderby", "date")
        if orderby not in ORDERBY:
            return _invalid("orderby", f"orderby is not one of {', '.join(ORDERBY)}.")
        order = params.get("order", "desc")
        if order not in ("asc", "desc"):
            return _invalid("order", "order is not one of asc and desc.")
        bounds = {}
        for name in ("modified_after", "modified_before", "after", "before"):
            bound = self._bound(request, name)
            if isinstance(bound, Response):
                return bound
            bounds[name] = bound
        statuses = [s for s in params.get("status", "any").split(",") if s]
        customer = params.get("customer")
        include = {int(i) for i in params.get("include", "").split(",") if i.strip().isdigit()}
        exclude = {int(i) for i in params.get("exclude", "").split(",") if i.strip().isdigit()}
        with self._lock:
            index = self._by_modified
            lo, hi = 0, len(index)
            if bounds["modified_after"] is not None:
                lo = bisect.bisect_right(index, (bounds["modified_after"], float("inf")))
            if bounds["modified_before"] is not None:
                hi = bisect.bisect_left(index, (bounds["modified_before"], -1))
            simple = (
                orderby == "modified"
                and statuses in ([], ["any"])
                and not customer
                and not include
                and not exclude
                and bounds["after"] is None
                and bounds["before"] is None
            )
            if simple:
                total = max(0, hi - lo)
                if order == "asc":
                    window = index[lo + offset : min(hi, lo + offset + per_page)]
                else:
                    end = hi - offset
                    window = index[max(lo, end - per_page) : max(lo, end)][::-1]
                selected = [self.orders[order_id] for _, order_id in window]
            else:
                candidates = [self.orders[order_id] for _, order_id in index[lo:hi]]
                if statuses not in ([], ["any"]):
                    candidates = [o for o in candidates if (o.raw_status or o.status) in statuses]
                if customer:
                    candidates = [o for o in candidates if o.customer_id == int(customer)]
                if include:
                    candidates = [o for o in candidates if o.id in include]
                if exclude:
                    candidates = [o for o in candidates if o.id not in exclude]
                if bounds["after"] is not None:
                    candidates = [o for o in candidates if o.created > bounds["after"]]
                if bounds["before"] is not None:
                    candidates = [o for o in candidates if o.created < bounds["before"]]
                key = {"modified": lambda o: (o.modified, o.id), "date": lambda o: (o.created, o.id)}.get(
                    orderby, lambda o: (o.id,)
                )
                candidates.sort(key=key, reverse=order == "desc")
                total = len(candidates)
                selected = candidates[offset : offset + per_page]
            rendered = [self._render_order(o) for o in selected]
        return self._list_response(request, rendered, total, page, per_page)

    async def _order(self, request: Request) -> Response:
        order_id = request.path_params["id"]
        if order_id not in self.orders:
            return _err(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        if request.method == "PUT":
            body = await request.json()
            if "status" in body:
                if body["status"] not in STATUSES:
                    return _invalid("status", f"status is not one of {', '.join(STATUSES)}.")
                self.set_status(order_id, body["status"])
        return JSONResponse(self.order(order_id))

    async def _customers(self, request: Request) -> Response:
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        page, per_page, offset = paging
        params = request.query_params
        orderby = params.get("orderby", "name")
        if orderby not in ("id", "include", "name", "registered_date"):
            return _invalid("orderby", "orderby is not one of id, include, name and registered_date.")
        include = [int(i) for i in params.get("include", "").split(",") if i.strip().isdigit()]
        exclude = {int(i) for i in params.get("exclude", "").split(",") if i.strip().isdigit()}
        email = params.get("email", "").strip().lower()
        with self._lock:
            customers = list(self.customers.values())
            if include:
                customers = [c for c in customers if c["id"] in set(include)]
            if exclude:
                customers = [c for c in customers if c["id"] not in exclude]
            if email:
                customers = [c for c in customers if c["email"].lower() == email]
            key = {
                "id": lambda c: c["id"],
                "registered_date": lambda c: (c["created"], c["id"]),
                "include": lambda c: include.index(c["id"]) if c["id"] in include else c["id"],
            }.get(orderby, lambda c: (f"{c['first_name']} {c['last_name']}".lower(), c["id"]))
            customers.sort(key=key, reverse=params.get("order", "asc") == "desc")
            total = len(customers)
            rendered = [self._render_customer(c) for c in customers[offset : offset + per_page]]
        return self._list_response(request, rendered, total, page, per_page)

    async def _customer(self, request: Request) -> Response:
        customer = self.customers.get(request.path_params["id"])
        if customer is None:
            return _err(404, "woocommerce_rest_invalid_id", "Invalid resource ID.")
        return JSONResponse(self._render_customer(customer))

    async def _products(self, request: Request) -> Response:
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        page, per_page, offset = paging
        include = {int(i) for i in request.query_params.get("include", "").split(",") if i.strip().isdigit()}
        with self._lock:
            products = sorted(self.products.values(), key=lambda p: p["id"])
            if include:
                products = [p for p in products if p["id"] in include]
            return self._list_response(
                request, [dict(p) for p in products[offset : offset + per_page]], len(products), page, per_page
            )

    async def _product(self, request: Request) -> Response:
        product = self.products.get(request.path_params["id"])
        if product is None:
            return _err(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return JSONResponse(dict(product))

    async def _reviews(self, request: Request) -> Response:
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        page, per_page, offset = paging
        params = request.query_params
        after = self._bound(request, "after")
        if isinstance(after, Response):
            return after
        with self._lock:
            reviews = [
                r
                for r in self.reviews.values()
                if r["status"] == params.get("status", "approved") or params.get("status") == "all"
            ]
            if params.get("product"):
                reviews = [r for r in reviews if r["product_id"] == int(params["product"])]
            if params.get("reviewer_email"):
                reviews = [r for r in reviews if r["reviewer_email"].lower() == params["reviewer_email"].lower()]
            if after is not None:
                reviews = [r for r in reviews if r["created"] > after]
            orderby = params.get("orderby", "date_gmt")
            key = (lambda r: r["id"]) if orderby == "id" else (lambda r: (r["created"], r["id"]))
            reviews.sort(key=key, reverse=params.get("order", "desc") == "desc")
            total = len(reviews)
            rendered = [self._render_review(r) for r in reviews[offset : offset + per_page]]
        return self._list_response(request, rendered, total, page, per_page)

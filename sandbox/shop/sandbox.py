"""``WooCommerceSandbox``: the shop's state, its HTTP app (``.app``) and the mutation API tests, the demo and the
benchmarks use to stock it: products, customers, orders (each delivering card secrets), status changes, the trash and
deletion, reviews."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.faults import FaultInjector, Knobs
from sandbox.forward import Forwarded
from sandbox.shop.catalogue import Catalogue
from sandbox.shop.coupons import Coupons, render_coupon
from sandbox.shop.keys import SHOP_MANAGER, ApiKey, Permission, refused
from sandbox.shop.orders import Orders
from sandbox.shop.render import render_order
from sandbox.shop.rest import API, err, fields_of, single_response
from sandbox.shop.state import Order, ShopState


class WooCommerceSandbox:
    """The shop's state and its HTTP app (``.app``)."""

    tz = Forwarded[ZoneInfo]("state")
    products = Forwarded[dict[int, dict[str, Any]]]("state")
    customers = Forwarded[dict[int, dict[str, Any]]]("state")
    orders = Forwarded[dict[int, Order]]("state")
    reviews = Forwarded[dict[int, dict[str, Any]]]("state")
    #: False: the site ignores ``_fields`` (WordPress before 4.8) and answers every field.
    honour_fields = Forwarded[bool]("state")

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
        #: The shop's REST API keys by consumer key: the one given (Read/Write, a Shop manager's) and any ``add_key``.
        self.keys: dict[str, ApiKey] = {consumer_key: ApiKey(consumer_key, consumer_secret)}
        #: False: Settings > Permalinks is "Plain", so ``/wp-json/`` is no route and WordPress answers its HTML 404
        #: page (the API is then only at ``/?rest_route=``, which the sandbox does not serve).
        self.pretty_permalinks = True
        #: False: the WooCommerce plugin is deactivated; WordPress answers ``/wp-json/wc/v3…`` with its own
        #: ``404 rest_no_route`` (``WP_REST_Server::dispatch()``: no route matches).
        self.woocommerce_active = True
        self.knobs = knobs or Knobs()
        self.state = ShopState(tz=ZoneInfo(timezone_name), clock=clock or (lambda: datetime.now(UTC)))
        self._lock = self.state.lock
        #: Every request: ``{"method", "path", "query"}``.
        self.requests: list[dict[str, Any]] = []
        #: ``/coupons`` and ``POST /orders`` with ``coupon_lines`` (:mod:`sandbox.shop.coupons`).
        self.coupon_book = Coupons(self.state, self.keys)
        self.app = FaultInjector(self._build_app(), self.knobs)

    # ---- mutation API --------------------------------------------------------------------------------------------

    def add_key(
        self,
        consumer_key: str,
        consumer_secret: str,
        permissions: Permission = "read",
        capabilities: frozenset[str] = SHOP_MANAGER,
    ) -> ApiKey:
        """Add a REST API key (WooCommerce > Settings > Advanced > REST API > Add key): its permission, and the
        capabilities of the user it is made for (``sandbox.shop.keys.CUSTOMER``: a user who may read none of the
        lists; ``SHOP_MANAGER - {"list_users"}``: one who may not list customers)."""
        key = ApiKey(consumer_key, consumer_secret, permissions, frozenset(capabilities))
        with self._lock:
            self.keys[consumer_key] = key
        return key

    def now(self) -> datetime:
        return self.state.now()

    def add_product(self, name: str, price: str = "10.00", category: str = "游戏点卡") -> int:
        with self._lock:
            product_id = self.state.take_id("product")
            slug = f"product-{product_id}"
            self.state.products[product_id] = {
                "id": product_id,
                "name": name,
                "slug": slug,
                "price": price,
                "regular_price": price,
                "permalink": f"https://shop.example.com/product/{slug}/",
                # WooCommerce's defaults for a new product: stock not managed, in stock
                "manage_stock": False,
                "stock_quantity": None,
                "stock_status": "instock",
                "categories": [{"id": 15, "name": category, "slug": "cat"}],
                "type": "simple",
                "status": "publish",
            }
            return product_id

    def set_price(self, product_id: int, price: str) -> None:
        """The merchant edits the price (a sale's price is the ``price`` the REST API answers)."""
        with self._lock:
            self.state.products[product_id]["price"] = price

    def set_stock(self, product_id: int, quantity: int | None, status: str | None = None) -> None:
        """The merchant sets the stock: a count (stock managed; WooCommerce derives the status from it) or, with
        ``quantity`` None, just the status (``instock``, ``outofstock``, ``onbackorder``)."""
        with self._lock:
            product = self.state.products[product_id]
            product["manage_stock"] = quantity is not None
            product["stock_quantity"] = quantity
            product["stock_status"] = status or ("instock" if quantity and quantity > 0 else "outofstock")

    def add_customer(self, email: str, first_name: str = "", last_name: str = "", username: str | None = None) -> int:
        with self._lock:
            customer_id = self.state.take_id("customer")
            stamp = self.state.stamp()
            self.state.customers[customer_id] = {
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
                email = self.state.customers[customer_id]["email"]
            order_id = self.state.take_id("order")
            stamp = int(modified.timestamp()) if modified else self.state.stamp()
            rng = self.state.rng
            items = list(items)
            secrets = [f"KM-{rng.getrandbits(64):016X}" for _ in range(len(items) + 1)]
            self.state.add_order(
                Order(
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
                    payment=rng.choice(
                        [("alipay", "支付宝"), ("wxpay", "微信支付"), ("stripe", "Credit Card (Stripe)")]
                    ),
                    secrets=secrets,
                )
            )
            return order_id

    def set_status(self, order_id: int, status: str) -> None:
        """Change an order's status as wp-admin does (a refund, a completion): ``date_modified`` moves to now."""
        with self._lock:
            self.state.set_status(order_id, status)

    def trash_order(self, order_id: int) -> None:
        """Move an order to the trash (wp-admin "Trash", or ``DELETE /orders/{id}``): lists stop showing it."""
        with self._lock:
            self.state.trash(order_id)

    def untrash_order(self, order_id: int) -> None:
        """Restore a trashed order (wp-admin "Restore") to the status it had before."""
        with self._lock:
            self.state.untrash(order_id)

    def delete_order(self, order_id: int) -> None:
        """Delete an order for good (emptying the trash, or ``DELETE /orders/{id}?force=true``)."""
        with self._lock:
            self.state.delete(order_id)

    def corrupt_order(self, order_id: int, status: str) -> None:
        """Make an order answer a status no adapter knows (a plugin's custom status), for quarantine tests."""
        with self._lock:
            order = self.state.orders[order_id]
            order.raw_status = status
            self.state.touch(order)

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
            review_id = self.state.take_id("review")
            stamp = self.state.stamp()
            if verified is None:
                verified = any(
                    o.email.strip().lower() == reviewer_email.strip().lower()
                    and o.status in ("processing", "completed")
                    and any(p == product_id for p, _ in o.items)
                    for o in self.state.orders.values()
                )
            self.state.reviews[review_id] = {
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
            review = self.state.reviews[review_id]
            if text is not None:
                review["review"] = text
            if status is not None:
                review["status"] = status
            if rating is not None:
                review["rating"] = rating

    def delete_review(self, review_id: int) -> None:
        with self._lock:
            self.state.reviews.pop(review_id, None)

    def order(self, order_id: int) -> dict[str, Any]:
        """The order's full JSON, every field (what ``GET /orders/{id}`` answers without ``_fields``)."""
        with self._lock:
            return render_order(self.state, self.state.orders[order_id])

    def secrets(self) -> list[str]:
        """Every card secret (卡密) the shop has delivered: none may ever appear in the connector's state or logs."""
        with self._lock:
            return [s for o in self.state.orders.values() for s in o.secrets]

    def coupon(self, code: str) -> dict[str, Any] | None:
        """The published coupon with this code (WooCommerce's comparison: case-insensitive), as the API answers it."""
        with self._lock:
            found = self.coupon_book.id_by_code(code)
            return render_coupon(self.state, self.coupon_book.coupons[found]) if found else None

    def all_coupons(self) -> list[dict[str, Any]]:
        """Every coupon, trashed ones included, as the API answers them."""
        with self._lock:
            return [render_coupon(self.state, c) for c in self.coupon_book.coupons.values()]

    def add_coupon(self, code: str, amount: str = "5", discount_type: str = "fixed_cart", **fields: Any) -> int:
        """Make a coupon as wp-admin does (no checks); ``fields`` as :meth:`sandbox.shop.coupons.Coupons.add`."""
        return self.coupon_book.add(code, amount, discount_type, **fields)

    def trash_coupon(self, coupon_id: int) -> None:
        """Move a coupon to the trash: ``?code=`` no longer finds it and its code is free again."""
        with self._lock:
            self.coupon_book.coupons[coupon_id]["status"] = "trash"

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # ---- HTTP ----------------------------------------------------------------------------------------------------

    def _build_app(self) -> Callable[[Scope, Receive, Send], Any]:
        indexes = [
            Route("/wp-json", self._site_index, methods=["GET"]),
            Route("/wp-json/", self._site_index, methods=["GET"]),
            Route(API, self._namespace_index, methods=["GET"]),
            Route(API + "/", self._namespace_index, methods=["GET"]),
        ]
        routes = [*indexes, *self.coupon_book.routes(), *Orders(self.state).routes(), *Catalogue(self.state).routes()]
        app = Starlette(routes=routes)

        async def no_route(request: Request, exc: Exception) -> Response:
            if not request.url.path.startswith("/wp-json/"):
                return not_found()
            return err(404, "rest_no_route", "No route was found matching the URL and request method.")

        app.add_exception_handler(404, no_route)
        app.add_exception_handler(405, no_route)

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                request = Request(scope)
                with self._lock:
                    self.requests.append(
                        {"method": request.method, "path": request.url.path, "query": dict(request.query_params)}
                    )
                if not self.pretty_permalinks and request.url.path.startswith("/wp-json"):
                    await not_found()(scope, receive, send)
                    return
                if not self.woocommerce_active and request.url.path.startswith(API):
                    await err(404, "rest_no_route", "No route was found matching the URL and request method.")(
                        scope, receive, send
                    )
                    return
                denied = refused(request, self.keys)
                if denied is not None:
                    await denied(scope, receive, send)
                    return
            await app(scope, receive, send)

        return guarded

    async def _site_index(self, request: Request) -> Response:
        """``/wp-json/``: WordPress's REST index (``WP_REST_Server::get_index()``), the fields a client looks at."""
        base = str(request.base_url).rstrip("/")
        index = {"name": "Sandbox Shop", "url": base, "home": base, "namespaces": ["wc/v3", "wp/v2"]}
        return single_response(index, fields_of(request, self.state.honour_fields))

    async def _namespace_index(self, request: Request) -> Response:
        """``/wp-json/wc/v3``: the namespace index (``WP_REST_Server::get_namespace_index()``). It needs no
        capability; a wrong secret is still refused (``rest_authentication_errors`` runs for every request)."""
        routes = {
            f"/wc/v3{path}": {"namespace": "wc/v3", "methods": ["GET"]}
            for path in ("/orders", "/customers", "/products", "/products/reviews", "/coupons")
        }
        index = {"namespace": "wc/v3", "routes": routes}
        return single_response(index, fields_of(request, self.state.honour_fields))


def not_found() -> Response:
    """What WordPress answers outside its REST API (or with plain permalinks): the theme's HTML 404 page."""
    page = "<!DOCTYPE html><html><head><title>Page not found &#8211; Sandbox Shop</title></head><body></body></html>"
    return HTMLResponse(page, status_code=404)

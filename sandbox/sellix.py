"""A Sellix-shaped API on loopback (``/v1``): orders, order by uniqid, feedback, products, in the documented envelope.

Shapes from ``shared/specs/shops/sellix/samples`` (2020 documentation) with the current API's string statuses:
``{"status": 200, "data": {...}, "message": null, "log": null, "error": null, "env": "production"}``; a bad key
answers the envelope with ``status`` 401. Orders are listed newest first, a page at a time. Each order carries what
the connector must never keep: ``serials`` (the delivered keys), payment ids and secrets, the buyer's IP.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.faults import FaultInjector, Knobs

PAGE = 20


def envelope(data: Any, status: int = 200, error: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"status": status, "data": data, "message": None, "log": None, "error": error, "env": "production"},
        status_code=status,
    )


def page_of(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One page (``page``, from 1) of :data:`PAGE` items."""
    page = max(1, int(request.query_params.get("page", "1") or 1))
    return items[(page - 1) * PAGE : page * PAGE]


class SellixSandbox:
    def __init__(self, api_key: str = "sellix-sandbox-key", knobs: Knobs | None = None) -> None:
        self.api_key = api_key
        #: The shops the key's account owns, by name: ``X-Sellix-Merchant`` may name any of them (no header: the
        #: account's main shop). The data is shared: the sandbox tells shops apart only to refuse an unknown name.
        self.merchants: set[str] = {"sandbox-shop"}
        self.knobs = knobs or Knobs()
        self._lock = threading.RLock()
        self._rng = random.Random(5)
        self.orders: dict[str, dict[str, Any]] = {}
        self.feedback: dict[str, dict[str, Any]] = {}
        self.products: dict[str, dict[str, Any]] = {}
        #: By uniqid, as the coupon model has them (:meth:`_coupon_routes`).
        self.coupons: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self._clock = 1_790_000_000
        self.app = FaultInjector(self._build(), self.knobs)

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def add_product(self, title: str, price: float) -> str:
        with self._lock:
            uniqid = f"p{self._rng.getrandbits(36):09x}"
            self.products[uniqid] = {"uniqid": uniqid, "title": title, "price": price, "type": "serials"}
            return uniqid

    def add_order(self, email: str, product: str, status: str = "COMPLETED", total: float = 9.99) -> str:
        with self._lock:
            uniqid = f"demo-{self._rng.getrandbits(40):010x}"
            now = self._tick()
            self.orders[uniqid] = {
                "id": len(self.orders),
                "uniqid": uniqid,
                "total": total,
                "total_display": total,
                "currency": "USD",
                "customer_email": email,
                "product_id": product,
                "product_type": "serials",
                "quantity": 1,
                "gateway": "STRIPE",
                "stripe_id": f"pi_{uniqid}",
                "stripe_client_secret": f"pi_{uniqid}_secret_x",
                "ip": "203.0.113.7",
                "crypto_address": None,
                "country": "IT",
                "status": status,
                "serials": [f"SX-{self._rng.getrandbits(48):012X}"],
                "custom_fields": {},
                "created_at": now,
                "updated_at": now,
            }
            return uniqid

    def set_status(self, uniqid: str, status: str) -> None:
        with self._lock:
            self.orders[uniqid].update(status=status, updated_at=self._tick())

    def add_feedback(self, order: str, score: int, message: str) -> str:
        with self._lock:
            uniqid = f"fb-{self._rng.getrandbits(40):010x}"
            invoice = self.orders[order]
            self.feedback[uniqid] = {
                "id": len(self.feedback),
                "uniqid": uniqid,
                "invoice_id": order,
                "product_id": invoice["product_id"],
                "message": message,
                "reply": None,
                "feedback": "positive" if score >= 4 else "negative",
                "score": score,
                "created_at": self._tick(),
                "updated_at": self._clock,
                "invoice": {"uniqid": order, "customer_email": invoice["customer_email"]},
            }
            return uniqid

    def add_coupon(self, code: str, value: int = 5, kind: str = "FIXED", **body: Any) -> str:
        """Make a coupon as the dashboard does (no checks); ``body`` takes the create body's other fields."""
        with self._lock:
            uniqid = f"{self._rng.getrandbits(48):012x}"
            bound = [str(p) for p in body.get("products_bound") or []]
            self.coupons[uniqid] = {
                "id": len(self.coupons) + 1,
                "uniqid": uniqid,
                "shop_id": 1,
                "type": "PRODUCT",
                "coupon_type": "CLASSIC",
                "code": code,
                "use_type": "LIMITED" if bound else "ANY",
                "discount": value,
                "discount_type": kind,
                "currency": "USD",
                "used": 0,
                "disabled_with_volume_discounts": bool(body.get("disabled_with_volume_discounts")),
                "all_recurring_bill_invoices": bool(body.get("all_recurring_bill_invoices")),
                "max_uses": int(body.get("max_uses") or -1),
                "expire_at": body.get("expire_at"),
                "created_at": self._tick(),
                "updated_at": 0,
                "updated_by": 0,
                "products_bound": bound,
                "products_count": len(bound),
            }
            return uniqid

    def coupon(self, code: str) -> dict[str, Any] | None:
        """The coupon with exactly this code, as the list answers it."""
        with self._lock:
            return next((dict(c) for c in self.coupons.values() if c["code"] == code), None)

    def _coupon_routes(self) -> list[Route]:
        """``GET``/``POST /v1/coupons`` (docs.sellix.io api-reference/coupons: ``list-coupons``, ``post-coupons``,
        ``model``). The create body: ``code`` and ``discount_value`` (an integer) required, ``discount_type``
        ``PERCENTAGE``/``FIXED``, ``max_uses``, ``expire_at`` (unix), ``products_bound``; the answer's ``data`` holds
        the new ``uniqid`` (as the 2020 documentation's create answers do). Sellix documents no answer for a code
        that exists, nor for a bad body: the sandbox answers both with the envelope and status 400, and its
        ``error`` text is its own (CardBridge decides on the status and a read-back, never on that text)."""

        async def coupons(request: Request) -> Response:
            if request.method == "GET":
                with self._lock:
                    items = sorted(self.coupons.values(), key=lambda c: -c["id"])
                    return envelope({"coupons": page_of(request, items)})
            try:
                body = await request.json()
            except ValueError:
                return envelope(None, 400, "sandbox: the body is not JSON")
            body = body if isinstance(body, dict) else {}
            code, value = body.get("code"), body.get("discount_value")
            if not isinstance(code, str) or not code or isinstance(value, bool) or not isinstance(value, int):
                return envelope(None, 400, "sandbox: code and an integer discount_value are required")
            kind = body.get("discount_type", "PERCENTAGE")
            if kind not in ("PERCENTAGE", "FIXED"):
                return envelope(None, 400, "sandbox: discount_type is PERCENTAGE or FIXED")
            with self._lock:
                if any(c["code"] == code for c in self.coupons.values()):
                    return envelope(None, 400, "sandbox: the code exists")
                rest = {k: v for k, v in body.items() if k not in ("code", "discount_value", "discount_type")}
                uniqid = self.add_coupon(code, value, kind, **rest)
            return envelope({"uniqid": uniqid})

        return [Route("/v1/coupons", coupons, methods=["GET", "POST"])]

    def secrets(self) -> list[str]:
        with self._lock:
            return [s for o in self.orders.values() for s in o["serials"]] + [
                o["stripe_client_secret"] for o in self.orders.values()
            ]

    def _build(self) -> Any:
        async def orders(request: Request) -> Response:
            with self._lock:
                items = sorted(self.orders.values(), key=lambda o: (o["updated_at"], o["id"]), reverse=True)
                return envelope({"orders": page_of(request, items)})

        async def order(request: Request) -> Response:
            with self._lock:
                found = self.orders.get(request.path_params["uniqid"])
            return envelope({"order": found}) if found else envelope(None, 404, "Order not found.")

        async def feedback(request: Request) -> Response:
            with self._lock:
                return envelope({"feedback": page_of(request, sorted(self.feedback.values(), key=lambda f: -f["id"]))})

        async def products(request: Request) -> Response:
            with self._lock:
                return envelope({"products": page_of(request, list(self.products.values()))})

        app = Starlette(
            routes=[
                Route("/v1/orders", orders),
                Route("/v1/orders/{uniqid}", order),
                Route("/v1/feedback", feedback),
                Route("/v1/products", products),
                *self._coupon_routes(),
            ]
        )
        outer = self

        async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                request = Request(scope)
                with outer._lock:
                    outer.requests.append(
                        {"path": request.url.path, "query": dict(request.query_params), "time": time.monotonic()}
                    )
                if request.headers.get("authorization") != f"Bearer {outer.api_key}":
                    await envelope(None, 401, "Unauthorized")(scope, receive, send)
                    return
                merchant = request.headers.get("x-sellix-merchant")
                if merchant is not None and merchant not in outer.merchants:
                    # Sellix documents no answer for a shop the account does not own; the sandbox refuses it like a
                    # bad key, and CardBridge tells the two apart by asking again without the header, not by this.
                    await envelope(None, 401, "Unauthorized")(scope, receive, send)
                    return
            await app(scope, receive, send)

        return guarded

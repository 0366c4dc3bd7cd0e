"""``/customers``, ``/products`` and ``/products/reviews``: the lists (``include``, ``exclude``, ``email``,
``orderby``; reviews by ``status``, ``product``, ``reviewer_email``, ``after``) and single customers and products."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.shop.render import render_customer, render_review
from sandbox.shop.rest import API, bound, err, fields_of, invalid, list_response, paging, single_response
from sandbox.shop.state import ShopState


class Catalogue:
    def __init__(self, shop: ShopState) -> None:
        self.shop = shop

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{API}/customers", self.customers, methods=["GET"]),
            Route(f"{API}/customers/{{id:int}}", self.customer, methods=["GET"]),
            Route(f"{API}/products/reviews", self.reviews, methods=["GET"]),
            Route(f"{API}/products", self.products, methods=["GET"]),
            Route(f"{API}/products/{{id:int}}", self.product, methods=["GET"]),
        ]

    async def customers(self, request: Request) -> Response:
        shop = self.shop
        pages = paging(request)
        if isinstance(pages, Response):
            return pages
        page, per_page, offset = pages
        params = request.query_params
        orderby = params.get("orderby", "name")
        if orderby not in ("id", "include", "name", "registered_date"):
            return invalid("orderby", "orderby is not one of id, include, name and registered_date.")
        include = [int(i) for i in params.get("include", "").split(",") if i.strip().isdigit()]
        exclude = {int(i) for i in params.get("exclude", "").split(",") if i.strip().isdigit()}
        email = params.get("email", "").strip().lower()
        with shop.lock:
            customers = list(shop.customers.values())
            if include:
                customers = [c for c in customers if c["id"] in set(include)]
            if exclude:
                customers = [c for c in customers if c["id"] not in exclude]
            if email:
                customers = [c for c in customers if c["email"].lower() == email]
            keys: dict[str, Callable[[dict[str, Any]], Any]] = {
                "id": lambda c: c["id"],
                "registered_date": lambda c: (c["created"], c["id"]),
                "include": lambda c: include.index(c["id"]) if c["id"] in include else c["id"],
            }
            key = keys.get(orderby, lambda c: (f"{c['first_name']} {c['last_name']}".lower(), c["id"]))
            customers.sort(key=key, reverse=params.get("order", "asc") == "desc")
            total = len(customers)
            rendered = [render_customer(shop, c) for c in customers[offset : offset + per_page]]
        return list_response(request, rendered, total, page, per_page, fields_of(request, shop.honour_fields))

    async def customer(self, request: Request) -> Response:
        customer = self.shop.customers.get(request.path_params["id"])
        if customer is None:
            return err(404, "woocommerce_rest_invalid_id", "Invalid resource ID.")
        return single_response(render_customer(self.shop, customer), fields_of(request, self.shop.honour_fields))

    async def products(self, request: Request) -> Response:
        pages = paging(request)
        if isinstance(pages, Response):
            return pages
        page, per_page, offset = pages
        include = {int(i) for i in request.query_params.get("include", "").split(",") if i.strip().isdigit()}
        with self.shop.lock:
            products = sorted(self.shop.products.values(), key=lambda p: p["id"])
            if include:
                products = [p for p in products if p["id"] in include]
            status = request.query_params.get("status", "any")
            if status != "any":
                products = [p for p in products if p.get("status", "publish") == status]
            page_items = [dict(p) for p in products[offset : offset + per_page]]
            fields = fields_of(request, self.shop.honour_fields)
            return list_response(request, page_items, len(products), page, per_page, fields)

    async def product(self, request: Request) -> Response:
        product = self.shop.products.get(request.path_params["id"])
        if product is None:
            return err(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return single_response(dict(product), fields_of(request, self.shop.honour_fields))

    async def reviews(self, request: Request) -> Response:
        shop = self.shop
        pages = paging(request)
        if isinstance(pages, Response):
            return pages
        page, per_page, offset = pages
        params = request.query_params
        after = bound(request, "after", shop.tz)
        if isinstance(after, Response):
            return after
        with shop.lock:
            reviews = [
                r
                for r in shop.reviews.values()
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
            rendered = [render_review(shop, r) for r in reviews[offset : offset + per_page]]
        return list_response(request, rendered, total, page, per_page, fields_of(request, shop.honour_fields))

"""``/orders``: the list (``status``, ``customer``, ``include``/``exclude``, ``after``/``before``,
``modified_after``/``modified_before``, ``orderby`` including ``modified``; the common incremental read, by
``modified`` with no other filter, pages straight off the sorted index) and one order (GET, PUT ``status``, DELETE).

The trash, as WooCommerce has it:

- ``status`` defaults to ``any``, and ``any`` never lists a trashed order, with ``include=`` too:
  woocommerce/woocommerce plugins/woocommerce/includes/rest-api/Controllers/Version3/class-wc-rest-orders-controller.php
  ``prepare_objects_query()`` passes ``any`` on as ``post_status => 'any'`` (WP_Query leaves out statuses registered
  ``exclude_from_search``, which ``trash`` is), and with HPOS
  plugins/woocommerce/src/Internal/DataStores/Orders/OrdersTableQuery.php ``sanitize_status()`` turns ``any`` into
  ``array_keys( wc_get_order_statuses() )``, which has no ``trash``. ``status=trash`` lists them
  (``get_collection_params()``: the enum is ``any``, ``trash`` and the order statuses).
- ``GET /orders/{id}`` still answers a trashed order, with ``status: "trash"`` (``get_object()`` is ``wc_get_order()``,
  which loads trashed orders); an order deleted for good is ``404 woocommerce_rest_shop_order_invalid_id``.
- ``DELETE /orders/{id}`` (``WC_REST_CRUD_Controller::delete_item()``): ``force=false`` (the default) moves the order to
  the trash (``410 woocommerce_rest_already_trashed`` when it is there already), ``force=true`` deletes it; both
  answer the order as it was before.
- Trashing and restoring move ``date_modified`` (``OrdersTableDataStore::trash_order()`` sets ``date_updated_gmt``;
  ``untrash_order()`` saves the order), so ``status=trash&modified_after=`` finds what was trashed since a time.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.shop.render import render_order
from sandbox.shop.rest import API, bound, err, fields_of, invalid, list_response, paging, single_response
from sandbox.shop.state import Order, ShopState

STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash")
#: What ``status`` takes: ``any``, ``trash`` and ``wc_get_order_statuses()`` (Blocks adds ``checkout-draft``).
LISTABLE = (
    "any",
    "trash",
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "checkout-draft",
)
ORDERBY = ("date", "id", "include", "title", "slug", "modified")


class Orders:
    def __init__(self, shop: ShopState) -> None:
        self.shop = shop

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{API}/orders", self.index, methods=["GET"]),
            Route(f"{API}/orders/{{id:int}}", self.order, methods=["GET", "PUT", "DELETE"]),
        ]

    async def index(self, request: Request) -> Response:
        shop = self.shop
        pages = paging(request)
        if isinstance(pages, Response):
            return pages
        page, per_page, offset = pages
        params = request.query_params
        orderby = params.get("orderby", "date")
        if orderby not in ORDERBY:
            return invalid("orderby", f"orderby is not one of {', '.join(ORDERBY)}.")
        order = params.get("order", "desc")
        if order not in ("asc", "desc"):
            return invalid("order", "order is not one of asc and desc.")
        bounds = {}
        for name in ("modified_after", "modified_before", "after", "before"):
            found = bound(request, name, shop.tz)
            if isinstance(found, Response):
                return found
            bounds[name] = found
        statuses = [s for s in params.get("status", "any").split(",") if s]
        for index_, status in enumerate(statuses):  # the enum of get_collection_params() (see the module docstring)
            if status not in LISTABLE:
                return invalid("status", f"status[{index_}] is not one of {', '.join(LISTABLE)}.")
        customer = params.get("customer")
        include = {int(i) for i in params.get("include", "").split(",") if i.strip().isdigit()}
        exclude = {int(i) for i in params.get("exclude", "").split(",") if i.strip().isdigit()}
        with shop.lock:
            index = shop.by_modified
            lo, hi = 0, len(index)
            if bounds["modified_after"] is not None:
                lo = bisect.bisect_right(index, (bounds["modified_after"], float("inf")))
            if bounds["modified_before"] is not None:
                hi = bisect.bisect_left(index, (bounds["modified_before"], -1))
            any_status = statuses in ([], ["any"]) or "any" in statuses
            simple = (
                orderby == "modified"
                and any_status
                and not shop.trashed
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
                selected = [shop.orders[order_id] for _, order_id in window]
            else:
                candidates = [shop.orders[order_id] for _, order_id in index[lo:hi]]
                if any_status:  # "any" short-circuits the list of statuses, and never includes the trash
                    candidates = [o for o in candidates if o.status != "trash"]
                else:
                    candidates = [o for o in candidates if (o.raw_status or o.status) in statuses]
                if customer:
                    candidates = [o for o in candidates if o.customer_id == int(customer)]
                if include:
                    candidates = [o for o in candidates if o.id in include]
                if exclude:
                    candidates = [o for o in candidates if o.id not in exclude]
                after, before = bounds["after"], bounds["before"]
                if after is not None:
                    candidates = [o for o in candidates if o.created > after]
                if before is not None:
                    candidates = [o for o in candidates if o.created < before]
                keys: dict[str, Callable[[Order], Any]] = {
                    "modified": lambda o: (o.modified, o.id),
                    "date": lambda o: (o.created, o.id),
                }
                candidates.sort(key=keys.get(orderby, lambda o: (o.id,)), reverse=order == "desc")
                total = len(candidates)
                selected = candidates[offset : offset + per_page]
            fields = fields_of(request, shop.honour_fields)
            rendered = [render_order(shop, o, fields) for o in selected]
        return list_response(request, rendered, total, page, per_page, fields)

    async def order(self, request: Request) -> Response:
        shop = self.shop
        order_id = request.path_params["id"]
        fields = fields_of(request, shop.honour_fields)
        if order_id not in shop.orders:
            return err(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        if request.method == "DELETE":
            force = request.query_params.get("force", "false").lower() in ("true", "1")
            with shop.lock:
                before = render_order(shop, shop.orders[order_id], fields)
                if force:
                    shop.delete(order_id)
                elif not shop.trash(order_id):
                    return err(410, "woocommerce_rest_already_trashed", "The order has already been deleted.")
            return single_response(before, fields)
        if request.method == "PUT":
            body = await request.json()
            if "status" in body:
                if body["status"] not in STATUSES:
                    return invalid("status", f"status is not one of {', '.join(STATUSES)}.")
                with shop.lock:
                    shop.set_status(order_id, body["status"])
        with shop.lock:
            return single_response(render_order(shop, shop.orders[order_id], fields), fields)

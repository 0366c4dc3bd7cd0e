"""WooCommerce ``_fields``: bytes downloaded per order with the fields CardBridge asks for vs the full payload.

Both reads page through the same running sandbox shop (``cardbridge sandbox``) exactly as the connector's incremental
walk does (``per_page=100``, ``orderby=modified``, ``order=asc``, ``dates_are_gmt``), one with
``_fields`` = :data:`adapters.shops.woocommerce_fields.ORDER_FIELDS`, one without (the naive read, which is also what
``floor_seconds`` in ``bench/run.py`` downloads). Bytes are response bodies as received (the sandbox sends no
compression, as many shops behind no CDN do not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from adapters.shops.woocommerce_fields import ORDER_FIELDS, fields_param

#: The target of issue 15: the trimmed read costs at most this share of the full one.
TARGET = 0.20


@dataclass
class Bytes:
    orders: int
    full: int
    trimmed: int

    @property
    def ratio(self) -> float:
        return self.trimmed / self.full


def _download(client: httpx.Client, fields: str | None) -> tuple[int, int]:
    """(orders, body bytes) of every order page, read as the connector's walk reads them."""
    count = size = 0
    page = 1
    while True:
        params: dict[str, Any] = {
            "per_page": 100,
            "page": page,
            "orderby": "modified",
            "order": "asc",
            "dates_are_gmt": "true",
        }
        if fields is not None:
            params["_fields"] = fields
        response = client.get("/orders", params=params)
        response.raise_for_status()
        records = response.json()
        count += len(records)
        size += len(response.content)
        if len(records) < 100:
            return count, size
        page += 1


def order_bytes(info: dict[str, Any]) -> Bytes:
    """Every order of the sandbox shop read twice: whole, then trimmed to the adapter's ``_fields``."""
    with httpx.Client(
        base_url=info["shop_url"] + "/wp-json/wc/v3", auth=(info["consumer_key"], info["consumer_secret"]), timeout=60
    ) as client:
        orders, full = _download(client, None)
        trimmed_orders, trimmed = _download(client, fields_param(ORDER_FIELDS))
    if trimmed_orders != orders:
        raise RuntimeError(f"the trimmed read saw {trimmed_orders} orders, the full one {orders}")
    return Bytes(orders, full, trimmed)


def bytes_figure(info: dict[str, Any]) -> dict[str, Any]:
    """The figure for ``bench/run.py`` (the keyword arguments of its ``Figure``)."""
    measured = order_bytes(info)
    per_full, per_trimmed = measured.full / measured.orders, measured.trimmed / measured.orders
    return {
        "name": f"WooCommerce bytes per order with _fields ÷ full payload (N = {measured.orders:,})",
        "value": f"{measured.ratio * 100:.1f} %",
        "target": f"≤ {TARGET * 100:.0f} %",
        "met": measured.ratio <= TARGET,
        "detail": (
            f"{per_trimmed:,.0f} B vs {per_full:,.0f} B per order (order pages as the walk reads them; "
            f"_fields={fields_param(ORDER_FIELDS)}; line items come whole: WordPress cannot trim inside a list)"
        ),
    }

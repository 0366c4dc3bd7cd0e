"""The ``_fields`` CardBridge asks WooCommerce for are exactly what its parsers read.

A record trimmed to the allow-list (by the sandbox's copy of WordPress's filter) parses to the same canonical record as
the full one, and the parsers touch no key outside the allow-list: a parser change that reads a new field fails here
until the field is requested too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.shops.woocommerce import parse_customer, parse_order, parse_product, parse_review, walk_stamp
from adapters.shops.woocommerce_fields import CUSTOMER_FIELDS, ORDER_FIELDS, PRODUCT_FIELDS, REVIEW_FIELDS
from sandbox.shop import WooCommerceSandbox
from sandbox.shop.fields import filter_item
from sandbox.shop.render import render_customer, render_order, render_review

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"


class Watched(dict[str, Any]):
    """A record that notes the path of every key a parser reads."""

    def __init__(self, data: dict[str, Any], seen: set[str], prefix: str = "") -> None:
        super().__init__(data)
        self.seen, self.prefix = seen, prefix

    def _wrap(self, key: str, value: Any) -> Any:
        path = f"{self.prefix}{key}"
        self.seen.add(path)
        if isinstance(value, dict):
            return Watched(value, self.seen, path + ".")
        if isinstance(value, list):
            return [Watched(v, self.seen, path + ".") if isinstance(v, dict) else v for v in value]
        return value

    def __getitem__(self, key: str) -> Any:
        return self._wrap(key, super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._wrap(key, super().get(key, default))


def allowed(path: str, fields: tuple[str, ...]) -> bool:
    """A requested field, a part of one requested whole, or the container on the way to one (``billing``)."""
    return any(path == f or path.startswith(f + ".") or f.startswith(path + ".") for f in fields)


@pytest.fixture
def shop() -> WooCommerceSandbox:
    sandbox = WooCommerceSandbox()
    card = sandbox.add_product("王者荣耀 点券 60元", "60.00")
    alice = sandbox.add_customer("alice@example.com", "Alice", "Liu", username="alice")
    sandbox.add_order(customer_id=alice, items=[(card, 2)], status="completed")
    sandbox.add_order(email=" Bob@Example.COM ", items=[(card, 1)], status="refunded")
    sandbox.add_review(card, "alice", "alice@example.com", 5, "好 <b>用</b>")
    return sandbox


def full_orders(shop: WooCommerceSandbox) -> list[dict[str, Any]]:
    documented = json.loads((SAMPLES / "order_retrieve_727_processing.json").read_text())
    return [render_order(shop.state, o) for o in shop.orders.values()] + [documented]


def test_an_order_trimmed_to_the_fields_parses_the_same(shop):
    for full in full_orders(shop):
        trimmed = filter_item(full, list(ORDER_FIELDS))
        assert parse_order(trimmed) == parse_order(full)
        assert walk_stamp(trimmed) == walk_stamp(full)
        assert "shipping" not in trimmed and set(trimmed["billing"]) == {"email"} and "meta_data" not in trimmed


def test_the_order_parser_reads_nothing_outside_the_fields(shop):
    for full in full_orders(shop):
        seen: set[str] = set()
        parse_order(Watched(full, seen))
        walk_stamp(Watched(full, seen))
        assert seen and all(allowed(path, ORDER_FIELDS) for path in seen), sorted(seen)


def test_customers_reviews_and_products_parse_the_same_from_their_fields(shop):
    cases = [
        ([render_customer(shop.state, c) for c in shop.customers.values()], CUSTOMER_FIELDS, parse_customer),
        ([render_review(shop.state, r) for r in shop.reviews.values()], REVIEW_FIELDS, parse_review),
        ([dict(p) for p in shop.products.values()], PRODUCT_FIELDS, parse_product),
    ]
    for records, fields, parse in cases:
        assert records
        for full in records:
            assert parse(filter_item(full, list(fields))) == parse(full)
            seen: set[str] = set()
            parse(Watched(full, seen))
            assert all(allowed(path, fields) for path in seen), sorted(seen)


def test_no_address_phone_payment_or_ip_field_is_requested():
    for fields in (ORDER_FIELDS, CUSTOMER_FIELDS, PRODUCT_FIELDS, REVIEW_FIELDS):
        for field in fields:
            assert field.split(".")[0] not in {
                "shipping",
                "customer_ip_address",
                "customer_user_agent",
                "payment_method",
                "payment_method_title",
                "transaction_id",
                "meta_data",
            }
            assert not field.startswith("billing.") or field == "billing.email"
            # WordPress ignores every entry after a child of a parent already kept whole (`break 2`)
            assert not any(other.startswith(field + ".") for other in fields), field

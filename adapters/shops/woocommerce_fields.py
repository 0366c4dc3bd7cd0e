"""What CardBridge asks WooCommerce for: the ``_fields`` of every list it reads, in one place.

Each tuple is exactly what the matching parser in :mod:`adapters.shops.woocommerce` reads (tests parse a record trimmed
to these fields and expect the same canonical record, so a parser change and the request cannot drift apart).

WordPress trims every REST response to ``_fields`` (``rest_filter_response_fields()``, wp-includes/rest-api.php:949
in WordPress 7.2-alpha; since 4.8, nested with dots since 5.3; the sandbox's copy is ``sandbox/shop/fields.py``), so addresses, phone numbers, payment data, the buyer's IP and the
order's meta (card keys, 卡密) never leave the shop. ``billing.email`` is the one part of an address read: guests are
matched by it. Two limits of the real filter shape the order list:

- A dotted path cannot reach *into a list*: ``_rest_array_intersect_key_recursive()`` intersects keys, and a list's
  keys are its indexes, so ``line_items.product_id`` answers no line item at all; WooCommerce does not even build the
  line items unless ``line_items`` is named exactly (``WC_REST_Orders_V2_Controller::get_formatted_item_data()``
  intersects its extra fields with ``get_fields_for_response()``). Line items are therefore requested whole (their
  meta, where key-delivery plugins put the codes, comes along and is never read).
- Listing a parent before one of its children (``billing,billing.email``) makes WordPress ignore every later entry
  (``break 2``): no entry here is the parent of another.

A site that ignores ``_fields`` (WordPress before 4.8) answers whole records; the parsers read only these fields from
them, so nothing else is copied either.
"""

from __future__ import annotations

#: ``parse_order`` and ``walk_stamp``: one list for the walk, the trash and the by-id reads.
ORDER_FIELDS = (
    "id",
    "number",
    "status",
    "currency",
    "total",
    "customer_id",
    "billing.email",
    "date_created_gmt",
    "date_modified_gmt",
    "line_items",
)
#: ``parse_customer``.
CUSTOMER_FIELDS = ("id", "email", "username")
#: ``parse_product``: the product card's facts too. ``price`` is a string (the active price, a sale's when on sale),
#: ``stock_status`` one of ``instock``, ``outofstock``, ``onbackorder``, ``stock_quantity`` an integer or null when
#: the product does not manage stock (WC_REST_Products_Controller::get_item_schema(), includes/rest-api/Controllers/
#: Version3/class-wc-rest-products-controller.php @ 010784f). No currency: WooCommerce gives it per order, not per
#: product. ``regular_price`` is not read: the card shows what a buyer pays now.
PRODUCT_FIELDS = ("id", "name", "permalink", "price", "stock_status", "stock_quantity")
#: ``parse_review``.
REVIEW_FIELDS = ("id", "product_id", "rating", "reviewer_email", "reviewer", "review", "status", "date_created_gmt")


def fields_param(fields: tuple[str, ...]) -> str:
    """The ``_fields`` query value (comma-separated, as ``wp_parse_list()`` splits it)."""
    return ",".join(fields)

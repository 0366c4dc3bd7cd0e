"""The shop's JSON: orders (with what a real order carries and the connector must never keep: addresses, phone,
payment method and transaction id, the buyer's IP, card secrets in order and line-item meta data), customers and
product reviews, with site-local and GMT dates."""

from __future__ import annotations

import hashlib
import html
from typing import Any

from sandbox.shop.rest import API
from sandbox.shop.state import Order, ShopState

#: What WooCommerce fills in only when asked for by that exact top-level name (``_fields=line_items``, not
#: ``line_items.product_id``): ``WC_REST_Orders_V2_Controller::get_formatted_item_data()`` intersects ``$extra_fields``
#: with ``get_fields_for_response()``, which lists a nested ``_fields`` entry as it is (class-wc-rest-orders-v2-
#: controller.php:274-281 in WooCommerce 5.6, parapluiecreative/woocommerce @ 1f73322; the same code, with
#: payment_url and the three flags added, in woocommerce/woocommerce @ 01ddd4f3; WordPress's
#: ``get_fields_for_response()`` is class-wp-rest-controller.php:572).
ORDER_EXTRAS = (
    "meta_data",
    "line_items",
    "tax_lines",
    "shipping_lines",
    "fee_lines",
    "coupon_lines",
    "refunds",
    "payment_url",
    "is_editable",
    "needs_payment",
    "needs_processing",
)
#: The Safari a buyer checked out with, as ``customer_user_agent`` and the order-attribution meta keep it.
USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
SITE = "https://shop.example.com"


def _meta(meta_id: int, key: str, value: Any) -> dict[str, Any]:
    """An order item's meta entry as ``merge_meta_item_with_formatted_meta_display_attributes()`` answers it."""
    return {"id": meta_id, "key": key, "value": value, "display_key": key, "display_value": value}


def render_order(shop: ShopState, o: Order, fields: list[str] | None = None) -> dict[str, Any]:
    """The full order as ``GET /wc/v3/orders`` answers it (WooCommerce 9.x, HPOS), before ``_fields`` trims it.

    The keys and their order are ``$allowed_fields`` of ``WC_REST_Orders_V2_Controller::get_formatted_item_data()``
    (woocommerce/woocommerce plugins/woocommerce/includes/rest-api/Controllers/Version2/
    class-wc-rest-orders-v2-controller.php), then ``_links`` (``prepare_links()``: self, collection, customer when the
    order has one, up for a child order). Line items are ``get_order_item_data()``: the item's data plus sku, price,
    image and parent_name, meta with display_key/display_value. Values follow the documented sample
    (/work/shared/specs/shops/woocommerce/samples/order_retrieve_727_processing.json); order meta carries what a
    modern shop stores there: WooCommerce's order attribution (``_wc_order_attribution_*``, WooCommerce ≥ 8.5,
    src/Internal/Orders/OrderAttributionController.php) and a key-delivery plugin's delivered codes (卡密), which
    CardBridge must never read. ``fields`` (the request's ``_fields``) only decides which of :data:`ORDER_EXTRAS`
    are built; :mod:`sandbox.shop.fields` trims the rest.
    """
    extras = set(ORDER_EXTRAS) if fields is None else set(ORDER_EXTRAS) & set(fields)
    created_local, created_gmt = shop.dates(o.created)
    modified_local, modified_gmt = shop.dates(o.modified)
    # a trashed order keeps its payment date (only the status changes, to "trash")
    status = o.trashed_from or o.status
    paid = status in ("processing", "completed", "refunded")
    lines, total = [], 0.0
    for index, (product_id, quantity) in enumerate(o.items):
        product = shop.products.get(product_id, {"name": f"Product {product_id}", "price": "10.00"})
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
                "meta_data": [_meta(o.id * 100 + index, "_license_key", o.secrets[index])],
                "sku": f"SKU-{product_id}",
                "price": float(product["price"]),
                "image": {"id": 40 + product_id, "src": f"{SITE}/wp-content/uploads/2026/01/card-{product_id}.png"},
                "parent_name": None,
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
    digest = hashlib.md5(str(o.id).encode()).hexdigest()
    order_key = f"wc_order_{digest[:13]}"
    session_start = shop.dates(o.created - 600)[0].replace("T", " ")
    data: dict[str, Any] = {
        "id": o.id,
        "parent_id": 0,
        "number": str(o.id),
        "order_key": order_key,
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
        "customer_user_agent": USER_AGENT,
        "customer_note": "",
        "billing": {**address, "email": o.email, "phone": o.phone},
        "shipping": {**address, "phone": ""},
        "payment_method": o.payment[0],
        "payment_method_title": o.payment[1],
        "transaction_id": o.transaction_id,
        "date_paid": created_local if paid else None,
        "date_paid_gmt": created_gmt if paid else None,
        "date_completed": modified_local if status == "completed" else None,
        "date_completed_gmt": modified_gmt if status == "completed" else None,
        "cart_hash": digest,
        "meta_data": [
            # the key-delivery plugin writes the codes when the payment lands, before the attribution is saved
            {"id": o.id * 100 + 89, "key": "_kami_delivered", "value": o.secrets[-1]},
            {"id": o.id * 100 + 90, "key": "is_vat_exempt", "value": "no"},
            {"id": o.id * 100 + 91, "key": "_wc_order_attribution_source_type", "value": "typein"},
            {"id": o.id * 100 + 92, "key": "_wc_order_attribution_utm_source", "value": "(direct)"},
            {"id": o.id * 100 + 93, "key": "_wc_order_attribution_session_entry", "value": f"{SITE}/shop/"},
            {"id": o.id * 100 + 94, "key": "_wc_order_attribution_session_start_time", "value": session_start},
            {"id": o.id * 100 + 95, "key": "_wc_order_attribution_session_pages", "value": "4"},
            {"id": o.id * 100 + 96, "key": "_wc_order_attribution_session_count", "value": "1"},
            {"id": o.id * 100 + 97, "key": "_wc_order_attribution_user_agent", "value": USER_AGENT},
            {"id": o.id * 100 + 98, "key": "_wc_order_attribution_device_type", "value": "Mobile"},
        ],
        "line_items": lines,
        "tax_lines": [],
        "shipping_lines": [],
        "fee_lines": [],
        "coupon_lines": list(o.coupon_lines),
        "refunds": [],
        "payment_url": f"{SITE}/checkout/order-pay/{o.id}/?pay_for_order=true&key={order_key}",
        "is_editable": status in ("pending", "on-hold", "auto-draft"),
        "needs_payment": status in ("pending", "failed"),
        "needs_processing": True,
    }
    for name in set(ORDER_EXTRAS) - extras:
        del data[name]
    links: dict[str, Any] = {
        # WordPress ≥ 6.7 adds targetHints to the self link (WP_REST_Server::get_response_links())
        "self": [
            {"href": f"{SITE}{API}/orders/{o.id}", "targetHints": {"allow": ["GET", "POST", "PUT", "PATCH", "DELETE"]}}
        ],
        "collection": [{"href": f"{SITE}{API}/orders"}],
    }
    if o.customer_id:
        links["customer"] = [{"href": f"{SITE}{API}/customers/{o.customer_id}"}]
    data["_links"] = links
    return data


def render_customer(shop: ShopState, c: dict[str, Any]) -> dict[str, Any]:
    created_local, created_gmt = shop.dates(c["created"])
    modified_local, modified_gmt = shop.dates(c["modified"])
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


def render_review(shop: ShopState, r: dict[str, Any]) -> dict[str, Any]:
    local, gmt = shop.dates(r["created"])
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

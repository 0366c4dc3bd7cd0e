"""The shop's JSON: orders (with what a real order carries and the connector must never keep: addresses, phone,
payment method and transaction id, the buyer's IP, card secrets in order and line-item meta data), customers and
product reviews, with site-local and GMT dates."""

from __future__ import annotations

import hashlib
import html
from typing import Any

from sandbox.shop.rest import API
from sandbox.shop.state import Order, ShopState


def render_order(shop: ShopState, o: Order) -> dict[str, Any]:
    created_local, created_gmt = shop.dates(o.created)
    modified_local, modified_gmt = shop.dates(o.modified)
    # a trashed order keeps its payment date (only the status changes, to "trash")
    paid = (o.trashed_from or o.status) in ("processing", "completed", "refunded")
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

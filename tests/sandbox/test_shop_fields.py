"""``_fields`` on the sandbox shop, as WordPress trims REST responses.

Upstream: WordPress/wordpress-develop src/wp-includes/rest-api.php ``rest_filter_response_fields()`` and
``_rest_array_intersect_key_recursive()``; WP_REST_Controller ``prepare_response_for_collection()`` (a collection's
``_links`` are part of each item) and WP_REST_Server ``response_to_data()`` (a single object's ``_links`` are added after
the filter); woocommerce/woocommerce class-wc-rest-orders-v2-controller.php ``get_formatted_item_data()`` (line items
and the other extra fields are built only when named exactly). Citations in ``sandbox/shop/fields.py``.
"""

import httpx
import pytest

from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox
from sandbox.shop.fields import filter_item, tree


@pytest.fixture
def shop():
    sandbox = WooCommerceSandbox(consumer_key="ck_t", consumer_secret="cs_t")
    card = sandbox.add_product("王者荣耀 点券 60元", "60.00")
    key = sandbox.add_product("Elden Ring Steam Key", "199.00")
    alice = sandbox.add_customer("alice@example.com", "Alice", "Liu", username="alice")
    sandbox.alice_order = sandbox.add_order(customer_id=alice, items=[(card, 1), (key, 2)], status="completed")  # type: ignore[attr-defined]
    sandbox.guest_order = sandbox.add_order(email="bob@example.com", items=[(key, 1)])  # type: ignore[attr-defined]
    with SandboxServer(sandbox.app) as server:
        sandbox.api = httpx.Client(base_url=server.url + "/wp-json/wc/v3", auth=("ck_t", "cs_t"))  # type: ignore[attr-defined]
        yield sandbox


def orders(shop, **params):
    response = shop.api.get("/orders", params={"orderby": "id", "order": "asc", **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_full_orders_carry_every_field_of_a_real_woocommerce_order(shop):
    (full, _) = orders(shop)
    # WC_REST_Orders_V2_Controller::get_formatted_item_data()'s $allowed_fields, then _links
    assert list(full)[:3] == ["id", "parent_id", "number"] and list(full)[-1] == "_links"
    for key in ("customer_ip_address", "customer_user_agent", "payment_url", "is_editable", "needs_processing"):
        assert key in full
    assert full["billing"]["phone"] and full["billing"]["address_1"]
    assert set(full["line_items"][0]) >= {"meta_data", "taxes", "sku", "price", "image", "parent_name"}
    assert set(full["_links"]) == {"self", "collection", "customer"}  # alice is a registered customer
    assert len(httpx.Response(200, json=full).content) > 3000  # as large as a real order, so the bench floor is honest


def test_nested_fields_trim_each_item_of_a_collection(shop):
    listed = orders(shop, _fields="id,billing.email,total")
    assert listed == [
        {"id": shop.alice_order, "total": "458.00", "billing": {"email": "alice@example.com"}},
        {"id": shop.guest_order, "total": "199.00", "billing": {"email": "bob@example.com"}},
    ]
    assert "_links" not in listed[0]  # folded into each item before the filter, so trimmed like any field


def test_the_array_form_and_whitespace_are_lists_too(shop):
    as_array = shop.api.get("/orders", params=[("_fields[]", "id"), ("_fields[]", "status")]).json()
    assert all(set(order) == {"id", "status"} for order in as_array)
    spaced = orders(shop, _fields="id, status  currency")  # wp_parse_list() splits on [\s,]+
    assert all(set(order) == {"id", "status", "currency"} for order in spaced)
    assert orders(shop, _fields="") == orders(shop)  # an empty list: the whole response


def test_unknown_fields_are_simply_absent(shop):
    assert all(set(order) == {"id"} for order in orders(shop, _fields="id,no_such_field"))
    # nothing matched: an empty PHP array, encoded as []
    assert orders(shop, _fields="no_such_field") == [[], []]
    assert orders(shop, _fields="id,billing.nope")[0] == {"id": shop.alice_order, "billing": []}


def test_line_items_come_whole_or_not_at_all(shop):
    # WooCommerce builds line items only for `line_items` itself; a dotted path into a list never matches keys
    assert all("line_items" not in order for order in orders(shop, _fields="id,line_items.product_id"))
    whole = orders(shop, _fields="id,line_items")[0]
    assert [item["product_id"] for item in whole["line_items"]] == [11, 12]
    assert whole["line_items"][0]["meta_data"][0]["key"] == "_license_key"  # the card key comes along, unread


def test_a_parent_before_its_child_ends_the_list(shop):
    # rest_filter_response_fields(): `break 2` when a parent is already kept whole: later entries are ignored
    assert orders(shop, _fields="billing,billing.email,id")[0] == {"billing": shop.order(shop.alice_order)["billing"]}
    assert orders(shop, _fields="billing.email,billing,id")[0]["billing"]["phone"]  # the parent replaces the child


def test_links_are_kept_on_a_single_object_and_on_request_in_a_collection(shop):
    single = shop.api.get(f"/orders/{shop.alice_order}", params={"_fields": "id"}).json()
    assert set(single) == {"id", "_links"}  # added after the filter: WooCommerce adds links whatever _fields says
    with_links = orders(shop, _fields="id,_links.self")[0]
    assert set(with_links) == {"id", "_links"} and set(with_links["_links"]) == {"self"}


def test_customers_reviews_and_products_are_trimmed_too(shop):
    (customer,) = shop.api.get("/customers", params={"_fields": "id,email,username", "role": "all"}).json()
    assert customer == {"id": 101, "email": "alice@example.com", "username": "alice"}
    products = shop.api.get("/products", params={"_fields": "id,name"}).json()
    assert products == [{"id": 11, "name": "王者荣耀 点券 60元"}, {"id": 12, "name": "Elden Ring Steam Key"}]
    single = shop.api.get("/customers/101", params={"_fields": "email"}).json()
    assert single == {"email": "alice@example.com"}


def test_a_site_older_than_wordpress_4_8_answers_every_field(shop):
    shop.honour_fields = False
    assert orders(shop, _fields="id") == orders(shop)
    assert "billing" in orders(shop, _fields="id")[0]


def test_the_filter_follows_rest_filter_response_fields():
    assert tree(["a.b", "a.c", "d"]) == {"a": {"b": True, "c": True}, "d": True}
    assert tree(["a", "a.b", "d"]) == {"a": True}  # break 2
    record = {"items": [{"x": 1, "y": 2}, {"x": 3}], "n": 5}
    assert filter_item(record, ["items.0.x"]) == {"items": [{"x": 1}]}  # PHP list keys are indexes
    assert filter_item(record, ["items.1"]) == {"items": {"1": {"x": 3}}}  # not from 0: an object
    assert filter_item(record, ["n.deeper"]) == {"n": 5}  # a path into a scalar keeps the scalar

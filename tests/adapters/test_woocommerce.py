"""WooCommerce adapter: allow-list, status mapping, incremental walk, quarantine (respx, documented shapes)."""

import copy
import json
from pathlib import Path

import httpx
import pytest
import respx

from adapters.shops.woocommerce import MalformedRecord, WooCommerceSettings, WooCommerceShop, parse_order
from connector.core.http import RemoteError
from connector.core.models import OrderStatus

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
BASE = "https://shop.example.com"
ORDERS = f"{BASE}/wp-json/wc/v3/orders"


def sample(name):
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture
def shop():
    return WooCommerceShop(
        WooCommerceSettings(kind="woocommerce", base_url=BASE, consumer_key="ck_x", consumer_secret="cs_y", page_size=2)
    )


def test_documented_order_maps_to_allow_listed_fields():
    order = parse_order(sample("order_retrieve_727_processing.json"))
    assert order.id == "727" and order.status is OrderStatus.PAID
    assert order.customer_key == "e:john.doe@example.com"  # guest (customer_id 0) keyed by billing email
    assert order.product_ids == {"93", "22"}
    assert order.modified_at.isoformat() == "2017-03-22T19:28:08+00:00"  # the GMT field, not site-local
    dumped = order.model_dump_json()
    for secret in ("969 Market", "(555) 555-5555", "bacs", "Direct Bank Transfer", "San Francisco"):
        assert secret not in dumped


def test_status_mapping():
    record = sample("order_retrieve_727_processing.json")
    for status, expected in [
        ("completed", OrderStatus.PAID),
        ("refunded", OrderStatus.REFUNDED),
        ("cancelled", OrderStatus.CANCELLED),
        ("on-hold", OrderStatus.UNPAID),
    ]:
        assert parse_order({**record, "status": status}).status is expected


def test_malformed_records_are_rejected_with_a_reason():
    record = sample("order_retrieve_727_processing.json")
    with pytest.raises(MalformedRecord, match="unknown order status"):
        parse_order({**record, "status": "wc-weird"})
    guest = copy.deepcopy(record)
    guest["billing"]["email"] = ""
    with pytest.raises(MalformedRecord, match="guest order without a billing email"):
        parse_order(guest)
    with pytest.raises(MalformedRecord, match="date_modified_gmt"):
        parse_order({**record, "date_modified_gmt": "yesterday"})


@respx.mock
def test_incremental_walk_uses_modified_after_and_basic_auth(shop):
    first = sample("orders_list_page.json")  # two orders: a full page at page_size=2
    a, b = sorted(first, key=lambda o: o["date_modified_gmt"])
    trash = respx.get(ORDERS, params={"status": "trash"}).mock(return_value=httpx.Response(200, json=[]))
    route = respx.get(ORDERS).mock(side_effect=[httpx.Response(200, json=[a, b]), httpx.Response(200, json=[])])
    pages = list(shop.order_pages("2017-03-01T00:00:00Z"))
    first_params = route.calls[0].request.url.params
    assert first_params["orderby"] == "modified" and first_params["order"] == "asc"
    assert first_params["dates_are_gmt"] == "true"
    # lookback (300 s) and the one-second step for WordPress's exclusive bound
    assert first_params["modified_after"] == "2017-02-28T23:54:59"
    second_params = route.calls[1].request.url.params
    assert second_params["modified_after"] == "2017-03-22T19:28:07"  # walks from the newest seen, page 1
    assert second_params["page"] == "1"
    assert route.calls[0].request.headers["Authorization"].startswith("Basic ")
    # the trash since the same bound is read first, and its (empty) page keeps the cursor where it was
    assert trash.calls[0].request.url.params["modified_after"] == "2017-02-28T23:54:59"
    assert pages[0].cursor is None and pages[1].cursor == "2017-03-22T19:28:08Z"


@respx.mock
def test_a_full_page_in_one_second_steps_by_page(shop):
    order = sample("order_retrieve_727_processing.json")
    same = [{**order, "id": 1}, {**order, "id": 2}]
    respx.get(ORDERS, params={"status": "trash"}).mock(return_value=httpx.Response(200, json=[]))
    route = respx.get(ORDERS).mock(
        side_effect=[httpx.Response(200, json=same), httpx.Response(200, json=same), httpx.Response(200, json=[])]
    )
    list(shop.order_pages(None))
    # page 1 from the start, page 1 from the new bound (no progress: the whole page shares one second), then page 2
    assert [c.request.url.params["page"] for c in route.calls] == ["1", "1", "2"]


@respx.mock
def test_bad_record_is_quarantined_and_the_page_goes_on(shop):
    good = sample("order_retrieve_727_processing.json")
    bad = {**good, "id": 728, "status": "wc-exploded"}
    respx.get(ORDERS, params={"status": "trash"}).mock(return_value=httpx.Response(200, json=[]))
    respx.get(ORDERS).mock(return_value=httpx.Response(200, json=[bad]))
    page = list(shop.order_pages(None))[1]
    assert [o.id for o in page.orders] == []
    assert page.quarantined[0].record_id == "728" and "unknown order status" in page.quarantined[0].reason


@respx.mock
def test_401_body_is_reported(shop):
    respx.get(ORDERS).mock(
        return_value=httpx.Response(
            401,
            json={
                "code": "woocommerce_rest_authentication_error",
                "message": "Consumer key is invalid.",
                "data": {"status": 401},
            },
        )
    )
    with pytest.raises(RemoteError, match="Consumer key is invalid"):
        list(shop.order_pages(None))


@respx.mock
def test_customer_profiles_by_include(shop):
    route = respx.get(f"{BASE}/wp-json/wc/v3/customers").mock(
        return_value=httpx.Response(200, json=sample("customers_list.json"))
    )
    found, missing = shop.customer_profiles(["c:26", "c:25", "c:999"])
    assert {c.key for c in found} == {"c:26", "c:25"}
    assert missing == ["c:999"]
    assert route.calls.last.request.url.params["include"] == "26,25,999"
    assert all("Av. Brasil" not in c.model_dump_json() for c in found)


@respx.mock
def test_by_id_reads_ask_the_trash_for_what_include_left_out(shop):
    order = sample("order_retrieve_727_processing.json")
    live, trashed = {**order, "id": 1}, {**order, "id": 2, "status": "trash"}
    trash = respx.get(ORDERS, params={"status": "trash"}).mock(return_value=httpx.Response(200, json=[trashed]))
    listed = respx.get(ORDERS, params={"status": "any"}).mock(return_value=httpx.Response(200, json=[live]))
    page = shop.orders_present(["1", "2", "3"])
    assert {o.id: o.status for o in page.orders} == {"1": OrderStatus.PAID, "2": OrderStatus.DELETED}  # 3: gone
    assert listed.calls[0].request.url.params["include"] == "1,2,3"
    assert trash.calls[0].request.url.params["include"] == "2,3"  # only what include= did not answer
    shop.orders_by_id(["1"])
    assert trash.call_count == 1  # every id answered: no trash read

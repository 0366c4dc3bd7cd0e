"""Bounded walks through shop pages (issue 12, items 2 and 7): the configured origin only, no page twice, at most
``max_pages``, and an answer that is not JSON reported instead of raised (respx)."""

import httpx
import pytest
import respx

from adapters.base import OrderPage
from adapters.shops.paging import PageGuard, PagingError, cursor_value
from adapters.shops.rest import RestShop, RestShopSettings
from adapters.shops.sellix import SellixSettings, SellixShop
from adapters.shops.woocommerce import WooCommerceSettings, WooCommerceShop
from connector.core.http import RemoteError
from tests.adapters.test_rest import BASE, FIELDS, rec
from tests.adapters.test_woocommerce import sample


def rest(pagination, **keys):
    return RestShop(
        RestShopSettings(
            kind="rest",
            base_url=BASE,
            rest={
                "status_map": {"ok": "paid"},
                "fields": FIELDS,
                "time_format": "iso",
                "orders": {"path": "/orders", "records": "data", "pagination": pagination},
                "auth": {"type": "bearer", "token": "t0k"},
            },
            **keys,
        )
    )


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example.com/orders?page=2",
        "http://shop.example.com/orders?page=2",  # the scheme is part of the origin
        "https://shop.example.com:8443/orders",  # and so is the port
        "//evil.example.com/orders",
        "https://shop.example.com.evil.example/orders",
    ],
)
def test_links_off_the_origin_are_refused(link):
    guard = PageGuard("rest-shop", BASE, "/orders")
    with pytest.raises(PagingError, match=r"is not on the shop's origin https://shop\.example\.com") as caught:
        guard.follow(httpx.URL(f"{BASE}/orders"), link)
    assert "page=2" not in str(caught.value)  # the query (which may echo a signature) is not repeated


def test_links_on_the_origin_resolve_relative_to_the_page():
    guard = PageGuard("rest-shop", f"{BASE}/api/", "/orders")
    current = httpx.URL(f"{BASE}/api/orders?page=1")
    assert str(guard.follow(current, "?page=2")) == f"{BASE}/api/orders?page=2"
    assert str(guard.follow(current, "/api/orders/2")) == f"{BASE}/api/orders/2"
    assert str(guard.follow(current, "https://SHOP.example.com:443/x")) == f"{BASE}/x"
    for broken in ({"url": "x"}, ["x"], 7):
        with pytest.raises(PagingError, match="not a URL"):
            guard.follow(current, broken)


def test_cursor_values():
    assert [cursor_value(v) for v in (None, "", 0, False, "abc", 42, 1.5)] == [
        None,
        None,
        None,
        None,
        "abc",
        "42",
        "1.5",
    ]
    for broken in ({"a": 1}, [1], float("nan"), True):
        with pytest.raises(ValueError, match="is not a cursor"):
            cursor_value(broken)


@respx.mock
def test_rest_link_header_to_another_host_is_not_requested():
    respx.get(f"{BASE}/orders").mock(
        return_value=httpx.Response(
            200, json={"data": [rec(1)]}, headers={"Link": '<https://evil.example/o>; rel="next"'}
        )
    )
    evil = respx.get("https://evil.example/o").mock(return_value=httpx.Response(200, json={"data": []}))
    pages = rest({"type": "link"}).order_pages(None)
    assert [o.id for o in next(pages).orders] == ["1"]
    with pytest.raises(PagingError, match=r"the next page https://evil.example/o is not on the shop's origin"):
        next(pages)
    assert not evil.called


@respx.mock
def test_rest_cursor_that_is_no_cursor_is_an_error():
    respx.get(f"{BASE}/orders").mock(return_value=httpx.Response(200, json={"data": [rec(1)], "next": {"x": 1}}))
    with pytest.raises(PagingError, match=r"the next cursor at 'next': a dict is not a cursor"):
        list(rest({"type": "cursor", "next_path": "next"}).order_pages(None))


@respx.mock
def test_rest_answer_that_is_not_json_is_a_remote_error():
    respx.get(f"{BASE}/orders").mock(return_value=httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(RemoteError, match="the answer is not JSON"):
        list(rest({"type": "page"}).order_pages(None))
    respx.get(f"{BASE}/orders").mock(return_value=httpx.Response(200, text="[" * 100_000 + "]" * 100_000))
    with pytest.raises(RemoteError, match="the answer is not JSON"):
        list(rest({"type": "page"}).order_pages(None))


@respx.mock
def test_woocommerce_that_ignores_paging_is_stopped():
    order = sample("order_retrieve_727_processing.json")
    same = [{**order, "id": 1}, {**order, "id": 2}]  # one second, a full page, whatever page is asked for
    respx.get(f"{BASE}/wp-json/wc/v3/orders", params={"status": "trash"}).mock(
        return_value=httpx.Response(200, json=[])
    )
    route = respx.get(f"{BASE}/wp-json/wc/v3/orders").mock(return_value=httpx.Response(200, json=same))
    shop = WooCommerceShop(WooCommerceSettings(kind="woocommerce", base_url=BASE, page_size=2))
    with pytest.raises(PagingError, match="page 2 answered the orders of page 1: the shop ignores paging"):
        list(shop.order_pages(None))
    assert route.call_count == 3  # page 1, page 1 from the new bound, page 2


@respx.mock
def test_woocommerce_max_pages():
    order = sample("order_retrieve_727_processing.json")
    pages = [[{**order, "id": 2 * n}, {**order, "id": 2 * n + 1}] for n in range(10)]
    respx.get(f"{BASE}/wp-json/wc/v3/orders", params={"status": "trash"}).mock(
        return_value=httpx.Response(200, json=[])
    )
    respx.get(f"{BASE}/wp-json/wc/v3/orders").mock(side_effect=[httpx.Response(200, json=p) for p in pages])
    shop = WooCommerceShop(WooCommerceSettings(kind="woocommerce", base_url=BASE, page_size=2, max_pages=4))
    read = []
    with pytest.raises(PagingError, match=r"stopped after 4 pages \(max_pages = 4\)"):
        for page in shop.order_pages(None):
            read.append(page)
    assert len(read) == 5  # the (empty) trash page, then 4 pages of the walk


@respx.mock
def test_sellix_that_ignores_paging_is_stopped():
    order = {"uniqid": "a1", "status": "COMPLETED", "customer_email": "a@example.com", "created_at": 1_790_000_000}
    route = respx.get("https://dev.sellix.io/v1/orders").mock(
        return_value=httpx.Response(200, json={"status": 200, "data": {"orders": [order]}})
    )
    shop = SellixShop(SellixSettings(kind="sellix", api_key="k"))
    with pytest.raises(PagingError, match="page 2 answered the records of page 1"):
        list(shop.order_pages(None))
    assert route.call_count == 2


def test_a_page_keeps_one_record_per_id():
    from datetime import UTC, datetime

    from connector.core.models import Order, OrderStatus

    def order(total):
        moment = datetime(2026, 11, 1, tzinfo=UTC)
        return Order(
            id="7",
            customer_key="e:a@example.com",
            email="a@example.com",
            status=OrderStatus.PAID,
            total=total,
            currency="CNY",
            created_at=moment,
            modified_at=moment,
            lines=(),
        )

    page = OrderPage(orders=[order("1.00"), order("2.00")])  # a shop listing an order once per line item
    assert [o.total for o in page.orders] == ["2.00"]

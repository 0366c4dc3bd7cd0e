"""What a failed call says: the remote's reason without markup, the URL without credentials, the key to change; and a
remote that does not answer costs one retry budget, not one per request."""

import time

import httpx
import pytest
import respx

from connector.core.http import RemoteClient, RemoteDown, RemoteError, describe_body
from connector.core.http_text import REASON_CHARS, shown_url

BASE = "https://shop.example.com/wp-json/wc/v3"


def test_an_html_error_page_is_shown_by_its_title():
    page = (
        "<html><head><title>502 Bad Gateway &amp; more</title><style>p{}</style></head><body><h1>x</h1></body></html>"
    )
    assert describe_body(page) == "502 Bad Gateway & more"


def test_an_html_page_without_a_title_is_shown_as_its_text_without_markup():
    page = "<body><script>var a = '<b>';</script><h1>Service   Unavailable</h1><p>try <b>later</b></p></body>"
    assert describe_body(page) == "Service Unavailable try later"


def test_reasons_are_bounded_and_on_one_line():
    said = describe_body({"message": "line one\n" + "x" * 5000})
    assert "\n" not in said and len(said) <= REASON_CHARS
    assert len(describe_body("<title>" + "y" * 5000 + "</title>")) <= REASON_CHARS


def test_a_shown_url_has_no_credentials_and_no_query_string():
    url = "https://ck_1:cs_2@shop.example.com:8443/wp-json/wc/v3/orders?consumer_secret=cs_2&email=a%40b.c"
    assert shown_url(url) == "https://shop.example.com:8443/wp-json/wc/v3/orders"


@respx.mock
def test_an_error_status_names_the_url_and_the_page_title():
    respx.get(f"{BASE}/orders").mock(
        return_value=httpx.Response(
            404, text="<html><title>Not here</title></html>", headers={"content-type": "text/html"}
        )
    )
    client = RemoteClient("woocommerce", BASE, sleep=lambda s: None)
    with pytest.raises(RemoteError) as info:
        client.request("GET", "/orders", params={"consumer_secret": "cs_2"})
    assert str(info.value) == f"woocommerce: GET {BASE}/orders answered 404 Not Found: Not here"


@respx.mock
def test_retries_end_within_max_retry_seconds_and_the_message_names_the_keys():
    def slow(request):
        time.sleep(0.4)
        raise httpx.ReadTimeout("timed out", request=request)

    route = respx.get(f"{BASE}/orders").mock(side_effect=slow)
    client = RemoteClient("woocommerce", BASE, timeout=1, attempts=50, max_retry_seconds=2.5, keys="[shop]")
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout) as info:
        client.request("GET", "/orders")
    assert time.monotonic() - started < 15  # about 2.5 s; never 50 attempts
    assert route.call_count < 10
    message = str(info.value)
    assert message.startswith(f"GET {BASE}/orders timed out after 1 s reading the answer ([shop] timeout_seconds)")
    assert "[shop] max_retry_seconds" in message


@respx.mock
def test_after_a_remote_failed_to_answer_the_next_request_is_not_sent():
    route = respx.get(f"{BASE}/orders").mock(side_effect=httpx.ConnectTimeout("timed out"))
    client = RemoteClient("woocommerce", BASE, attempts=2, max_retry_seconds=30, keys="[shop]", sleep=lambda s: None)
    with pytest.raises(httpx.ConnectTimeout) as first:
        client.request("GET", "/orders")
    assert "could not connect within 5 s ([shop] connect_timeout_seconds)" in str(first.value)
    sent = route.call_count
    with pytest.raises(RemoteDown) as again:
        client.request("GET", "/orders")
    assert route.call_count == sent
    assert "could not connect" in str(again.value) and "not asked again" in str(again.value)


class SlowBudget:
    """Paces every request by a real wait (a remote's request budget): pacing is not failing."""

    def acquire(self, method, path, max_wait=None):
        time.sleep(1.2)

    def observe(self, method, path, response):
        pass

    def penalise(self, seconds, response=None, method="", path=""):
        pass


@respx.mock
def test_time_spent_waiting_for_the_request_budget_does_not_use_up_the_retry_time():
    route = respx.get(f"{BASE}/orders").mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=[])])
    client = RemoteClient("woocommerce", BASE, budget=SlowBudget(), max_retry_seconds=1.0, sleep=lambda s: None)
    assert client.request("GET", "/orders").json() == []
    assert route.call_count == 2

"""The external-id lookup's redirect: followed once on the forum's origin (a subfolder install's Location carries the
subfolder), never to another host with the Api-Key."""

import httpx
import pytest
import respx

from adapters.communities.discourse_client import DiscourseClient
from connector.core.http import RemoteError

BASE = "https://forum.example.com/forum"
TOPIC = {"id": 12, "title": "Verified reviews: Elden Ring Steam Key", "post_stream": {"stream": [101]}}


@pytest.fixture
def client():
    return DiscourseClient(BASE, "secret-key", "system", requests_per_minute=None, sleep=lambda s: None)


def moved(location):
    return httpx.Response(301, headers={"Location": location}, text="<html>You are being redirected</html>")


@pytest.mark.parametrize(
    "location",
    [
        "https://forum.example.com/forum/t/verified-reviews-elden-ring-steam-key/12.json",  # what Rails answers
        "https://forum.example.com:443/forum/t/verified-reviews-elden-ring-steam-key/12.json",
        "/forum/t/verified-reviews-elden-ring-steam-key/12",  # a path, without .json
    ],
)
@respx.mock
def test_the_redirect_of_a_subfolder_forum_is_followed_once_without_doubling_the_subfolder(client, location):
    respx.get(f"{BASE}/t/external_id/shop-product-42.json").mock(return_value=moved(location))
    topic = respx.get(f"{BASE}/t/verified-reviews-elden-ring-steam-key/12.json").mock(
        return_value=httpx.Response(200, json=TOPIC)
    )
    found = client.topic_by_external_id("shop-product-42")
    assert found is not None and found["id"] == 12
    assert (
        topic.call_count == 1
        and topic.calls.last.request.url.path == "/forum/t/verified-reviews-elden-ring-steam-key/12.json"
    )


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example/forum/t/x/12.json",
        "http://forum.example.com/forum/t/x/12.json",  # another scheme: another origin
        "https://forum.example.com:8443/forum/t/x/12.json",
        "//evil.example/t/x/12.json",
    ],
)
def test_a_redirect_off_the_forum_is_refused_and_the_key_goes_nowhere(client, location):
    with respx.mock(assert_all_called=False) as mock:
        mock.get(f"{BASE}/t/external_id/shop-product-42.json").mock(return_value=moved(location))
        anywhere_else = mock.route().mock(return_value=httpx.Response(200, json=TOPIC))
        with pytest.raises(RemoteError) as refused:
            client.topic_by_external_id("shop-product-42")
    assert refused.value.status == 301
    assert not anywhere_else.called
    assert "secret-key" not in str(refused.value)


@respx.mock
def test_an_external_id_the_forum_cannot_hold_is_not_looked_up(client):
    assert client.topic_by_external_id("shop-product-王者荣耀") is None  # the route answers 404 to it anyway


@respx.mock
def test_a_topic_is_gone_only_when_the_forum_says_so(client):
    respx.get(f"{BASE}/t/1.json").mock(return_value=httpx.Response(200, json={**TOPIC, "deleted_at": None}))
    respx.get(f"{BASE}/t/2.json").mock(return_value=httpx.Response(200, json={**TOPIC, "deleted_at": "2026-11-30"}))
    respx.get(f"{BASE}/t/3.json").mock(return_value=httpx.Response(404, json={"errors": ["not found"]}))
    respx.get(f"{BASE}/t/4.json").mock(return_value=httpx.Response(403, json={"error_type": "invalid_access"}))
    assert (client.topic_gone(1), client.topic_gone(2), client.topic_gone(3)) == (False, True, True)
    with pytest.raises(RemoteError):
        client.topic_gone(4)  # a key that lost its rights says nothing about the topic

"""Discord client and OAuth2 client against the documented request and response shapes (respx)."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest
import respx

from adapters.communities.discord_client import API, DiscordClient, DiscordOAuth, OAuthError, route_key


@pytest.fixture
def oauth():
    return DiscordOAuth("700000000000000001", "client-secret", API, "https://discord.com", clock=lambda: 1000.0)


def test_authorize_url_has_the_code_flow_parameters(oauth):
    url = httpx.URL(oauth.authorize_url("https://bridge.example.com/link/callback", ["identify", "guilds.join"], "st"))
    assert str(url).startswith("https://discord.com/oauth2/authorize?")
    assert dict(url.params) == {
        "response_type": "code",
        "client_id": "700000000000000001",
        "scope": "identify guilds.join",
        "state": "st",
        "redirect_uri": "https://bridge.example.com/link/callback",
        "prompt": "consent",
    }


@respx.mock
def test_code_exchange_is_form_encoded_with_client_credentials(oauth):
    route = respx.post(f"{API}/oauth2/token").mock(
        return_value=httpx.Response(
            200,
            json={
                "access_token": "at",
                "token_type": "Bearer",
                "expires_in": 604800,
                "refresh_token": "rt",
                "scope": "identify role_connections.write",
            },
        )
    )
    tokens = oauth.exchange("the-code", "https://bridge.example.com/link/callback")
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert form == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "client_id": "700000000000000001",
        "redirect_uri": "https://bridge.example.com/link/callback",
        "client_secret": "client-secret",
    }
    assert tokens.access_token == "at" and tokens.refresh_token == "rt" and tokens.expires_at == 1000.0 + 604800
    assert tokens.scopes == {"identify", "role_connections.write"}


@respx.mock
def test_invalid_grant_is_an_oauth_error_not_retried(oauth):
    route = respx.post(f"{API}/oauth2/token").mock(
        return_value=httpx.Response(
            400, json={"error": "invalid_grant", "error_description": 'Invalid "code" in request.'}
        )
    )
    with pytest.raises(OAuthError) as raised:
        oauth.refresh("old")
    assert raised.value.error == "invalid_grant" and route.call_count == 1


@respx.mock
def test_role_connection_uses_the_members_bearer_token(oauth):
    route = respx.put(f"{API}/users/@me/applications/700000000000000001/role-connection").mock(
        return_value=httpx.Response(200, json={"platform_name": "Shop", "platform_username": None, "metadata": {}})
    )
    oauth.set_role_connection("member-token", {"platform_name": "Shop", "metadata": {"points": "5"}})
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer member-token"
    assert request.headers["user-agent"].startswith("DiscordBot (")


@respx.mock
def test_forum_thread_and_message_calls():
    client = DiscordClient("bot-token", sleep=lambda s: None)
    thread = respx.post(f"{API}/channels/11/threads").mock(return_value=httpx.Response(201, json={"id": "22"}))
    message = respx.post(f"{API}/channels/22/messages").mock(return_value=httpx.Response(200, json={"id": "33"}))
    assert client.start_thread("11", "Reviews: X", {"content": "hi"}, ["5"], "why")["id"] == "22"
    assert client.send_message("22", {"content": "r"})["id"] == "33"
    assert thread.calls.last.request.headers["x-audit-log-reason"] == "why"
    assert thread.calls.last.request.headers["authorization"] == "Bot bot-token"
    assert message.called


def test_route_keys_keep_the_major_parameter_only():
    assert route_key("PATCH", "/channels/11/messages/33") == "PATCH channels/11/messages/{id}"
    assert route_key("PUT", "/guilds/1/members/2/roles/3") == "PUT guilds/1/members/{id}/roles/{id}"

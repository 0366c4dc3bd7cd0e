"""Discord community adapter: typed payloads, capabilities, its own settings (respx, documented shapes)."""

import json

import httpx
import pytest
import respx

from adapters.base import (
    Action,
    CommunityAdapter,
    HolderListing,
    MemberAuthorization,
    MemberCheck,
    MemoryCache,
    PostReader,
    ThreadCheck,
    UserLookup,
)
from adapters.communities.discord import DiscordCommunity, DiscordSettings
from adapters.communities.discord_client import API
from adapters.communities.discord_constants import NO_PINGS, RECORDS, SUPPRESS_EMBEDS
from connector.core.config import ConfigError, validate_table
from connector.core.payloads import DiscordPost, RoleConnection, ScoreEvent, Skip, Unsendable

GUILD, APP = "100000000000000001", "700000000000000001"


def settings(**keys):
    return DiscordSettings(kind="discord", bot_token="bot", guild_id=GUILD, **keys)


@pytest.fixture
def discord():
    return DiscordCommunity(
        "chat", settings(application_id=APP, client_secret="s"), cache=MemoryCache(), sleep=lambda s: None
    )


def review(**changes):
    values = {
        "raw": "★★★★★ great\n-# review 7",
        "hash": "h1",
        "marker": "-# review 7",
        "forum_channel": "300",
        "thread_per": "product",
        "tags": (),
        "verified_tag": None,
        "verified": True,
        "post_id": None,
        "thread_id": None,
        "topic_id": "400",
        "thread_name": "Game Key · #7",
        "topic_title": "Game Key",
        "topic_intro": "Reviews of Game Key",
        "product_id": "3",
    }
    return DiscordPost(**(values | changes))


def test_settings_are_its_own_model_and_name_the_key():
    assert DiscordCommunity.settings is DiscordSettings
    with pytest.raises(ConfigError, match=r'communities.chat.guild_id: is required for kind = "discord"'):
        validate_table(DiscordSettings, {"kind": "discord", "bot_token": "t"}, "communities.chat")
    with pytest.raises(ConfigError, match=r"communities.chat.api_username: unknown key"):
        validate_table(
            DiscordSettings,
            {"kind": "discord", "bot_token": "t", "guild_id": "1", "api_username": "x"},
            "communities.chat",
        )
    assert settings().missing_for("link") == ["application_id", "client_secret"]
    assert settings(application_id=APP, client_secret="s").missing_for("link") == []
    assert settings().api_base == API and settings().oauth_base == "https://discord.com"


def test_capabilities_are_protocols(discord):
    assert isinstance(discord, CommunityAdapter)
    for capability in (MemberCheck, ThreadCheck, UserLookup, MemberAuthorization):
        assert isinstance(discord, capability), capability.__name__
    for capability in (HolderListing, PostReader):
        assert not isinstance(discord, capability), capability.__name__
    assert DiscordCommunity("chat", settings()).oauth is None  # no application: no link page


@respx.mock
def test_skip_unsendable_and_wrong_payloads_make_no_call(discord):
    outcomes = discord.apply(
        [
            Action(1, "review", "7", "create", "u", payload=Skip()),
            Action(2, "role_connection", "c:1", "set", "u", payload=Unsendable("the member's link was removed")),
            Action(3, "review", "7", "create", "u", payload=ScoreEvent(None, 1, "d", "x")),
            Action(4, "review", "7", "create", "u", payload=review(forum_channel=None)),
        ]
    )
    assert outcomes[0].ok and outcomes[0].data == {"skipped": True}
    assert outcomes[1].permanent and outcomes[1].error == "the member's link was removed"
    assert outcomes[2].permanent and outcomes[2].error == "a 'review' action needs a DiscordPost, got ScoreEvent"
    assert outcomes[3].permanent and outcomes[3].error == "no [reviews] forum_channel for this community"
    assert not respx.calls


@respx.mock
def test_a_review_message_never_pings_and_does_not_unfurl(discord):
    send = respx.post(f"{API}/channels/400/messages").mock(return_value=httpx.Response(200, json={"id": "900"}))
    # The thread is read for the review's marker first (another state store may have posted it): not there.
    respx.get(f"{API}/users/@me").mock(return_value=httpx.Response(200, json={"id": APP, "bot": True}))
    respx.get(f"{API}/channels/400/messages").mock(return_value=httpx.Response(200, json=[]))
    [outcome] = discord.apply([Action(1, "review", "7", "create", "u", payload=review())])
    assert outcome.ok and outcome.data["post_id"] == "900" and outcome.data["thread_id"] == "400"
    assert json.loads(send.calls.last.request.content) == {
        "content": review().raw,
        "allowed_mentions": NO_PINGS,
        "flags": SUPPRESS_EMBEDS,
    }
    assert NO_PINGS == {"parse": []} and SUPPRESS_EMBEDS == 4


@respx.mock
def test_role_connection_registers_records_and_renews_a_refused_token(discord):
    respx.get(f"{API}/applications/{APP}/role-connections/metadata").mock(return_value=httpx.Response(200, json=[]))
    records = respx.put(f"{API}/applications/{APP}/role-connections/metadata").mock(
        return_value=httpx.Response(200, json=RECORDS)
    )
    route = respx.put(f"{API}/users/@me/applications/{APP}/role-connection").mock(
        side_effect=[httpx.Response(401, json={"message": "401: Unauthorized"}), httpx.Response(200, json={})]
    )
    payload = RoleConnection("old", {"verified_buyer": "1"}, "h", "Shop", renew=lambda: "fresh")
    [outcome] = discord.apply([Action(1, "role_connection", "c:1", "set", "u", payload=payload)])
    assert outcome.ok and outcome.data == {"hash": "h"}
    assert json.loads(records.calls.last.request.content) == RECORDS
    assert [c.request.headers["Authorization"] for c in route.calls] == ["Bearer old", "Bearer fresh"]
    assert json.loads(route.calls.last.request.content) == {
        "platform_name": "Shop",
        "metadata": {"verified_buyer": "1"},
    }


@respx.mock
def test_a_withdrawn_authorisation_is_reported_as_revoked(discord):
    respx.get(f"{API}/applications/{APP}/role-connections/metadata").mock(
        return_value=httpx.Response(200, json=RECORDS)
    )
    respx.put(f"{API}/users/@me/applications/{APP}/role-connection").mock(
        return_value=httpx.Response(401, json={"message": "401: Unauthorized"})
    )
    payload = RoleConnection("old", {}, "h", "Shop", renew=lambda: None)
    [outcome] = discord.apply([Action(1, "role_connection", "c:1", "set", "u", payload=payload)])
    assert outcome.permanent and "must link again" in outcome.error and outcome.data["revoked"]


@respx.mock
def test_thread_check_user_lookup_and_member_authorization(discord):
    respx.get(f"{API}/channels/400").mock(return_value=httpx.Response(200, json={"id": "400"}))
    respx.get(f"{API}/channels/401").mock(
        return_value=httpx.Response(404, json={"message": "Unknown Channel", "code": 10003})
    )
    assert discord.thread_exists("400") and not discord.thread_exists("401")
    found = discord.find_user("200000000000000002")
    assert found is not None and found.user_id == found.username == "200000000000000002"
    assert discord.find_user("alice") is None  # Discord members are named by id
    join = respx.put(f"{API}/guilds/{GUILD}/members/200000000000000002").mock(return_value=httpx.Response(201))
    assert discord.add_member("200000000000000002", "member-token") is True
    assert json.loads(join.calls.last.request.content) == {"access_token": "member-token"}
    assert discord.oauth is not None and discord.oauth.oauth_base == "https://discord.com"
    assert discord.oauth.authorize_url("https://b.example/cb", ("identify",), "st").startswith(
        "https://discord.com/oauth2/authorize?"
    )


def _thread(thread_id, name, owner=APP, parent="300", archived_at=None):
    meta = {"archived": archived_at is not None, "archive_timestamp": archived_at or "2026-01-01T00:00:00+00:00"}
    return {"id": thread_id, "parent_id": parent, "name": name, "owner_id": owner, "thread_metadata": meta}


@respx.mock
def test_a_product_thread_is_remembered_before_it_is_created():
    """The time is stored before the POST and cleared once the id is stored; the name carries the marker."""
    cache = MemoryCache()
    discord = DiscordCommunity("chat", settings(), cache=cache, sleep=lambda s: None)
    seen = []

    def start(request):
        seen.append((cache.get("thread_creating", "3"), json.loads(request.content)["name"]))
        return httpx.Response(201, json={"id": "500"})

    respx.post(f"{API}/channels/300/threads").mock(side_effect=start)
    respx.post(f"{API}/channels/500/messages").mock(return_value=httpx.Response(200, json={"id": "901"}))
    # Not known to this store: the bot's threads are looked through first (a lost store may have opened it).
    respx.get(f"{API}/users/@me").mock(return_value=httpx.Response(200, json={"id": APP, "bot": True}))
    respx.get(f"{API}/guilds/{GUILD}/threads/active").mock(
        return_value=httpx.Response(200, json={"threads": [], "members": []})
    )
    respx.get(f"{API}/channels/300/threads/archived/public").mock(
        return_value=httpx.Response(200, json={"threads": [], "members": [], "has_more": False})
    )
    [outcome] = discord.apply([Action(1, "review", "7", "create", "u", payload=review(topic_id=None))])
    assert outcome.ok and outcome.data["topic_id"] == "500"
    [(creating, name)] = seen
    assert creating is not None and name == "Game Key · #p3"
    assert cache.get("thread", "3") == "500" and cache.get("thread_creating", "3") is None


@respx.mock
def test_after_a_lost_answer_the_bots_thread_is_found_not_a_members_and_not_created_again():
    cache = MemoryCache()
    cache.set("thread_creating", "3", "1767225600")  # 2026-01-01T00:00:00Z: a creation began and was never recorded
    discord = DiscordCommunity("chat", settings(), cache=cache, sleep=lambda s: None)
    respx.get(f"{API}/users/@me").mock(return_value=httpx.Response(200, json={"id": APP, "bot": True}))
    respx.get(f"{API}/guilds/{GUILD}/threads/active").mock(
        return_value=httpx.Response(
            200,
            json={
                "threads": [
                    _thread("600", "Game Key · #p3", owner="555"),  # a member's post named like ours
                    _thread("601", "Game Key · #p33"),  # another product
                    _thread("602", "Game Key · #p3", parent="301"),  # another forum
                ],
                "members": [],
            },
        )
    )
    archived = respx.get(f"{API}/channels/300/threads/archived/public").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "threads": [_thread("700", "Other", archived_at="2026-01-02T00:00:00+00:00")],
                    "members": [],
                    "has_more": True,
                },
            ),
            httpx.Response(
                200,
                json={
                    "threads": [_thread("701", "Game Key · #p3", archived_at="2026-01-01T00:00:05+00:00")],
                    "members": [],
                    "has_more": True,
                },
            ),
        ]
    )
    create = respx.post(f"{API}/channels/300/threads").mock(return_value=httpx.Response(201, json={"id": "999"}))
    send = respx.post(f"{API}/channels/701/messages").mock(return_value=httpx.Response(200, json={"id": "902"}))
    respx.get(f"{API}/channels/701/messages").mock(return_value=httpx.Response(200, json=[]))  # no review in it yet
    [outcome] = discord.apply([Action(1, "review", "7", "create", "u", payload=review(topic_id=None))])
    assert outcome.ok and outcome.data["topic_id"] == "701" and send.called and not create.called
    assert [c.request.url.params.get("before") for c in archived.calls] == [None, "2026-01-02T00:00:00+00:00"]
    assert archived.calls[0].request.url.params["limit"] == "100"
    assert cache.get("thread", "3") == "701" and cache.get("thread_creating", "3") is None


@respx.mock
def test_the_archived_look_up_stops_at_the_remembered_time():
    """Threads archived more than an hour (clock skew) before the creation began cannot be it: no more pages."""
    cache = MemoryCache()
    cache.set("thread_creating", "3", "1767225600")
    discord = DiscordCommunity("chat", settings(), cache=cache, sleep=lambda s: None)
    respx.get(f"{API}/users/@me").mock(return_value=httpx.Response(200, json={"id": APP}))
    respx.get(f"{API}/guilds/{GUILD}/threads/active").mock(
        return_value=httpx.Response(200, json={"threads": [], "members": []})
    )
    archived = respx.get(f"{API}/channels/300/threads/archived/public").mock(
        return_value=httpx.Response(
            200,
            json={
                "threads": [_thread("700", "Old", archived_at="2025-12-31T22:00:00+00:00")],
                "members": [],
                "has_more": True,
            },
        )
    )
    respx.post(f"{API}/channels/300/threads").mock(return_value=httpx.Response(201, json={"id": "501"}))
    respx.post(f"{API}/channels/501/messages").mock(return_value=httpx.Response(200, json={"id": "903"}))
    [outcome] = discord.apply([Action(1, "review", "7", "create", "u", payload=review(topic_id=None))])
    assert outcome.ok and outcome.data["topic_id"] == "501"  # nothing found: created once
    assert archived.call_count == 1


@respx.mock
def test_the_archived_look_up_reads_a_bounded_number_of_pages():
    from adapters.communities.discord_reviews import ARCHIVED_PAGES

    cache = MemoryCache()
    cache.set("thread_creating", "3", "1767225600")
    discord = DiscordCommunity("chat", settings(), cache=cache, sleep=lambda s: None)
    respx.get(f"{API}/users/@me").mock(return_value=httpx.Response(200, json={"id": APP}))
    respx.get(f"{API}/guilds/{GUILD}/threads/active").mock(
        return_value=httpx.Response(200, json={"threads": [], "members": []})
    )
    pages = iter(range(10_000))

    def page(request):  # a busy forum: every page newer than the remembered time, and always more
        n = next(pages)
        stamp = f"2026-01-0{2 + n // 1000}T00:{n % 1000 // 60:02d}:{n % 60:02d}+00:00"
        return httpx.Response(
            200, json={"threads": [_thread(str(800 + n), "Other", archived_at=stamp)], "members": [], "has_more": True}
        )

    archived = respx.get(f"{API}/channels/300/threads/archived/public").mock(side_effect=page)
    respx.post(f"{API}/channels/300/threads").mock(return_value=httpx.Response(201, json={"id": "502"}))
    respx.post(f"{API}/channels/502/messages").mock(return_value=httpx.Response(200, json={"id": "904"}))
    [outcome] = discord.apply([Action(1, "review", "7", "create", "u", payload=review(topic_id=None))])
    assert outcome.ok and archived.call_count == ARCHIVED_PAGES

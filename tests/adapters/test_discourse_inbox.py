"""Personal messages to CardBridge's forum account, read and answered by the Discourse adapter over loopback: a
member's message is listed once, CardBridge's own reply never, the reply is found again by its marker, and a post in
a public topic or in someone else's PM is not a message."""

from __future__ import annotations

import httpx
import pytest

from adapters.communities.discourse import DiscourseCommunity, DiscourseSettings
from adapters.communities.discourse_webhook import private_message_post
from adapters.contributions import PrivateInbox
from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer

KEY = "inbox-key"


@pytest.fixture
def forum():
    forum = DiscourseSandbox(api_key=KEY, api_username="cardbridge")
    for name in ("alice", "bob", "carol"):
        forum.add_user(name, f"{name}@example.com", trust_level=1)
    # Members post, message and like faster here than the forum's per-user limits allow; an admin can switch them off
    # (0), as this does. tests/sandbox/test_discourse_earn.py shows them on.
    forum.rate_limit_create_topic = forum.rate_limit_create_post = 0
    forum.rate_limit_new_user_create_topic = forum.rate_limit_new_user_create_post = 0
    return forum


@pytest.fixture
def url(forum):
    with SandboxServer(forum.app) as server:
        yield server.url


@pytest.fixture
def inbox(url):
    config = DiscourseSettings(
        kind="discourse", base_url=url, api_key=KEY, api_username="cardbridge", requests_per_minute=10_000
    )
    adapter = DiscourseCommunity("forum", config, sleep=lambda s: None)
    yield adapter
    adapter.close()


def post_as(url: str, username: str, **body) -> dict:
    with httpx.Client(base_url=url, headers={"Api-Key": KEY, "Api-Username": username}, timeout=10) as http:
        response = http.post("/posts.json", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def pm(url: str, sender: str, raw: str, to: str = "cardbridge", title: str = "Redeem my points") -> dict:
    return post_as(url, sender, title=title, raw=raw, archetype="private_message", target_recipients=to)


def test_the_adapter_is_a_private_inbox(inbox):
    assert isinstance(inbox, PrivateInbox)


def test_a_members_message_is_listed_once_and_cardbridges_reply_never(url, inbox):
    sent = pm(url, "alice", "redeem 500 points please")
    messages, cursor = inbox.messages_since(None)
    assert [(m.message_id, m.sender_username, m.title, m.body) for m in messages] == [
        (str(sent["id"]), "alice", "Redeem my points", "redeem 500 points please")
    ]
    assert messages[0].conversation_id == str(sent["topic_id"])

    reply_id = inbox.reply(str(sent["topic_id"]), "Done: your code is on its way. [cb:r-1]")
    again, cursor = inbox.messages_since(cursor)
    assert again == []  # neither alice's message again nor CardBridge's own reply

    follow_up = post_as(url, "alice", topic_id=sent["topic_id"], raw="thank you, it worked fine")
    later, _ = inbox.messages_since(cursor)
    assert [m.message_id for m in later] == [str(follow_up["id"])]
    assert reply_id not in {m.message_id for m in later}


def test_messages_of_several_members_come_oldest_first(url, inbox):
    _, cursor = inbox.messages_since(None)
    first = pm(url, "alice", "redeem 100 points please")
    second = pm(url, "bob", "redeem 200 points please")
    messages, _ = inbox.messages_since(cursor)
    assert [m.message_id for m in messages] == [str(first["id"]), str(second["id"])]


def test_a_poll_reads_at_most_its_topics_and_the_next_poll_the_rest(url, forum):
    config = DiscourseSettings(kind="discourse", base_url=url, api_key=KEY, api_username="cardbridge",
                               requests_per_minute=10_000, inbox_max_topics=2)  # fmt: skip
    adapter = DiscourseCommunity("forum", config, sleep=lambda s: None)
    _, cursor = adapter.messages_since(None)
    sent = [pm(url, name, f"redeem {n}00 points please") for n, name in enumerate(["alice", "bob", "carol"], 1)]
    first, cursor = adapter.messages_since(cursor)
    rest, _ = adapter.messages_since(cursor)
    assert len(first) == 2
    assert {m.message_id for m in first} | {m.message_id for m in rest} == {str(s["id"]) for s in sent}


def test_replied_finds_the_reply_by_its_marker(url, inbox):
    sent = pm(url, "alice", "redeem 500 points please")
    assert inbox.replied(str(sent["topic_id"]), "[cb:r-1]") is None
    reply_id = inbox.reply(str(sent["topic_id"]), "Done: your code is on its way. [cb:r-1]")
    assert inbox.replied(str(sent["topic_id"]), "[cb:r-1]") == reply_id
    # a member quoting the marker is not CardBridge's reply
    post_as(url, "alice", topic_id=sent["topic_id"], raw="you wrote [cb:r-2] to me?")
    assert inbox.replied(str(sent["topic_id"]), "[cb:r-2]") is None


def test_message_refuses_public_posts_others_pms_and_its_own_reply(url, forum, inbox):
    forum.add_category("Support")
    public = post_as(url, "alice", title="A public question about codes", category="Support",
                     raw="Where do I enter a gift card code in the shop?")  # fmt: skip
    between_others = pm(url, "alice", "hello bob, how are you doing", to="bob", title="Hi Bob")
    sent = pm(url, "alice", "redeem 500 points please")
    reply_id = inbox.reply(str(sent["topic_id"]), "Done: your code is on its way. [cb:r-1]")

    assert inbox.message(str(public["id"])) is None
    assert inbox.message(str(between_others["id"])) is None  # the admin key could read it: still not ours
    assert inbox.message(reply_id) is None
    assert inbox.message("999999") is None and inbox.message("not-an-id") is None
    found = inbox.message(str(sent["id"]))
    assert found is not None and found.body == "redeem 500 points please" and found.sender_username == "alice"


def test_a_post_created_webhook_names_a_pm_post_and_nothing_else(url, forum, inbox):
    forum.add_category("Support")
    sent = pm(url, "alice", "redeem 500 points please")
    public = post_as(url, "alice", title="A public question about codes", category="Support",
                     raw="Where do I enter a gift card code in the shop?")  # fmt: skip
    reply_id = inbox.reply(str(sent["topic_id"]), "Done: your code is on its way. [cb:r-1]")

    headers, body = forum.post_created_webhook(sent["id"], "s3cret")
    assert private_message_post(headers, body, "cardbridge") == str(sent["id"])
    headers, body = forum.post_created_webhook(public["id"], "s3cret")
    assert private_message_post(headers, body, "cardbridge") is None
    headers, body = forum.post_created_webhook(int(reply_id), "s3cret")
    assert private_message_post(headers, body, "CardBridge") is None
    edited = {**headers, "x-discourse-event": "post_edited"}
    assert private_message_post(edited, body) is None

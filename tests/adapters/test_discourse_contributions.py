"""Contributions read by the Discourse adapter from the sandbox forum over loopback: posts in a category with their
likers and the likers' account ages, the accepted solution, removed posts, and a pass that stays within its limits
and its request count."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from adapters.communities.discourse import DiscourseCommunity, DiscourseSettings
from adapters.contributions import ContributionSource
from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer

KEY = "contributions-key"
SINCE = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def forum():
    forum = DiscourseSandbox(api_key=KEY, api_username="cardbridge")
    forum.add_user("alice", "alice@example.com", trust_level=1, created_at="2024-01-05T10:00:00.000Z")
    forum.add_user("bob", "bob@example.com", trust_level=1, created_at="2025-06-01T08:00:00.000Z")
    forum.add_user("carol", "carol@example.com", trust_level=1, created_at="2026-11-20T09:30:00.000Z")
    forum.add_category("Support")
    forum.add_category("Off topic")
    forum.enable_solutions("Support")
    # Members post, message and like faster here than the forum's per-user limits allow; an admin can switch them off
    # (0), as this does. tests/sandbox/test_discourse_earn.py shows them on.
    forum.rate_limit_create_topic = forum.rate_limit_create_post = 0
    forum.rate_limit_new_user_create_topic = forum.rate_limit_new_user_create_post = 0
    return forum


@pytest.fixture
def url(forum):
    with SandboxServer(forum.app) as server:
        yield server.url


def community(url: str, **settings) -> DiscourseCommunity:
    config = DiscourseSettings(
        kind="discourse", base_url=url, api_key=KEY, api_username="cardbridge", requests_per_minute=10_000, **settings
    )
    return DiscourseCommunity("forum", config, sleep=lambda s: None)


def act(url: str, username: str, method: str, path: str, **body) -> dict:
    with httpx.Client(base_url=url, headers={"Api-Key": KEY, "Api-Username": username}, timeout=10) as http:
        response = http.request(method, path, json=body or None)
    assert response.status_code == 200, response.text
    return response.json() if response.content else {}


def topic(url: str, author: str, title: str, raw: str, category: str = "Support", when: str | None = None) -> dict:
    return act(url, author, "POST", "/posts.json", title=title, raw=raw, category=category,
               **({"created_at": when} if when else {}))  # fmt: skip


def reply(url: str, author: str, topic_id: int, raw: str) -> dict:
    return act(url, author, "POST", "/posts.json", topic_id=topic_id, raw=raw)


def like(url: str, username: str, post_id: int) -> None:
    act(url, username, "POST", "/post_actions.json", id=post_id, post_action_type_id=2)


def test_the_adapter_is_a_contribution_source(url):
    assert isinstance(community(url), ContributionSource)


def test_posts_in_the_category_come_with_likers_ages_and_the_accepted_flag(url, forum):
    question = topic(url, "alice", "My gift card code says invalid", "I typed the code twice and it still fails.")
    answer = reply(url, "bob", question["topic_id"], "Codes are case sensitive: type the letters in capitals.")
    like(url, "alice", answer["id"])
    like(url, "carol", answer["id"])
    act(url, "alice", "POST", "/solution/accept.json", id=answer["id"])
    topic(url, "carol", "What games do you play this week", "Anything with friends, mostly racing games.",
          category="Off topic")  # fmt: skip

    found = {c.post_id: c for c in community(url).contributions(["Support"], SINCE)}

    assert set(found) == {str(question["id"]), str(answer["id"])}  # the other category is not read
    got = found[str(answer["id"])]
    assert (got.author_username, got.where, got.accepted, got.removed) == ("bob", "Support", True, False)
    ages = {liker.user_id: liker.joined_at for liker in got.likers}
    assert ages == {
        str(forum.user("alice")["id"]): datetime(2024, 1, 5, 10, 0, tzinfo=UTC),
        str(forum.user("carol")["id"]): datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
    }
    assert found[str(question["id"])].accepted is False and found[str(question["id"])].likers == ()


def test_deleted_hidden_and_author_deleted_posts_are_reported_removed(url, forum):
    question = topic(url, "alice", "How long does delivery take", "I paid ten minutes ago and have no code yet.")
    deleted = reply(url, "bob", question["topic_id"], "Usually a minute, check your spam folder please.")
    hidden = reply(url, "carol", question["topic_id"], "Buy from my shop instead, it is much cheaper there.")
    own = reply(url, "bob", question["topic_id"], "Sorry, wrong thread for this answer of mine here.")
    like(url, "alice", deleted["id"])
    forum.delete_post_by_hand(deleted["id"])
    forum.hide_post_by_hand(hidden["id"])
    act(url, "bob", "DELETE", f"/posts/{own['id']}.json")  # the author deletes their own reply

    found = {c.post_id: c for c in community(url).contributions(["Support"], SINCE)}

    assert found[str(deleted["id"])].removed and found[str(deleted["id"])].likers == ()
    assert found[str(hidden["id"])].removed and found[str(own["id"])].removed
    assert not found[str(question["id"])].removed


def test_every_post_of_a_topic_a_moderator_deleted_is_removed(url, forum):
    question = topic(url, "alice", "Selling my spare game codes here", "Cheap codes, message me for a price.")
    answer = reply(url, "bob", question["topic_id"], "Please do not sell codes outside the shop here.")
    like(url, "carol", answer["id"])
    forum.delete_topic_by_hand(question["topic_id"])

    found = {c.post_id: c for c in community(url).contributions(["Support"], SINCE)}

    assert set(found) == {str(question["id"]), str(answer["id"])}
    assert all(c.removed for c in found.values())
    assert found[str(answer["id"])].likers == ()  # a removed post's likers are not read


def test_posts_before_since_and_topics_not_bumped_since_are_not_read(url, forum):
    old = topic(url, "alice", "An old question from last year", "Does the shop sell game keys for consoles?",
                when="2025-10-01T10:00:00.000Z")  # fmt: skip
    fresh = topic(url, "bob", "A new question from this month", "Can I pay with a card from another country?")
    forum.reset_log()

    found = [c.post_id for c in community(url).contributions(["Support"], SINCE)]

    assert found == [str(fresh["id"])]
    assert forum.count("GET", rf"^/t/{old['topic_id']}") == 0  # its topic was never opened


def test_a_long_topic_is_read_from_its_end_and_the_requests_are_counted(url, forum):
    question = topic(url, "alice", "Post your favourite shop tips here", "Tips for new buyers, one per reply.",
                     when="2026-10-01T10:00:00.000Z")  # fmt: skip
    with httpx.Client(base_url=url, headers={"Api-Key": KEY, "Api-Username": "cardbridge"}, timeout=10) as admin:
        for n in range(130):  # old replies, before ``since``
            admin.post("/posts.json", json={"topic_id": question["topic_id"], "created_at": "2026-10-02T10:00:00Z",
                                            "raw": f"Old tip number {n}: keep your receipts safe."})  # fmt: skip
    new = reply(url, "bob", question["topic_id"], "New tip: redeem codes right after you buy them.")
    like(url, "carol", new["id"])
    forum.reset_log()
    adapter = community(url)

    found = [c.post_id for c in adapter.contributions(["Support"], SINCE)]

    assert found == [str(new["id"])]
    # categories + 1 list page + the deleted topics' list + the topic + one batch of 100 ids from the end + likers
    # + carol's age
    assert len(forum.requests) == 7
    assert forum.count("GET", r"/t/\d+/posts") == 1
    assert adapter.stats().requests == 7
    list(adapter.contributions(["Support"], SINCE))
    assert forum.count("GET", r"^/admin/users/\d+") == 1  # account ages are remembered between passes


def test_a_pass_stops_at_its_topic_limit(url, forum):
    for n in range(5):
        topic(url, "alice", f"Question number {n} about my order", f"Order {n} shows pending since this morning.")
    adapter = community(url, contributions_max_topics=2)

    found = list(adapter.contributions(["Support"], SINCE))

    assert len(found) == 2
    assert forum.count("GET", r"^/t/\d+\.json") == 2


def test_an_unknown_category_reads_nothing_more(url, forum):
    forum.reset_log()
    assert list(community(url).contributions(["Nowhere"], SINCE)) == []
    assert len(forum.requests) == 1  # the category list only


def test_one_malformed_post_is_skipped_and_the_others_still_count():
    """A forum (or a proxy) answering a post without usable fields: that post alone is left out."""
    good = {"id": 7, "user_id": 3, "username": "bob", "created_at": "2026-11-20T10:00:00.000Z", "post_type": 1,
            "actions_summary": [], "accepted_answer": False}  # fmt: skip
    broken = {**good, "id": 8, "created_at": "yesterday", "username": ["not", "a", "name"]}
    answers = {
        "/categories.json": {"category_list": {"categories": [{"id": 5, "name": "Support", "slug": "support"}]}},
        "/c/support/5/l/latest.json": {"topic_list": {"topics": [{"id": 11, "bumped_at": "2026-11-20T10:00:00Z"}]}},
        "/t/11.json": {"post_stream": {"posts": [broken, good], "stream": [8, 7]}},
    }

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("status") == "deleted":
            return httpx.Response(200, json={"topic_list": {"topics": []}})
        return httpx.Response(200, json=answers[request.url.path])

    config = DiscourseSettings(kind="discourse", base_url="https://forum.example", api_key=KEY,
                               api_username="cardbridge", requests_per_minute=10_000)  # fmt: skip
    adapter = DiscourseCommunity("forum", config, transport=httpx.MockTransport(answer), sleep=lambda s: None)

    found = list(adapter.contributions(["Support"], SINCE))

    assert [(c.post_id, c.author_username) for c in found] == [("7", "bob")]


def test_a_topic_whose_list_entry_did_not_change_is_not_opened_again_until_the_next_period(url, forum):
    question = topic(url, "alice", "How do I redeem a wallet code", "I bought a code and do not see where it goes.")
    answer = reply(url, "bob", question["topic_id"], "Steam > Games > Redeem a Steam Wallet Code, then paste it.")
    like(url, "carol", answer["id"])
    adapter = community(url)
    assert [c.post_id for c in adapter.contributions(["Support"], SINCE)] == [str(question["id"]), str(answer["id"])]

    forum.reset_log()
    assert list(adapter.contributions(["Support"], SINCE)) == []  # nothing changed: listings only
    assert forum.count("GET", r"^/t/\d+") == 0 and forum.count("GET", r"^/post_action_users") == 0

    like(url, "alice", answer["id"])  # a like does not bump the topic, but changes its like_count
    forum.reset_log()
    again = {c.post_id: c for c in adapter.contributions(["Support"], SINCE)}
    assert {liker.user_id for liker in again[str(answer["id"])].likers} == {
        str(forum.user("carol")["id"]),
        str(forum.user("alice")["id"]),
    }

    every_pass = community(url, contributions_recheck_minutes=0)
    forum.reset_log()
    list(every_pass.contributions(["Support"], SINCE))
    list(every_pass.contributions(["Support"], SINCE))
    assert forum.count("GET", r"^/t/\d+\.json") == 2  # with 0, every topic is opened every pass


def test_a_new_generation_opens_unchanged_topics_again(url, forum):
    """The core changes the generation when someone is matched to a shop customer: a post skipped as unchanged may
    earn for its newly matched author, so it is read again at once, not in the next period."""
    question = topic(url, "alice", "Which region is my gift card for", "The card says global but the shop says EU.")
    like(url, "bob", question["id"])
    adapter = community(url)
    assert len(list(adapter.contributions(["Support"], SINCE, "1:100"))) == 1
    assert list(adapter.contributions(["Support"], SINCE, "1:100")) == []
    assert [c.post_id for c in adapter.contributions(["Support"], SINCE, "2:160")] == [str(question["id"])]

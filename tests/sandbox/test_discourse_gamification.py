"""The sandbox's score events list the way the plugin does: 100 rows at most, no order promised, filters only."""

from __future__ import annotations

import httpx
import pytest

from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer

KEY = "test-key"
URL = "/admin/plugins/gamification/score_events.json"


@pytest.fixture
def forum():
    return DiscourseSandbox(api_key=KEY, api_username="system")


@pytest.fixture
def api(forum):
    with (
        SandboxServer(forum.app) as running,
        httpx.Client(base_url=running.url, headers={"Api-Key": KEY, "Api-Username": "system"}, timeout=10) as client,
    ):
        yield client


def add(api, uid, day, points=1, description=None):
    answer = api.post(URL, json={"user_id": uid, "date": day, "points": points, "description": description})
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def test_a_member_with_more_than_100_events_cannot_be_listed_whole(api, forum):
    uid = forum.add_user("alice", "alice@example.com")
    ids = [add(api, uid, "2026-11-02", description=f"e{i}") for i in range(105)]
    older = add(api, uid, "2026-10-01")
    listed = api.get(URL, params={"user_id": uid}).json()["events"]
    assert len(listed) == 100  # limit(100): the rest cannot be reached, there is no offset
    assert listed[0]["id"] == older  # by date first: the newest rows are the ones cut off
    assert {e["id"] for e in listed} == {older, *ids[:99]}
    api.put(URL, json={"id": ids[0], "points": 0})  # an updated row is a new tuple: it moves to the end
    relisted = [e["id"] for e in api.get(URL, params={"user_id": uid}).json()["events"]]
    assert ids[0] not in relisted and ids[99] in relisted
    day = api.get(URL, params={"user_id": uid, "date": "2026-10-01T12:00:00Z"}).json()["events"]
    assert [e["id"] for e in day] == [older]  # the date filter casts to a date
    assert api.get(URL, params={"user_id": uid, "date": "not a date"}).json() == {"events": []}


def test_create_keeps_any_user_id_and_an_unparsable_date_is_a_500(api, forum):
    assert api.post(URL, json={"user_id": 999, "date": "2026-11-02", "points": 3}).status_code == 200  # no validation
    assert api.post(URL, json={"user_id": 999, "date": "soon", "points": 3}).status_code == 500  # NOT NULL violation
    assert api.put(URL, json={"id": 424242, "points": 1}).status_code == 404
    event_id = add(api, 999, "2026-11-02", description="kept")
    assert api.put(URL, json={"id": event_id, "points": 7}).json() == {"success": "OK"}
    [event] = api.get(URL, params={"id": event_id}).json()["events"]
    assert (event["points"], event["description"]) == (7, "kept")  # params[:description] || event.description

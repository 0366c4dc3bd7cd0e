"""Score events are found where the plugin answers completely: by member and day, walking past full days."""

from __future__ import annotations

import json

import httpx
import respx

from adapters.base import Action
from adapters.communities.discourse_client import DiscourseClient
from adapters.communities.discourse_points import FULL, LIMIT, ForumPoints
from connector.core.payloads import ScoreEvent

BASE = "https://forum.example.com"
URL = f"{BASE}/admin/plugins/gamification/score_events.json"


def points() -> ForumPoints:
    return ForumPoints(DiscourseClient(BASE, "k", "system", requests_per_minute=10_000))


def rows(n: int, day: str, start: int = 1) -> list[dict[str, object]]:
    return [{"id": start + i, "user_id": 12, "date": day, "points": 1, "description": f"other {i}"} for i in range(n)]


def by_day(days: dict[str, list[dict[str, object]]]):  # type: ignore[no-untyped-def]
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"events": days.get(request.url.params["date"], [])})

    return answer


AWARD = Action(1, "points", "order:7", "award", "alice", payload=None)
EVENT = ScoreEvent("12", 11, "2026-11-02", "order:7 [cardbridge]")


@respx.mock
def test_an_award_on_a_full_day_is_written_on_the_day_before_and_found_there_again():
    days = {"2026-11-02": rows(FULL, "2026-11-02")}
    listed = respx.get(URL).mock(side_effect=by_day(days))
    created = respx.post(URL).mock(return_value=httpx.Response(200, json={"id": 500}))
    forum = points()
    outcome = forum.award(AWARD, EVENT)
    assert outcome.ok and outcome.ref == "500"
    assert json.loads(created.calls.last.request.content)["date"] == "2026-11-01"
    assert [c.request.url.params["date"] for c in listed.calls] == ["2026-11-02", "2026-11-01"]
    days["2026-11-01"] = [{"id": 500, "user_id": 12, "date": "2026-11-01", "points": 11,
                           "description": "order:7 [cardbridge]"}]  # fmt: skip
    found = forum.verify(AWARD, EVENT)
    assert found is not None and found.ref == "500"
    assert created.call_count == 1
    assert listed.call_count == 3  # the full day was read once: it can never change


@respx.mock
def test_a_day_that_may_be_cut_short_is_never_guessed_and_nothing_is_written():
    respx.get(URL).mock(side_effect=by_day({"2026-11-02": rows(LIMIT, "2026-11-02")}))
    created = respx.post(URL)
    outcome = points().award(AWARD, EVENT)
    assert not outcome.ok and not outcome.permanent and "cannot check" in (outcome.error or "")
    assert not created.called


@respx.mock
def test_a_duplicate_left_by_two_stores_is_set_to_zero_and_the_first_kept():
    mine = {"user_id": 12, "date": "2026-11-02", "points": 11, "description": "order:7 [cardbridge]"}
    respx.get(URL).mock(side_effect=by_day({"2026-11-02": [{"id": 9, **mine}, {"id": 3, **mine}]}))
    updated = respx.put(URL).mock(return_value=httpx.Response(200, json={"success": "OK"}))
    created = respx.post(URL)
    outcome = points().award(AWARD, EVENT)
    assert outcome.ok and outcome.ref == "3"
    assert json.loads(updated.calls.last.request.content) == {"id": 9, "points": 0}
    assert not created.called

"""Points on Discourse: gamification score events, each awarded once however many state stores write them.

The plugin has no idempotency key, no delete and no complete list: ``GET /admin/plugins/gamification/score_events``
answers at most 100 rows in no order, narrowed only by ``id``, ``user_id`` and ``date`` (discourse-gamification
app/controllers/discourse_gamification/admin_gamification_score_event_controller.rb:6-17). A state store that is lost,
or a second one, re-plans every award, so the check must be at the forum and must be complete:

- every award has a **home date** that any state store derives alike (the order's or review's own date, see
  ``connector.features.points``) and a description that carries its deterministic key;
- an award is written on the first day, walking back from its home date, that holds fewer than :data:`FULL` rows for
  the member; a day's listing of up to :data:`FULL` rows is therefore complete, and a day that is full stays full
  (score events are never deleted), so a walk that meets a day with room has seen every place the award can be;
- a day that answers :data:`LIMIT` rows may be cut short (someone else filled it): the award is neither assumed nor
  written, and the action fails with the reason, so nothing is doubled;
- two rows with the same key (two state stores racing, or an old CardBridge) are found on the way and all but the
  first set to 0 points with the update route (``PUT`` by ``id``; controller lines 38-52).

Reads: one ``GET`` per award (the home day), plus one per full day walked past (a full day is read once per process:
it can no longer change).

An award for an old order is dated in the past, where the plugin's daily job no longer looks: it shows on leaderboards
after an admin's "Recalculate scores" (a warning says so once per run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from adapters.base import Action, Outcome
from adapters.communities.discourse_client import DiscourseClient
from connector.core.http import RemoteError
from connector.core.logs import log
from connector.core.payloads import ScoreEvent

#: How every CardBridge description ends (``connector.features.points`` writes ``"<event key> [cardbridge]"``).
MARK = "[cardbridge]"
#: ``GamificationScoreEvent.limit(100)``: a listing of this many rows may be missing some.
LIMIT = 100
#: A day with this many rows takes no more awards, so its listing (at most FULL rows) is always complete.
FULL = LIMIT - 1
#: How many days back from the home date an award may be written before the walk gives up (bounds the reads).
MAX_DAYS = 120
#: How many full days a process remembers (each at most FULL rows of ours); past it, they are read again.
MAX_CACHED_DAYS = 4096
#: The plugin adds score events into leaderboard scores for this many past days only (daily job
#: discourse-gamification jobs/scheduled/update_scores_for_ten_days.rb:8); older ones wait for "Recalculate scores".
SCORED_DAYS = 10


@dataclass(frozen=True)
class Place:
    """Where an award is: ``event_id`` when found; else ``day`` it may be written on, or ``problem`` why not."""

    event_id: int | None = None
    day: str | None = None
    problem: str | None = None


class ForumPoints:
    """Award, verify and de-duplicate score events (see the module docstring for why this finds every award)."""

    def __init__(self, client: DiscourseClient) -> None:
        self.client = client
        # Full days never change (nothing is deleted, nothing more of ours is written there): read each once. Only
        # CardBridge's rows are kept (an award is only ever looked for by its own description).
        self._full: dict[tuple[int, str], list[dict[str, Any]]] = {}
        self._told_old = False

    def award(self, action: Action, p: ScoreEvent) -> Outcome:
        user_id = _user_id(p)
        if user_id is None:
            return Outcome(action.id, False, permanent=True, error="the member's forum user id is not known")
        place = self.find(user_id, p)
        if place.event_id is not None:
            return Outcome(action.id, True, ref=str(place.event_id))  # already on the forum (another store, a crash)
        if place.day is None:
            return Outcome(action.id, False, error=place.problem or "no day to write the score event on")
        event_id = self.client.add_score_event(user_id, place.day, p.points, p.description)
        self._tell_if_unscored(place.day)
        return Outcome(action.id, True, ref=str(event_id))

    def verify(self, action: Action, p: ScoreEvent) -> Outcome | None:
        """After a crash: the award as the forum has it, or None when it was not written (send it again)."""
        user_id = _user_id(p)
        if user_id is None:
            return None
        place = self.find(user_id, p)
        return Outcome(action.id, True, ref=str(place.event_id)) if place.event_id is not None else None

    def find(self, user_id: int, p: ScoreEvent) -> Place:
        """Walk back from the home date: the award's row, or the first day with room for it."""
        try:
            home = date.fromisoformat(p.date)
        except ValueError:
            return Place(problem=f"the score event's date {p.date!r} is not a date")
        for back in range(min(MAX_DAYS, home.toordinal())):  # (no day before 0001-01-01)
            day = (home - timedelta(days=back)).isoformat()
            full = self._full.get((user_id, day))
            rows = full if full is not None else self.client.score_events(user_id, day)
            mine = self._dedupe([r for r in rows if r.get("description") == p.description])
            if mine is not None:
                return Place(event_id=mine)
            if full is not None:
                continue
            if len(rows) >= LIMIT:
                # The listing may be cut: the award could be among the rows not shown. Never guess.
                return Place(problem=f"{LIMIT} or more score events on {day} for user {user_id}: cannot check")
            if len(rows) < FULL:
                return Place(day=day)
            if len(self._full) >= MAX_CACHED_DAYS:
                self._full.clear()
            self._full[(user_id, day)] = [r for r in rows if str(r.get("description") or "").endswith(MARK)]
        return Place(problem=f"no day with room for a score event within {MAX_DAYS} days of {p.date}")

    def _tell_if_unscored(self, day: str) -> None:
        """Say once per run that awards went where the plugin's daily job does not add them into leaderboards."""
        if self._told_old or date.fromisoformat(day) >= datetime.now(UTC).date() - timedelta(days=SCORED_DAYS):
            return
        self._told_old = True  # a backfill writes many: once is enough
        log.warning(
            "score events dated before the plugin's 10-day scoring window count on leaderboards only after an "
            "admin's 'Recalculate scores' from the oldest such date",
            first=day,
        )

    def _dedupe(self, mine: list[dict[str, Any]]) -> int | None:
        """The first of the rows carrying this award's key; any later one (a duplicate) is set to 0 points."""
        ids = sorted(((i, row) for row in mine if (i := _row_id(row)) is not None), key=lambda pair: pair[0])
        for event_id, extra in ids[1:]:
            if extra.get("points"):
                try:
                    self.client.set_score_event_points(event_id, 0)
                except RemoteError as error:
                    if error.status != 404:  # gone (removed by hand): the duplicate no longer counts
                        raise
                extra["points"] = 0  # the cached listing of a full day says so too
        return ids[0][0] if ids else None


def _row_id(row: dict[str, Any]) -> int | None:
    value = row.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _user_id(p: ScoreEvent) -> int | None:
    return int(p.user_id) if p.user_id is not None and str(p.user_id).isdigit() else None

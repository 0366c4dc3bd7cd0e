"""The gamification plugin's ``score_events`` admin endpoints: list, create, update. All answer 404 while the plugin
is disabled.

Taken from discourse/discourse ``plugins/discourse-gamification`` (formerly discourse/discourse-gamification; the
two copies of the controller are the same):

- ``config/routes.rb:34-44``: ``GET``/``POST``/``PUT /admin/plugins/gamification/score_events``; no ``DELETE``, no
  id in the path (``PUT`` takes ``id`` as a parameter).
- ``app/controllers/discourse_gamification/admin_gamification_score_event_controller.rb``:
  ``show`` (6-17) is ``GamificationScoreEvent.limit(100)`` narrowed by ``where(id:)``, ``where(user_id:)``,
  ``where(date:)``: at most 100 rows, **no order**, no offset, so a member with more rows cannot be listed whole;
  ``create`` (19-36) requires ``user_id``, ``date``, ``points`` and answers the bare serialized event;
  ``update`` (38-52) requires ``id`` and ``points``, ``find``s the row (404 when missing), keeps the description
  unless one is given (``params[:description] || event.description``) and answers ``success_json``.
- ``app/models/discourse_gamification/gamification_score_event.rb``: no validations (``belongs_to :user`` is
  optional: Discourse sets ``belongs_to_required_by_default = false``), so any user id is accepted; the table
  (``db/migrate/20230420185415_create_gamification_score_events.rb``) has ``user_id``, ``date``, ``points`` NOT
  NULL and indexes on ``(user_id, date)`` and ``(date)``, none unique: the same event can be stored twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sandbox.discourse.errors import Answer, not_found, require
from sandbox.discourse.rails import cast_int, now_iso, ruby_int
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import ForumState, Row

#: ``GamificationScoreEvent.limit(100)`` (admin_gamification_score_event_controller.rb:9).
LIST_LIMIT = 100


def _event_json(event: Row) -> dict[str, Any]:
    # app/serializers/admin_gamification_score_event_serializer.rb:4
    return {k: event[k] for k in ("id", "user_id", "date", "points", "description", "created_at", "updated_at")}


def cast_date(value: Any) -> str | None:
    """``ActiveModel::Type::Date``: an ISO date (a time after it is ignored), else nil."""
    text = str(value).strip() if value is not None else ""
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        try:
            return datetime.fromisoformat(text).date().isoformat()
        except ValueError:
            return None


class Gamification:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        path = rf"/admin/plugins/gamification/score_events{J}"
        return [
            route("GET", path, self.show, admin_only=True),
            route("POST", path, self.create, admin_only=True),
            route("PUT", path, self.update, admin_only=True),
        ]

    def _require_plugin(self) -> None:
        if not (self.forum.settings.gamification_enabled and self.forum.settings.gamification_installed):
            raise not_found()  # requires_plugin: PluginDisabled renders 404

    def show(self, ctx: Ctx) -> Any:
        self._require_plugin()
        p = ctx.params
        events = list(self.forum.score_events.values())
        if p.get("id") is not None:
            events = [e for e in events if e["id"] == cast_int(p["id"])]
        if p.get("user_id") is not None:
            events = [e for e in events if e["user_id"] == cast_int(p["user_id"])]
        if p.get("date") is not None:
            events = [e for e in events if e["date"] == cast_date(p["date"])]
        # ``limit(100)`` without ``order``: PostgreSQL returns rows in whatever order its plan yields. Played here as
        # an index scan on (user_id, date) / (date) would: by date, then by row version (a row an update rewrote
        # comes last, as PostgreSQL writes a new tuple; ``score_events`` keeps rows in that order). So a member's
        # newest rows are the ones past the cap.
        events.sort(key=lambda e: str(e["date"]))
        return {"events": [_event_json(e) for e in events[:LIST_LIMIT]]}

    def create(self, ctx: Ctx) -> Any:
        self._require_plugin()
        p = ctx.params
        for key in ("user_id", "date", "points"):  # params.require(%i[user_id date points])
            require(p, key)
        day = cast_date(p["date"])
        if day is None:
            # An unparsable date casts to nil; the model has no validation, so the NOT NULL column raises
            # ActiveRecord::NotNullViolation, which Discourse does not rescue: a 500.
            raise Answer(500, {"errors": ["Internal Server Error"]})
        stamp = now_iso()
        event: Row = {
            "id": self.forum.take_id("score_event"),
            "user_id": cast_int(p["user_id"]),
            "date": day,
            "points": cast_int(p["points"]) or 0,  # Integer cast: junk is "abc".to_i, 0
            "description": None if p.get("description") is None else str(p["description"]),
            "created_at": stamp,
            "updated_at": stamp,
        }
        self.forum.score_events[event["id"]] = event
        return _event_json(event)

    def update(self, ctx: Ctx) -> Any:
        self._require_plugin()
        p = ctx.params
        require(p, "id")  # params.require(%i[id points])
        require(p, "points")
        event = self.forum.score_events.get(ruby_int(p["id"]))  # find: "12abc" is 12, junk is no row
        if event is None:
            raise not_found()  # ActiveRecord::RecordNotFound renders 404
        event["points"] = cast_int(p["points"]) or 0
        if p.get("description") is not None:  # params[:description] || event.description ("" is truthy in Ruby)
            event["description"] = str(p["description"])
        event["updated_at"] = now_iso()
        # PostgreSQL writes an updated row as a new tuple: it moves to the end of the table's physical order.
        self.forum.score_events[event["id"]] = self.forum.score_events.pop(event["id"])
        return {"success": "OK"}

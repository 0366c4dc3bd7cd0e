"""The gamification plugin's ``score_events`` admin endpoints: list, create, update. All answer 404 while the plugin
is disabled."""

from __future__ import annotations

from datetime import date
from typing import Any

from sandbox.discourse.errors import json_error, not_found, require
from sandbox.discourse.rails import cast_int, now_iso, ruby_int
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import ForumState, Row


def _event_json(event: Row) -> dict[str, Any]:
    return {k: event[k] for k in ("id", "user_id", "date", "points", "description", "created_at", "updated_at")}


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
        if not self.forum.settings.gamification_enabled:
            raise not_found()  # requires_plugin: PluginDisabled renders 404

    def show(self, ctx: Ctx) -> Any:
        self._require_plugin()
        p = ctx.params
        events = sorted(self.forum.score_events.values(), key=lambda e: e["id"])
        if p.get("id") is not None:
            events = [e for e in events if str(e["id"]) == str(p["id"])]
        if p.get("user_id") is not None:
            events = [e for e in events if str(e["user_id"]) == str(p["user_id"])]
        if p.get("date") is not None:
            events = [e for e in events if e["date"] == str(p["date"])]
        return {"events": [_event_json(e) for e in events[:100]]}

    def create(self, ctx: Ctx) -> Any:
        self._require_plugin()
        p = ctx.params
        for key in ("user_id", "date", "points"):
            require(p, key)
        try:
            day = date.fromisoformat(str(p["date"]).strip()[:10]).isoformat()
        except ValueError:
            raise json_error("Date can't be blank") from None  # an unparsable date casts to nil (unverified message)
        stamp = now_iso()
        event: Row = {
            "id": self.forum.take_id("score_event"),
            "user_id": cast_int(p["user_id"]),
            "date": day,
            "points": cast_int(p["points"]) or 0,
            "description": None if p.get("description") is None else str(p["description"]),
            "created_at": stamp,
            "updated_at": stamp,
        }
        self.forum.score_events[event["id"]] = event
        return _event_json(event)

    def update(self, ctx: Ctx) -> Any:
        self._require_plugin()
        p = ctx.params
        require(p, "id")
        require(p, "points")
        event = self.forum.score_events.get(ruby_int(p["id"]))
        if event is None:
            raise not_found()
        event["points"] = cast_int(p["points"]) or 0
        if p.get("description") is not None:
            event["description"] = str(p["description"])
        event["updated_at"] = now_iso()
        return {"success": "OK"}

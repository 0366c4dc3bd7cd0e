"""Who the key acts as and what the site runs: ``GET /session/current.json`` and ``GET /admin/plugins.json``.

- ``SessionController#current`` (discourse/discourse app/controllers/session_controller.rb, ``def current``): the
  acting user through ``CurrentUserSerializer`` (``id``, ``username``, ``admin``, ``moderator``, ``trust_level``,
  ``staff``...); an API request whose key or user is refused never gets here (403 ``invalid_access`` from the auth
  provider, answered by the app's front).
- ``Admin::PluginsController#index`` (app/controllers/admin/plugins_controller.rb:3-10, ``< Admin::StaffController``:
  a moderator may read it, a user gets the staff constraint's 404): every plugin, enabled or not, through
  ``AdminPluginSerializer`` (app/serializers/admin_plugin_serializer.rb: ``id`` is the directory name, ``enabled``,
  ``enabled_setting``) under ``plugins``.
"""

from __future__ import annotations

from typing import Any

from sandbox.discourse.errors import not_found
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import ForumState, is_staff


class Site:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [
            route("GET", rf"/session/current{J}", self.current),
            route("GET", rf"/admin/plugins{J}", self.plugins),
        ]

    def current(self, ctx: Ctx) -> Any:
        user = ctx.actor
        return {
            "current_user": {
                "id": user["id"],
                "username": user["username"],
                "name": user.get("name"),
                "admin": bool(user["admin"]),
                "moderator": bool(user["moderator"]),
                "staff": is_staff(user),
                "trust_level": user.get("trust_level", 0),
            }
        }

    def plugins(self, ctx: Ctx) -> Any:
        if not is_staff(ctx.actor):
            raise not_found()  # the admin namespace's StaffConstraint: the route does not exist for non-staff
        settings = self.forum.settings
        plugins: list[dict[str, Any]] = []
        if settings.gamification_installed:
            plugins.append(
                {
                    "id": "discourse-gamification",
                    "name": "discourse-gamification",
                    "about": "Adds a leaderboard and scores to Discourse",
                    "version": "0.0.1",
                    "url": "https://github.com/discourse/discourse-gamification",
                    "enabled": bool(settings.gamification_enabled),
                    "enabled_setting": "discourse_gamification_enabled",
                    "has_settings": True,
                    "is_official": True,
                    "commit_hash": None,
                    "commit_url": None,
                }
            )
        return {"plugins": plugins}

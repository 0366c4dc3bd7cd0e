"""``cardbridge check`` for a Discourse forum: read-only requests that tell whether a pass can do its work.

In the order an operator fixes things: the forum answers at ``base_url`` (also a subfolder install) and accepts the
key; the key acts as an admin; each badge and group the rules name can be used; the gamification plugin is there
when ``[points]`` sends score events; the review category when ``[reviews]`` posts here.

What the forum answers (discourse/discourse):

- ``GET /session/current.json``: ``SessionController#current`` renders ``CurrentUserSerializer`` (``admin``,
  ``moderator``) for the user the key acts as. A key that does not exist, or an ``Api-Username`` that is no active
  user, never reaches it: ``Auth::DefaultCurrentUserProvider`` raises ``Discourse::InvalidAccess``, a 403 with
  ``error_type: invalid_access``. A granular (scoped) key is refused the same way on a route none of its scopes
  allows (lib/auth/default_current_user_provider.rb ``lookup_api_user``: nil unless ``request_allowed?``), and no
  scope but ``global:read`` allows this route (app/models/api_key_scope.rb ``default_mappings``); one that may still
  list badges (``badges:list``) is told apart as a granular key. CardBridge needs a global key: it also reads
  ``/admin/users/{id}.json`` (``admin/users#show``), which no scope allows. A ``global:read`` key cannot be told
  from a global one without writing.
- ``/admin/badges.json``, ``/admin/groups``: ``AdminConstraint``; for anyone but an admin the route does not
  exist (404), so a moderator's key reads as "not an admin", not as a missing badge.
- ``/admin/plugins.json``: ``Admin::PluginsController < Admin::StaffController`` renders ``AdminPluginSerializer``
  (``id`` = the plugin's directory, ``name``, ``enabled``) under ``plugins``.
- ``GET /groups/{name}.json``: 404 for a group that does not exist (or the key's user cannot see); ``automatic``
  is true for the trust-level and staff groups, whose members nobody can change.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from typing import Any

import httpx

from adapters.checks import Check, CheckContext, failed, passed, unreachable
from adapters.communities.discourse_client import DiscourseClient
from connector.core.config import Rule
from connector.core.http import RemoteError

#: The plugin's directory name, ``AdminPluginSerializer#id`` (discourse/discourse-gamification).
GAMIFICATION = "discourse-gamification"


class ForumCheck:
    """The checks of one forum; ``run()`` yields them."""

    def __init__(
        self, name: str, client: DiscourseClient, base_url: str, api_username: str, rules: Sequence[Rule]
    ) -> None:
        self.name, self.client, self.base_url, self.api_username = name, client, base_url, api_username
        grants = [rule.grant[name] for rule in rules if name in rule.grant]
        self.badges = sorted({g.badge for g in grants if g.badge})
        self.groups = sorted({g.group for g in grants if g.group})

    def key(self, setting: str) -> str:
        return f"communities.{self.name}.{setting}"

    def run(self, context: CheckContext) -> Iterator[Check]:
        try:
            yield from self._run(context)
        except httpx.HTTPError as error:
            yield unreachable(
                "forum answers",
                error,
                self.base_url,
                f"check {self.key('base_url')} (the forum's root URL, with its subfolder if it has one)",
            )
        except RemoteError as error:
            yield failed("forum answers", str(error), f"check {self.key('base_url')}; the forum answered an error")

    def _run(self, context: CheckContext) -> Iterator[Check]:
        user = yield from self._current_user()
        if user is None:
            return
        if not user.get("admin"):
            role = "a moderator" if user.get("moderator") else "a user without staff rights"
            yield failed(
                "key acts as an admin",
                f"{self.api_username!r} is {role}; badges and groups are created and granted from the admin API",
                f"set {self.key('api_username')} to an admin (or system), with a global key "
                "(Admin → API → New key, User level: All users)",
            )
            return
        yield passed("key acts as an admin", f"as {user.get('username', self.api_username)}")
        yield from self._badges()
        yield from self._groups()
        if context.points is not None and context.points.mode == "gamification":
            yield from self._gamification()
        if context.review is not None:
            yield from self._category(context.review.category)

    def _current_user(self) -> Generator[Check, None, dict[str, Any] | None]:
        """``GET /session/current.json``; the user, or None after a failed Check."""
        try:
            body = self.client.http.request("GET", "/session/current.json").json()
        except RemoteError as error:
            if error.status in (401, 403):
                yield self._refused(error.status)
                return None
            if error.status == 404:
                yield failed(
                    "forum answers",
                    f"{self.base_url} has no Discourse session route (404): not a Discourse forum's root",
                    f"set {self.key('base_url')} to the forum's root URL (with its subfolder if it has one)",
                )
                return None
            raise
        user = body.get("current_user") if isinstance(body, dict) else None
        if not isinstance(user, dict):
            yield failed(
                "forum answers",
                f"{self.base_url}/session/current.json did not answer a Discourse session",
                f"set {self.key('base_url')} to the forum's root URL",
            )
            return None
        yield passed("forum answers", self.base_url)
        yield passed("key accepted", f"acts as {user.get('username', self.api_username)}")
        return user

    def _refused(self, status: int) -> Check:
        """The key was refused on the session route: a granular key if it may still list badges (its scopes are
        routes, ``ApiKeyScope.default_mappings``; ``badges:list`` is ``admin/badges#index``), else a bad key."""
        try:
            self.client.http.request("GET", "/admin/badges.json")
        except RemoteError:
            return failed(
                "key accepted",
                f"{self.base_url} refused the key ({status}): no such key, a revoked key, or a user that does not "
                "exist, is suspended, or is not the one the key is for",
                f"set {self.key('api_key')} to a global admin key and {self.key('api_username')} to its user",
            )
        return failed(
            "key is a global key",
            "a granular (scoped) key: CardBridge also reads /admin/users/{id}.json, which no scope allows, and a "
            "scoped key's write scopes cannot be tested without writing",
            f"set {self.key('api_key')} to a global key (Admin → API → New key, Scope: Global)",
        )

    def _badges(self) -> Iterator[Check]:
        if not self.badges:
            return
        known = {str(b.get("name", "")).lower(): b for b in self.client.badges()}
        for name in self.badges:
            badge = known.get(name.lower())
            if badge is None:
                yield passed(f"badge {name!r}", "does not exist yet; will be created on first use")
            elif not badge.get("enabled", True):
                yield failed(
                    f"badge {name!r}",
                    "exists but is disabled: the forum refuses to grant it (404)",
                    f"enable it on the forum (Admin → Badges → {name} → Enabled)",
                )
            else:
                yield passed(f"badge {name!r}", f"exists and is enabled (id {badge.get('id')})")

    def _groups(self) -> Iterator[Check]:
        for name in self.groups:
            group: dict[str, Any] | None = self.client.group(name)
            if group is None:
                yield passed(f"group {name!r}", "does not exist yet; will be created on first use")
            elif group.get("automatic"):
                yield failed(
                    f"group {name!r}",
                    "is an automatic group (trust level or staff): its members cannot be changed",
                    "name a custom group in the rules' grant (not an automatic one)",
                )
            else:
                yield passed(f"group {name!r}", f"exists (id {group.get('id')}); members can be added")

    def _gamification(self) -> Iterator[Check]:
        plugins = self.client.http.request("GET", "/admin/plugins.json").json().get("plugins", [])
        plugin = next((p for p in plugins if isinstance(p, dict) and p.get("id") == GAMIFICATION), None)
        if plugin is None:
            yield failed(
                "gamification plugin",
                "not installed: [points] sends score events here",
                "install discourse-gamification on the forum, or set [points.communities."
                f'{self.name}] mode = "user_field"',
            )
        elif not plugin.get("enabled"):
            yield failed(
                "gamification plugin",
                "installed but disabled: score events are refused (404)",
                "enable it (Admin → Plugins → discourse-gamification → discourse_gamification_enabled)",
            )
        else:
            yield passed("gamification plugin", f"installed and enabled ({plugin.get('version') or 'version ?'})")

    def _category(self, name: str) -> Iterator[Check]:
        if self.client.category_id(name) is None:
            yield passed(f"review category {name!r}", "does not exist yet; will be created on first use")
        else:
            yield passed(f"review category {name!r}", "exists")


def check_forum(
    name: str, client: DiscourseClient, base_url: str, api_username: str, rules: Sequence[Rule], context: CheckContext
) -> Iterator[Check]:
    """The forum's checks (see the module docstring)."""
    return ForumCheck(name, client, base_url, api_username, rules).run(context)

"""A thin, typed httpx client for the Discord REST v10 endpoints CardBridge uses, and its limiter.

Bot-token calls: member roles, forum threads and messages, Linked Roles metadata records, adding a member who
authorised ``guilds.join``. :class:`DiscordOAuth`: the OAuth2 authorization-code flow and the member's own
``role-connection`` (Bearer token).

Reference: ``shared/specs/discord`` (CONNECTOR-NOTES.md, docs-excerpts/rate-limits.mdx). Rate limits are read from
the headers, never hard-coded: each answer tells its bucket (``X-RateLimit-Bucket``), how many requests remain and
when the bucket resets; the limit applies per bucket *and* per top-level resource (the guild). A request whose bucket
is empty waits for the reset before it is sent, and every request passes a 50-per-second global gate. A 429 says how
long to wait (``retry_after``, ``global``) and what is limited (``X-RateLimit-Scope``: ``user``, ``global``, or
``shared``, a limit on the resource itself whose ``Retry-After`` can be as long as 1337 s; discord/discord-api-docs
developers/topics/rate-limits.mdx:45,49-118). Whatever the scope, the limiter holds that bucket on that top-level
resource (or, for ``global``, everything) until the time the 429 gave, and a wait longer than the client's
``max_wait`` is refused at once (:class:`~connector.core.http.WaitTooLong`) instead of slept: the action is deferred,
and requests to other buckets and resources go on, since Discord counts its limits per bucket and top-level resource
(rate-limits.mdx:14-16).

Several processes with one bot (replicas) share its limits when :meth:`DiscordLimits.share` gives them a
:class:`~connector.core.budget.LimitStore`: the global gate (rate-limits.mdx:18, 122: 50 requests a second per bot),
each bucket's remaining count and reset, and every 429's hold are then counted there, keyed by a hash of the bot's
token (limits are per bot; different bots do not share). Which bucket a route belongs to is still learned per process,
from its own first answer.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from adapters.base import OAuthError, Tokens
from connector import __version__
from connector.core.budget import LimitStore, WaitTooLong
from connector.core.http import RemoteClient, RemoteError

#: ``Tokens`` and ``OAuthError`` live in :mod:`adapters.base` (the OAuth2 side of :class:`MemberAuthorization`);
#: imported here for the clients that raise and return them.
__all__ = ["API", "DiscordClient", "DiscordLimits", "DiscordOAuth", "OAuthError", "Tokens", "error_code", "route_key"]

API = "https://discord.com/api/v10"
_MAJOR = re.compile(r"^/(guilds|channels|webhooks)/(\d+)")


def route_key(method: str, path: str) -> str:
    """The route a bucket is learned for: method + path with ids replaced, except the top-level (major) id."""
    major = _MAJOR.match(path)
    rest = path[major.end() :] if major else path
    template = re.sub(r"/\d+", "/{id}", rest)
    return f"{method} {major.group(1) if major else ''}/{major.group(2) if major else ''}{template}"


class DiscordLimits:
    """Per-(bucket, major id) pacing from ``X-RateLimit-*`` headers plus the global 50/s gate. Thread-safe."""

    def __init__(
        self,
        per_second: int = 50,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_second
        self.clock, self.sleep = clock, sleep
        self._lock = threading.Lock()
        self._route_bucket: dict[str, str] = {}
        self._buckets: dict[str, tuple[int, float]] = {}  # bucket → (remaining, resets at)
        #: bucket (or ``route:<route key>`` before its bucket is known) → (held until, scope), from 429s: a
        #: ``shared`` 429 leaves ``remaining`` above 0, so the headers alone would let the next request through.
        self._held: dict[str, tuple[float, str]] = {}
        self._sent: deque[float] = deque()
        self._global_until = 0.0
        self.waited = 0.0
        #: Where the limits are counted when shared (:meth:`share`), and the keys' prefix there.
        self._store: LimitStore | None = None
        self._namespace = ""

    def share(self, store: LimitStore, namespace: str) -> None:
        """Count the global gate, the buckets and the 429 holds in ``store`` under ``namespace`` (one per bot), shared
        with every process that shares the same namespace, instead of in this process."""
        self._store, self._namespace = store, namespace

    def _bucket(self, method: str, path: str) -> str | None:
        key = route_key(method, path)
        bucket = self._route_bucket.get(key)
        major = _MAJOR.match(path)
        return f"{bucket}:{major.group(2) if major else ''}" if bucket else None

    def acquire(self, method: str, path: str, max_wait: float | None = None) -> None:
        if self._store is not None:
            self._acquire_shared(self._store, method, path, max_wait)
            return
        while True:
            with self._lock:
                now = self.clock()
                wait = max(0.0, self._global_until - now)
                scope = "global" if wait else ""
                bucket = self._bucket(method, path)
                held = self._held.get(bucket or f"route:{route_key(method, path)}", (0.0, ""))
                if held[0] - now > wait:
                    wait, scope = held[0] - now, held[1]
                if bucket and bucket in self._buckets:
                    remaining, reset_at = self._buckets[bucket]
                    if remaining <= 0 and reset_at - now > wait:
                        wait, scope = reset_at - now, "user"
                if max_wait is not None and wait > max_wait:
                    raise WaitTooLong(wait, scope)
                while self._sent and now - self._sent[0] >= 1.0:
                    self._sent.popleft()
                if len(self._sent) >= self.per_second:
                    wait = max(wait, 1.0 - (now - self._sent[0]))
                if wait <= 0:
                    self._sent.append(now)
                    if bucket and bucket in self._buckets:
                        remaining, reset_at = self._buckets[bucket]
                        self._buckets[bucket] = (remaining - 1, reset_at)
                    return
            self.waited += wait
            self.sleep(wait)

    def _key(self, method: str, path: str) -> str:
        """Where this request's bucket (or, before its bucket is known, its route) is counted in the shared store."""
        with self._lock:
            bucket = self._bucket(method, path)
        return f"{self._namespace}:{bucket}" if bucket else f"{self._namespace}:route:{route_key(method, path)}"

    def _acquire_shared(self, store: LimitStore, method: str, path: str, max_wait: float | None) -> None:
        """:meth:`acquire` with the counts in ``store``: the request's bucket first (its hold and remaining count; one
        is spent), then a slot of the global gate (unless a global 429 holds it)."""
        key, glob, spent = self._key(method, path), f"{self._namespace}:global", False
        while True:
            if not spent:
                wait = store.spend(key)
                spent = wait <= 0
                if not spent:
                    held, scope = store.held(key)
                    # The remote's limit either way (a 429's hold, or the bucket's reset): refused past max_wait.
                    scope = scope if held and held + 0.5 >= wait else "user"
                    if max_wait is not None and wait > max_wait:
                        raise WaitTooLong(wait, scope)
            if spent:
                wait = store.take(glob, self.per_second, 1.0)
                if wait <= 0:
                    return
                held, _ = store.held(glob)
                if max_wait is not None and held > max_wait:
                    raise WaitTooLong(held, "global")
            wait += 0.001
            self.waited += wait
            self.sleep(wait)

    def observe(self, method: str, path: str, response: httpx.Response) -> None:
        name = response.headers.get("x-ratelimit-bucket")
        if not name:
            return
        with self._lock:
            self._route_bucket[route_key(method, path)] = name
            try:
                remaining = int(response.headers.get("x-ratelimit-remaining", "1"))
                reset_after = float(response.headers.get("x-ratelimit-reset-after", "0"))
            except ValueError:
                return
            major = _MAJOR.match(path)
            bucket = f"{name}:{major.group(2) if major else ''}"
            if self._store is None:
                self._buckets[bucket] = (remaining, self.clock() + reset_after)
        if self._store is not None:
            self._store.set_bucket(f"{self._namespace}:{bucket}", remaining, reset_after)

    def penalise(
        self, seconds: float, response: httpx.Response | None = None, method: str = "", path: str = ""
    ) -> None:
        is_global = response is not None and (
            response.headers.get("x-ratelimit-global") == "true"
            or (
                response.headers.get("content-type", "").startswith("application/json")
                and bool(_json(response).get("global"))
            )
        )
        if self._store is not None:
            self._penalise_shared(self._store, seconds, response, method, path, is_global)
            return
        with self._lock:
            until = self.clock() + seconds
            if is_global:
                self._global_until = max(self._global_until, until)
                return
            if not method:
                return
            scope = response.headers.get("x-ratelimit-scope", "user") if response is not None else "user"
            # observe() has already mapped the route to the 429's bucket when the answer named one.
            key = self._bucket(method, path) or f"route:{route_key(method, path)}"
            if until > self._held.get(key, (0.0, ""))[0]:
                self._held[key] = (until, scope)
            if len(self._held) > 1000:  # bounded: forget the holds that have ended
                now = self.clock()
                self._held = {k: v for k, v in self._held.items() if v[0] > now}

    def _penalise_shared(
        self,
        store: LimitStore,
        seconds: float,
        response: httpx.Response | None,
        method: str,
        path: str,
        is_global: bool,
    ) -> None:
        if is_global:
            store.hold(f"{self._namespace}:global", seconds, "global")
            return
        if not method:
            return
        scope = response.headers.get("x-ratelimit-scope", "user") if response is not None else "user"
        route = f"{self._namespace}:route:{route_key(method, path)}"
        key = self._key(method, path)
        store.hold(key, seconds, scope)
        if key != route:
            # Also under the route, for the processes that have not learned its bucket yet (they ask by route).
            store.hold(route, seconds, scope)


def error_code(error: RemoteError) -> int | None:
    """Discord's JSON error code (``10007`` Unknown Member, ``50013`` Missing Permissions, …), if the body has one."""
    code = error.body.get("code") if isinstance(error.body, dict) else None
    return code if isinstance(code, int) else None


def _audit(reason: str) -> dict[str, str]:
    """``X-Audit-Log-Reason``: at most 512 characters, URL-encoded (as Discord's docs and libraries do)."""
    return {"X-Audit-Log-Reason": quote(reason[:512], safe=" ")}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class DiscordClient:
    def __init__(
        self,
        bot_token: str,
        api_base: str = API,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_retry_seconds: float = 60.0,
        keys: str = "",
        sleep: Any = None,
        max_wait: float = 60.0,
    ) -> None:
        kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        #: Names the bot in a shared store: a hash of its token (limits are per bot; the store never holds the token).
        self._bot = hashlib.sha256(bot_token.encode()).hexdigest()[:16]
        self.limits = DiscordLimits(**kwargs)
        self.http = RemoteClient(
            "discord",
            api_base.rstrip("/"),
            headers={
                "Authorization": f"Bot {bot_token}",
                # Discord requires this form; requests without it may be blocked.
                "User-Agent": f"DiscordBot (https://github.com/cardbridge/cardbridge, {__version__})",
            },
            budget=self.limits,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retry_seconds=max_retry_seconds,
            keys=keys,
            transport=transport,
            max_wait=max_wait,
            **kwargs,
        )

    def share_limits(self, store: LimitStore) -> None:
        """Count the bot's limits in ``store`` with every process running the same bot (:meth:`DiscordLimits.share`)."""
        self.limits.share(store, f"discord:bot:{self._bot}")

    def member(self, guild_id: str, user_id: str) -> dict[str, Any]:
        return dict(self.http.request("GET", f"/guilds/{guild_id}/members/{user_id}").json())

    def add_role(self, guild_id: str, user_id: str, role_id: str, reason: str) -> None:
        self.http.request("PUT", f"/guilds/{guild_id}/members/{user_id}/roles/{role_id}", headers=_audit(reason))

    def remove_role(self, guild_id: str, user_id: str, role_id: str, reason: str) -> None:
        self.http.request("DELETE", f"/guilds/{guild_id}/members/{user_id}/roles/{role_id}", headers=_audit(reason))

    def add_member(self, guild_id: str, user_id: str, access_token: str) -> bool:
        """Add a user who authorised ``guilds.join`` to the guild. True if added (201), False if already a member (204;
        Discord then ignores any roles sent, so CardBridge always grants roles with the per-role PUT)."""
        response = self.http.request(
            "PUT", f"/guilds/{guild_id}/members/{user_id}", json={"access_token": access_token}
        )
        return response.status_code == 201

    # ---- forum threads and messages ------------------------------------------------------------------------------

    def channel(self, channel_id: str) -> dict[str, Any]:
        return dict(self.http.request("GET", f"/channels/{channel_id}").json())

    def start_thread(
        self, forum_id: str, name: str, message: dict[str, Any], tags: list[str], reason: str
    ) -> dict[str, Any]:
        """A forum post: a thread whose starter message has the thread's id."""
        body: dict[str, Any] = {"name": name, "message": message}
        if tags:
            body["applied_tags"] = tags
        return dict(
            self.http.request("POST", f"/channels/{forum_id}/threads", json=body, headers=_audit(reason)).json()
        )

    def send_message(self, channel_id: str, message: dict[str, Any]) -> dict[str, Any]:
        return dict(self.http.request("POST", f"/channels/{channel_id}/messages", json=message).json())

    def messages(self, channel_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.http.request("GET", f"/channels/{channel_id}/messages", params={"limit": limit}).json())

    def messages_before(self, channel_id: str, before: str | None, limit: int = 100) -> list[dict[str, Any]]:
        """One page of a channel's messages, newest first, older than message ``before`` when given (Get Channel
        Messages: ``limit`` 1..100; discord-api-docs developers/resources/message.mdx)."""
        params: dict[str, Any] = {"limit": limit} | ({"before": before} if before else {})
        return list(self.http.request("GET", f"/channels/{channel_id}/messages", params=params).json())

    def messages_after(self, channel_id: str, after: str, limit: int = 100) -> list[dict[str, Any]]:
        """One page of a channel's messages newer than message ``after``: the ``limit`` oldest of them, listed newest
        first (message.mdx:893-914; discord.py ``abc.py`` ``_after_strategy`` takes the next ``after`` from the
        page's first entry)."""
        params = {"limit": limit, "after": after}
        return list(self.http.request("GET", f"/channels/{channel_id}/messages", params=params).json())

    def reaction_users(
        self, channel_id: str, message_id: str, emoji: str, after: str | None = None, burst: bool = False
    ) -> list[dict[str, Any]]:
        """One page (up to 100) of the users who reacted to a message with ``emoji`` (a unicode emoji, or ``name:id``
        for a custom one), by user id ascending after ``after`` (message.mdx:1141-1162, Get Reactions; ``type`` 1 for
        super reactions)."""
        params: dict[str, Any] = {"limit": 100} | ({"after": after} if after else {}) | ({"type": 1} if burst else {})
        path = f"/channels/{channel_id}/messages/{message_id}/reactions/{quote(emoji, safe=':')}"
        return list(self.http.request("GET", path, params=params).json())

    def active_threads(self, guild_id: str) -> list[dict[str, Any]]:
        """Every active thread of the guild, in one answer (no paging)."""
        return list(self.http.request("GET", f"/guilds/{guild_id}/threads/active").json().get("threads", []))

    def archived_threads(self, channel_id: str, before: str | None = None, limit: int = 100) -> dict[str, Any]:
        """One page of a channel's archived public threads, newest archived first: ``{"threads", "has_more"}``;
        ``before`` is the ``archive_timestamp`` (ISO8601) the page ends before; ``limit`` is 2..100."""
        params: dict[str, Any] = {"limit": limit} | ({"before": before} if before else {})
        return dict(self.http.request("GET", f"/channels/{channel_id}/threads/archived/public", params=params).json())

    def current_user(self) -> dict[str, Any]:
        """The bot's own user (``GET /users/@me`` with the bot token)."""
        return dict(self.http.request("GET", "/users/@me").json())

    def edit_message(self, channel_id: str, message_id: str, message: dict[str, Any]) -> dict[str, Any]:
        return dict(self.http.request("PATCH", f"/channels/{channel_id}/messages/{message_id}", json=message).json())

    def pin_message(self, channel_id: str, message_id: str, reason: str) -> None:
        """``PUT /channels/{channel}/messages/pins/{message}`` (``create_pin``, 204; the older ``/pins/{message}`` is
        ``deprecated_create_pin``: /work/shared/specs/discord/openapi.json:3047)."""
        self.http.request("PUT", f"/channels/{channel_id}/messages/pins/{message_id}", headers=_audit(reason))

    def delete_message(self, channel_id: str, message_id: str) -> None:
        self.http.request("DELETE", f"/channels/{channel_id}/messages/{message_id}")

    def edit_thread(self, thread_id: str, changes: dict[str, Any], reason: str) -> dict[str, Any]:
        return dict(self.http.request("PATCH", f"/channels/{thread_id}", json=changes, headers=_audit(reason)).json())

    def delete_channel(self, channel_id: str, reason: str) -> None:
        self.http.request("DELETE", f"/channels/{channel_id}", headers=_audit(reason))

    # ---- Linked Roles --------------------------------------------------------------------------------------------

    def role_metadata(self, application_id: str) -> list[dict[str, Any]]:
        return list(self.http.request("GET", f"/applications/{application_id}/role-connections/metadata").json())

    def set_role_metadata(self, application_id: str, records: list[dict[str, Any]]) -> None:
        self.http.request("PUT", f"/applications/{application_id}/role-connections/metadata", json=records)

    # ---- application commands ------------------------------------------------------------------------------------

    def guild_commands(self, application_id: str, guild_id: str) -> list[dict[str, Any]]:
        """The application's commands on the guild (application-commands.mdx:1275, Get Guild Application Commands)."""
        return list(self.http.request("GET", f"/applications/{application_id}/guilds/{guild_id}/commands").json())

    def set_guild_commands(
        self, application_id: str, guild_id: str, commands: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Replace the application's commands on the guild with ``commands`` (Bulk Overwrite Guild Application
        Commands, application-commands.mdx:1348-1373; the same list twice leaves the same commands)."""
        path = f"/applications/{application_id}/guilds/{guild_id}/commands"
        return list(self.http.request("PUT", path, json=commands).json())

    def close(self) -> None:
        self.http.close()


class DiscordOAuth:
    """The OAuth2 authorization-code flow of one Discord application, and the calls made with a member's token.

    ``api_base``: https://discord.com/api/v10 (the token endpoint is ``<api_base>/oauth2/token``, which Discord also
    serves without the version); ``oauth_base``: the site whose ``/oauth2/authorize`` page the member is sent to.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        api_base: str = API,
        oauth_base: str = "https://discord.com",
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_retry_seconds: float = 60.0,
        keys: str = "",
        clock: Callable[[], float] = time.time,
        max_wait: float = 60.0,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.oauth_base = oauth_base.rstrip("/")
        self.clock = clock
        # Bearer routes have buckets of their own (per token); the same header-driven limiter paces them.
        self.limits = DiscordLimits()
        self.http = RemoteClient(
            "discord-oauth",
            api_base.rstrip("/"),
            headers={"User-Agent": f"DiscordBot (https://github.com/cardbridge/cardbridge, {__version__})"},
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retry_seconds=max_retry_seconds,
            keys=keys,
            transport=transport,
            budget=self.limits,
            max_wait=max_wait,
        )

    def authorize_url(self, redirect_uri: str, scopes: Sequence[str], state: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "scope": " ".join(scopes),
                "state": state,
                "redirect_uri": redirect_uri,
                "prompt": "consent",
            }
        )
        return f"{self.oauth_base}/oauth2/authorize?{query}"

    def _token(self, form: dict[str, str]) -> Tokens:
        try:
            # Client credentials in the form body (Discord accepts them there or as HTTP Basic); a member's Bearer
            # token travels on the other calls of this client, so no client-wide auth is set.
            response = self.http.request(
                "POST", "/oauth2/token", data={**form, "client_id": self.client_id, "client_secret": self.client_secret}
            )
        except RemoteError as error:
            body = error.body if isinstance(error.body, dict) else {}
            if error.status in (400, 401):
                raise OAuthError(
                    str(body.get("error") or error.status), str(body.get("error_description") or "")
                ) from error
            raise
        body = response.json()
        return Tokens(
            body["access_token"],
            body["refresh_token"],
            self.clock() + float(body.get("expires_in", 0)),
            frozenset(str(body.get("scope", "")).split()),
        )

    def exchange(self, code: str, redirect_uri: str) -> Tokens:
        return self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})

    def refresh(self, refresh_token: str) -> Tokens:
        """New tokens; Discord rotates the refresh token, so the old one must be replaced at once."""
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def me(self, access_token: str) -> dict[str, Any]:
        return dict(self.http.request("GET", "/users/@me", headers={"Authorization": f"Bearer {access_token}"}).json())

    def set_role_connection(self, access_token: str, connection: Mapping[str, Any]) -> dict[str, Any]:
        return dict(
            self.http.request(
                "PUT",
                f"/users/@me/applications/{self.client_id}/role-connection",
                json=dict(connection),
                headers={"Authorization": f"Bearer {access_token}"},
            ).json()
        )

    def close(self) -> None:
        self.http.close()

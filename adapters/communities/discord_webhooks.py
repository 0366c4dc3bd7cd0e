"""Follow-ups to interactions: ``PATCH /webhooks/{application.id}/{interaction.token}/messages/@original``.

Interaction webhooks are authenticated by the token in their path, not by the bot token (discord/discord-api-docs
developers/resources/webhook.mdx:10, "They do not require a bot user or authentication"; discord.py sends them
without ``Authorization``), so this client sends no bot token. Their limits are those of webhooks, per webhook and
token, and not the application's global 50/s (developers/interactions/receiving-and-responding.mdx:428-437): the
client has its own :class:`~adapters.communities.discord_client.DiscordLimits`, apart from the bot's.

The token is a credential for 15 minutes. The client, its errors and its log lines only ever see an alias of it
(``t-<hash>``): :class:`_TokenInPath`, the transport, puts the real token into the URL as the request leaves and
takes it out of whatever comes back, so no exception message, no "retrying" log line and no ``RemoteError.url`` can
carry it.

An expired token answers 401 ``50027`` (Invalid Webhook Token) and an unknown one 404 ``10015`` (Unknown Webhook):
discord/discord-api-docs issue #6851 (404 while the 15 minutes last, 401 after), discord.js issues #8335 and #10798
(``DiscordAPIError[50027]: Invalid Webhook Token``, status 401), disnake issue #379. Both raise
:class:`ReplyExpired`: the member's "thinking…" cannot be answered any more, and retrying cannot help.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from adapters import contributions
from adapters.communities.discord_client import API, DiscordLimits, error_code
from adapters.communities.discord_interactions import TOKEN, edit_body
from connector import __version__
from connector.core.http import RemoteClient, RemoteError

#: How long an alias is kept: the token's own life (15 minutes) and a margin.
_ALIAS_SECONDS = 20 * 60
#: At most this many live aliases (one per interaction answered in the last 20 minutes).
_MAX_ALIASES = 10_000


class ReplyExpired(contributions.ReplyExpired):
    """The interaction's token expired (401 50027) or is unknown (404 10015): its reply can no longer be edited."""


def alias_of(token: str) -> str:
    """A stable, non-secret name for a token (a hash prefix): what paths, errors and logs show instead of it."""
    return "t-" + hashlib.sha256(token.encode()).hexdigest()[:24]


class _TokenInPath(httpx.BaseTransport):
    """Swaps a token's alias in the path for the token as the request leaves; errors come back with the alias."""

    def __init__(self, inner: httpx.BaseTransport, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner, self.clock = inner, clock
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def remember(self, token: str) -> str:
        alias = alias_of(token)
        with self._lock:
            now = self.clock()
            if len(self._tokens) >= _MAX_ALIASES:
                self._tokens = {a: (t, at) for a, (t, at) in self._tokens.items() if now - at < _ALIAS_SECONDS}
            self._tokens[alias] = (token, now)
        return alias

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        segments = request.url.raw_path.split(b"/")
        token = None
        with self._lock:
            for i, segment in enumerate(segments):
                found = self._tokens.get(segment.decode("ascii", "replace"))
                if found is not None:
                    token = found[0]
                    segments[i] = token.encode("ascii")
        if token is None:
            return self.inner.handle_request(request)
        outgoing = httpx.Request(
            request.method,
            request.url.copy_with(raw_path=b"/".join(segments)),
            headers=request.headers,
            content=request.read(),
            extensions=request.extensions,
        )
        try:
            return self.inner.handle_request(outgoing)
        except httpx.TransportError as error:
            message = str(error).replace(token, alias_of(token))
            try:
                clean = type(error)(message, request=request)
            except TypeError:  # a subclass with another signature
                clean = httpx.TransportError(message, request=request)
            raise clean from None

    def close(self) -> None:
        self.inner.close()


class InteractionWebhooks:
    """Edits the first reply to interactions of one application."""

    def __init__(
        self,
        application_id: str,
        api_base: str = API,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        max_retry_seconds: float = 60.0,
        keys: str = "",
        max_wait: float = 60.0,
        sleep: Any = None,
    ) -> None:
        self.application_id = application_id
        self._paths = _TokenInPath(transport or httpx.HTTPTransport())
        kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        # Webhook buckets only: interaction webhooks are not bound by the global limit, which stays the bot's.
        self.limits = DiscordLimits(per_second=1000, **kwargs)
        self.http = RemoteClient(
            "discord-interactions",
            api_base.rstrip("/"),
            headers={"User-Agent": f"DiscordBot (https://github.com/cardbridge/cardbridge, {__version__})"},
            budget=self.limits,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retry_seconds=max_retry_seconds,
            keys=keys,
            transport=self._paths,
            max_wait=max_wait,
            **kwargs,
        )

    def _path(self, token: str) -> str:
        if not TOKEN.fullmatch(token):
            raise ValueError("not an interaction token (read it with read_interaction)")
        return f"/webhooks/{self.application_id}/{self._paths.remember(token)}/messages/@original"

    def edit_original(self, token: str, text: str) -> dict[str, Any]:
        """Replace the first reply's text (no mentions parsed); the message as Discord has it now. The same edit twice
        leaves the same message, so a failed attempt is retried like a PUT."""
        try:
            response = self.http.request("PATCH", self._path(token), json=edit_body(text), idempotent=True)
        except RemoteError as error:
            self._expired(error)
            raise
        return dict(response.json())

    def original(self, token: str) -> dict[str, Any]:
        """The first reply as Discord has it (Get Original Interaction Response)."""
        try:
            return dict(self.http.request("GET", self._path(token)).json())
        except RemoteError as error:
            self._expired(error)
            raise

    @staticmethod
    def _expired(error: RemoteError) -> None:
        code = error_code(error)
        if (error.status, code) in ((401, 50027), (404, 10015)):
            raise ReplyExpired(
                f"the interaction's token has expired or is unknown (HTTP {error.status}, code {code}); "
                "a reply must be edited within 15 minutes"
            ) from None

    def close(self) -> None:
        self.http.close()

"""A Discord-shaped REST v10 API on loopback: guild roles, members and forum threads, with Discord's rate limits,
plus the OAuth2 authorization-code flow and the Bearer-token routes that Linked Roles and guild joins need.

Built from ``shared/specs/discord`` (CONNECTOR-NOTES.md, docs-excerpts/rate-limits.mdx, the OpenAPI subset):
``Authorization: Bot <token>`` (401 ``{"message": "401: Unauthorized", "code": 0}``), per-route buckets keyed by the
bucket and the top-level resource (guild or channel id) with ``X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket``
on every answer, 429 ``{"message", "retry_after", "global"}`` with ``Retry-After`` and ``X-RateLimit-Scope``, a 50/s
global gate, error codes 10007 (unknown member), 10011 (unknown role), 50013 (role above the bot's highest role),
50083 (edit in an archived thread), 50035 (invalid form body), and a count of the 401/403/429 answers Discord's
invalid-request limit is built on. Messages that would ping (``@everyone``, user or role mentions without
``allowed_mentions: {"parse": []}``) are recorded in ``pings``.

OAuth2 (docs ``topics/oauth2.mdx``, RFC 6749 where Discord's docs are silent): the consent page at
``/oauth2/authorize`` (not under ``/api``), the token endpoint at ``/api/oauth2/token`` and ``/api/v10/oauth2/token``
(form-encoded only; client authentication by HTTP Basic or ``client_id``/``client_secret`` form fields; single-use
codes valid 10 minutes; 7-day access tokens; rotating refresh tokens; errors ``invalid_client`` 401, ``invalid_grant``
/ ``invalid_request`` / ``unsupported_grant_type`` 400), revocation at ``/api[/v10]/oauth2/token/revoke``. Bearer
routes: ``GET /users/@me`` (scope ``identify``), ``GET /oauth2/@me``, ``GET/PUT/DELETE
/users/@me/applications/{app}/role-connection`` (scope ``role_connections.write``; 50026 without it). Bot routes added
for the same features: role-connection metadata records, Add Guild Member (201 new member, 204 already a member and
``roles`` ignored; 50025 bad OAuth2 token, 50026 token without ``guilds.join``), Create Message (40058 in a forum,
an archived thread is unarchived unless locked, 50083 when locked), and ``REQUIRE_TAG`` forums (40067).

Slash commands over HTTP (docs ``interactions/``): the application has an Ed25519 key pair (``public_key``; the
``verify_key`` of ``GET /applications/@me``); ``verify_endpoint`` saves an Interactions Endpoint URL the way the
Developer Portal does (a signed PING must get a PONG, a forged one a 401); ``send_interaction`` POSTs a member's
signed command; guild commands (bulk overwrite, 200 creates a day); ``GET/PATCH/DELETE
/webhooks/{app}/{token}/messages/@original`` without authentication, 401 ``50027`` after 15 minutes, 404 ``10015``
for a token never answered. Reactions (docs ``resources/message.mdx``): Get Reactions (``limit``, ``after``,
``type``), Create / Delete Own Reaction as the bot or as a member (their client token), ``reactions`` summaries on
messages, Get Channel Messages with ``after``; snowflakes are made from the clock, so their time can be read back.

Layout: ``state`` (the guild and the application, one lock), ``app`` (the front door: log, auth, limits),
``rate_limit`` (buckets and the global gate), one module per group of routes (``guild``: members and roles;
``channels``: channels, threads, messages; ``oauth2``: consent page, token endpoint, ``/users/@me``;
``role_connections``: Linked Roles metadata and connections; ``reactions``; ``interactions``: commands and the
interaction webhook), ``outgoing`` (what Discord sends to an interactions endpoint), ``common`` (paths, error bodies),
and ``sandbox``, the ``DiscordSandbox`` handle with the in-process helpers.
"""

from sandbox.discord.common import API
from sandbox.discord.sandbox import DiscordSandbox

__all__ = ["API", "DiscordSandbox"]

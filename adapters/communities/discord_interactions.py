"""Discord interactions over HTTP: verifying a request, reading a slash command, and the answers the endpoint gives.

Pure functions and constants only (no I/O), so the daemon's route can import them: :func:`pong`,
:func:`ephemeral`, :func:`deferred_ephemeral` build the response bodies; :func:`verify_signature` and
:func:`parse_interaction` do what :class:`~adapters.contributions.InteractionEndpoint` asks of the adapter.

Sources (discord/discord-api-docs at c98d64bc, ``developers/interactions/``):

- ``overview.mdx:74-110``: an endpoint must answer a PING (type 1) with a PONG (type 1) and check
  ``X-Signature-Ed25519`` (hex) over ``X-Signature-Timestamp`` + the raw body with the application's public key,
  answering 401 when it fails; ``:210``: Discord also sends invalid signatures on purpose, and removes an endpoint that
  accepts them.
- ``receiving-and-responding.mdx:22-51``: the interaction object (``member`` in a guild, ``user`` in a DM; ``:47``),
  ``:56-62`` the types, ``:186-199`` the options, ``:268-276`` the callback types (4 message, 5 deferred),
  ``:299``/``:304`` the flags a response may set (``EPHEMERAL``; a deferred response may set only that one),
  ``:325`` "use allowed_mentions" for user data, ``:351`` tokens live 15 minutes.
- ``application-commands.mdx:1348-1373``: Bulk Overwrite Guild Application Commands; ``:100-111`` option types
  (INTEGER 4); ``:155`` guild commands are never available in DMs, and ``dm_permission``/``contexts`` apply only to
  global commands (``:35``, ``:39``), so the guild commands below set neither.
- ``developers/resources/message.mdx`` message flags: ``EPHEMERAL`` is ``1 << 6``.

Replays: Discord's docs do not ask for a check of the timestamp. CardBridge refuses a timestamp more than
:data:`REPLAY_WINDOW` seconds from now: a signed body captured on its way (a proxy's log) cannot be replayed after
its interaction token has expired anyway (15 minutes), so refusing it costs nothing real, and it bounds how long the
daemon must remember interaction ids to drop a replay inside the window. A server clock more than 15 minutes off
would fail Discord's own PINGs, which the Developer Portal reports when the endpoint URL is saved.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from adapters import contributions
from adapters.contributions import Interaction

# ---- constants (receiving-and-responding.mdx:56-62, :268-276; message.mdx message flags) ------------------------------

PING = 1
APPLICATION_COMMAND = 2
PONG = 1
CHANNEL_MESSAGE_WITH_SOURCE = 4
DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
EPHEMERAL = 1 << 6
#: Application command option type INTEGER (application-commands.mdx:105).
INTEGER = 4
#: What a response or an edit may ping: nothing (member text is untrusted; receiving-and-responding.mdx:325).
NO_MENTIONS: dict[str, list[str]] = {"parse": []}
#: A message's content is at most 2000 characters (message.mdx, Create Message).
MAX_CONTENT = 2000
#: Seconds a signed request's timestamp may be from now (see the module's docstring).
REPLAY_WINDOW = 15 * 60
#: The most bytes of a body :func:`parse_interaction` reads (a slash command with one option is under 4 KiB; Discord
#: sends more fields as it adds them, so this leaves room).
MAX_BODY = 64 * 1024
#: The most options a command carries (application-commands.mdx:33, "max of 25").
MAX_OPTIONS = 25
#: Largest INTEGER option Discord sends (application-commands.mdx:105: between -2^53+1 and 2^53-1).
MAX_INTEGER = 2**53 - 1

COMMAND_NAMES = ("points", "redeem")
#: The guild commands CardBridge registers (Bulk Overwrite Guild Application Commands). ``name`` is what arrives as
#: ``data.name`` whatever the member's language; descriptions have a Chinese localisation for 发卡 shops' servers.
COMMANDS: list[dict[str, Any]] = [
    {
        "type": 1,
        "name": "points",
        "description": "Show your points balance",
        "description_localizations": {"zh-CN": "查看你的积分", "zh-TW": "查看你的積分"},
    },
    {
        "type": 1,
        "name": "redeem",
        "description": "Turn points into a shop coupon",
        "description_localizations": {"zh-CN": "用积分兑换商店优惠券", "zh-TW": "用積分兌換商店優惠券"},
        "options": [
            {
                "type": INTEGER,
                "name": "points",
                "description": "How many points to spend",
                "description_localizations": {"zh-CN": "要使用的积分", "zh-TW": "要使用的積分"},
                "required": True,
                "min_value": 1,
            }
        ],
    },
]

_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_HEX_SIGNATURE = re.compile(r"[0-9a-fA-F]{128}")
_SNOWFLAKE = re.compile(r"[0-9]{1,20}")
#: Interaction tokens are long URL-safe strings; anything else is not one Discord made.
TOKEN = re.compile(r"[A-Za-z0-9._\-]{1,500}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class MalformedInteraction(contributions.MalformedInteraction):
    """A verified body that is not a readable command (a field missing or of the wrong shape). The message names the
    field, never the token."""


# ---- the answers the endpoint gives ------------------------------------------------------------------------------------


def pong() -> dict[str, Any]:
    """The answer to a PING (``{"type": 1}``)."""
    return {"type": PONG}


def ephemeral(text: str) -> dict[str, Any]:
    """An answer only the member sees (type 4, ``EPHEMERAL``), pinging nobody, cut to 2000 characters."""
    return {
        "type": CHANNEL_MESSAGE_WITH_SOURCE,
        "data": {"content": _cut(text), "flags": EPHEMERAL, "allowed_mentions": NO_MENTIONS},
    }


def deferred_ephemeral() -> dict[str, Any]:
    """ "Thinking…", only for the member (type 5 with ``EPHEMERAL``, the only flag a deferred answer may set); the
    text follows with :meth:`~adapters.contributions.InteractionEndpoint.edit_reply` within 15 minutes."""
    return {"type": DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, "data": {"flags": EPHEMERAL}}


def edit_body(text: str) -> dict[str, Any]:
    """The body of ``PATCH …/messages/@original``: the text, pinging nobody."""
    return {"content": _cut(text), "allowed_mentions": NO_MENTIONS}


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"


# ---- verifying -------------------------------------------------------------------------------------------------------


def public_key(value: str) -> Ed25519PublicKey:
    """The application's public key (Developer Portal > General Information, 64 hex characters)."""
    if not _HEX_KEY.fullmatch(value):
        raise ValueError("must be the application's public key: 64 hexadecimal characters")
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))


def verify_signature(
    key: Ed25519PublicKey, signature: str, timestamp: str, body: bytes, now: float | None = None
) -> bool:
    """Whether ``signature`` (hex) is the key's Ed25519 signature of ``timestamp + body``, and the timestamp is within
    :data:`REPLAY_WINDOW` of ``now``. Any malformed header is False, never an exception; the check costs the same for
    every well-formed request (one Ed25519 verification)."""
    if not isinstance(signature, str) or not isinstance(timestamp, str) or not isinstance(body, bytes | bytearray):
        return False
    if not _HEX_SIGNATURE.fullmatch(signature) or not _TIMESTAMP.fullmatch(timestamp):
        return False
    try:
        key.verify(bytes.fromhex(signature), timestamp.encode("ascii") + bytes(body))
    except InvalidSignature:
        return False
    now = time.time() if now is None else now
    return abs(now - int(timestamp)) <= REPLAY_WINDOW


# ---- reading ---------------------------------------------------------------------------------------------------------


def is_ping(body: bytes) -> bool:
    """Whether a verified body is a PING (answer :func:`pong`); :func:`parse_interaction` is None for it and for
    interactions CardBridge does not handle, which get no PONG."""
    if len(body) > MAX_BODY:
        return False
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(document, dict) and document.get("type") == PING


def parse_interaction(body: bytes) -> Interaction | None:
    """The slash command in a verified body; None for a PING, another type, or a command CardBridge did not register.

    Bounded: at most :data:`MAX_BODY` bytes and :data:`MAX_OPTIONS` options are read; ids must be snowflakes and the
    token Discord's alphabet. :class:`MalformedInteraction` when a command's fields are not what Discord sends."""
    if len(body) > MAX_BODY:
        raise MalformedInteraction(f"the body is larger than {MAX_BODY} bytes")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedInteraction("the body is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedInteraction("the body is not an object")
    if document.get("type") != APPLICATION_COMMAND:
        return None
    data = document.get("data")
    if not isinstance(data, dict):
        raise MalformedInteraction("data is missing")
    name = data.get("name")
    if name not in COMMAND_NAMES:
        return None
    interaction_id = _snowflake(document.get("id"), "id")
    token = document.get("token")
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise MalformedInteraction("token is missing or not an interaction token")
    guild_id = document.get("guild_id")
    if guild_id is not None:
        guild_id = _snowflake(guild_id, "guild_id")
    # member.user in a guild, user in a DM (receiving-and-responding.mdx:47).
    member = document.get("member")
    user = member.get("user") if isinstance(member, dict) else document.get("user")
    if not isinstance(user, dict):
        raise MalformedInteraction("member.user (or user) is missing")
    user_id = _snowflake(user.get("id"), "user.id")
    username = user.get("username")
    if not isinstance(username, str) or not username:
        raise MalformedInteraction("user.username is missing")
    return Interaction(
        interaction_id=interaction_id,
        token=token,
        user_id=user_id,
        username=_CONTROL.sub("", username)[:32],
        command=str(name),
        amount=_points_option(data.get("options")),
        guild_id=guild_id,
    )


def _snowflake(value: Any, field: str) -> str:
    if isinstance(value, str) and _SNOWFLAKE.fullmatch(value):
        return value
    raise MalformedInteraction(f"{field} is not a snowflake")


def _points_option(options: Any) -> int | None:
    """The INTEGER option ``points``, or None when it is absent."""
    if options is None:
        return None
    if not isinstance(options, list) or len(options) > MAX_OPTIONS:
        raise MalformedInteraction(f"options is not a list of at most {MAX_OPTIONS}")
    for option in options:
        if not isinstance(option, dict) or option.get("name") != "points":
            continue
        value = option.get("value")
        # bool is an int in Python; Discord sends INTEGER options as JSON numbers without a fraction.
        if option.get("type") != INTEGER or isinstance(value, bool) or not isinstance(value, int):
            raise MalformedInteraction("option points is not an integer")
        if abs(value) > MAX_INTEGER:
            raise MalformedInteraction("option points is out of range")
        return value
    return None

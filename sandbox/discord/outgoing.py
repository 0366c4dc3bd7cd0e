"""What Discord sends to an application's Interactions Endpoint URL: signed interactions, and the checks made when the
URL is saved.

discord/discord-api-docs (commit c98d64bc), developers/interactions/:

- overview.mdx:74-110: saving the URL, Discord POSTs a PING (``type`` 1) and wants a 200 with a PONG (``type`` 1) and a
  valid ``Content-Type`` (:84); every request carries ``X-Signature-Ed25519`` (hex Ed25519 signature of
  ``X-Signature-Timestamp`` + the raw body) and the endpoint must answer 401 when it does not verify; :210 Discord
  also sends invalid signatures on purpose and drops a URL that accepts them. :meth:`Outgoing.verify_endpoint` does
  both: a valid PING, then one signed by another key, which must get a 401.
- receiving-and-responding.mdx:22-51 the interaction's fields (``member`` in a guild, ``user`` in a DM), :351 the
  first answer within 3 seconds, :268-276 and :299-304 the callback types and flags the answer may use (a deferred
  answer: ``EPHEMERAL`` only). An answer that is not one of those leaves the interaction failed: its token never
  becomes usable (Unknown Webhook).
- application-commands.mdx: Discord only sends commands the application registered, with their options checked
  (``required``, ``min_value``) by the client before sending.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sandbox.discord.state import DiscordState, Row

#: Discord's deadline for the first answer (receiving-and-responding.mdx:351).
DEADLINE = 3.0
EPHEMERAL = 1 << 6
LOADING = 1 << 7
#: Flags an answer of type 4 may set (receiving-and-responding.mdx:299): SUPPRESS_EMBEDS, EPHEMERAL,
#: SUPPRESS_NOTIFICATIONS, IS_VOICE_MESSAGE, IS_COMPONENTS_V2.
MESSAGE_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 13) | (1 << 15)


class CommandNotRegistered(ValueError):
    """The member's client cannot send a command the application did not register (or options it would refuse)."""


class Outgoing:
    def __init__(self, discord: DiscordState) -> None:
        self.discord = discord

    # ---- signing and posting ---------------------------------------------------------------------------------------

    def _post(self, url: str, body: bytes, sign: bool = True, key: Any = None, signed_body: bytes | None = None) -> Row:
        with self.discord.lock:
            timestamp = str(int(self.discord.clock()))
            signer = key or self.discord.signing_key
        headers = {"Content-Type": "application/json", "User-Agent": "Discord-Interactions/1.0 (+https://discord.com)"}
        if sign:
            signature = signer.sign(timestamp.encode() + (signed_body if signed_body is not None else body))
            headers |= {"X-Signature-Ed25519": signature.hex(), "X-Signature-Timestamp": timestamp}
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=DEADLINE)
        except httpx.HTTPError as failure:
            return {"status": 0, "answer": None, "content_type": "", "error": type(failure).__name__}
        try:
            answer = response.json()
        except ValueError:
            answer = None
        return {
            "status": response.status_code,
            "answer": answer,
            "content_type": response.headers.get("content-type", ""),
        }

    # ---- saving the endpoint URL -------------------------------------------------------------------------------------

    def verify_endpoint(self, url: str) -> bool:
        """What the Developer Portal does when the URL is saved: a valid PING must get 200 ``{"type": 1}`` as JSON, and
        a PING signed by another key must get 401. True (and the URL is saved) only if both hold."""
        with self.discord.lock:
            ping = json.dumps(
                {
                    "id": self.discord.new_id(),
                    "application_id": self.discord.client_id,
                    "type": 1,
                    "token": secrets.token_urlsafe(48),
                    "version": 1,
                }
            ).encode()
        good = self._post(url, ping)
        pong = (
            good["status"] == 200
            and good["content_type"].split(";")[0].strip() == "application/json"
            and isinstance(good["answer"], dict)
            and good["answer"].get("type") == 1
        )
        forged = self._post(url, ping, key=Ed25519PrivateKey.generate())
        ok = pong and forged["status"] == 401
        with self.discord.lock:
            self.discord.interaction_log.append(
                {"check": url, "ok": ok, "ping_status": good["status"], "forged_status": forged["status"]}
            )
            if ok:
                self.discord.interactions_endpoint_url = url
        return ok

    # ---- a member runs a slash command -------------------------------------------------------------------------------

    def send_interaction(
        self,
        url: str,
        command: str,
        user_id: str,
        options: dict[str, Any] | None = None,
        *,
        sign: bool = True,
        tamper: bool = False,
        in_dm: bool = False,
    ) -> tuple[int, Any]:
        """A member runs ``/command`` with ``options``: the interaction is POSTed to ``url`` as Discord would send it
        (``sign=False``: without signature headers; ``tamper=True``: the body is changed after it was signed).
        Returns the HTTP status and the JSON answer; Discord keeps the token usable only after a valid answer."""
        discord = self.discord
        with discord.lock:
            registered = discord.commands.get(command)
            if registered is None:
                raise CommandNotRegistered(f"/{command} is not one of the application's guild commands")
            given = _options(registered, options or {})
            token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
            interaction_id = discord.new_id()
            user = discord.public_user(user_id)
            payload: Row = {
                "id": interaction_id,
                "application_id": discord.client_id,
                "type": 2,
                "data": {"id": registered["id"], "name": command, "type": 1, "guild_id": discord.guild_id}
                | ({"options": given} if given else {}),
                "token": token,
                "version": 1,
                "app_permissions": str(discord.bot_permissions()),
                "locale": "en-US",
                "entitlements": [],
                "attachment_size_limit": 10485760,
            }
            if in_dm:
                payload |= {"user": user, "context": 1, "authorizing_integration_owners": {"0": "0"}}
            else:
                payload |= {
                    "guild_id": discord.guild_id,
                    "guild": {"id": discord.guild_id, "locale": "en-US", "features": []},
                    "channel_id": discord.guild_id,
                    "guild_locale": "en-US",
                    "context": 0,
                    "authorizing_integration_owners": {"0": discord.guild_id},
                    "member": {
                        "user": user,
                        "roles": sorted(discord.members.get(user_id, set())),
                        "joined_at": "2026-01-01T00:00:00+00:00",
                        "nick": discord.nicks.get(user_id),
                        "deaf": False,
                        "mute": False,
                        "flags": 0,
                        "pending": False,
                        "permissions": str(discord.bot_permissions()),
                    },
                }
            discord.interactions[token] = {
                "id": interaction_id,
                "created": discord.clock(),
                "acknowledged": False,
                "original": None,
                "edits": [],
            }
        body = json.dumps(payload).encode()
        sent = body
        if tamper:
            changed = json.loads(body)
            changed["data"]["name"] = "redeem" if command != "redeem" else "points"
            sent = json.dumps(changed).encode()
        result = self._post(url, sent, sign=sign, signed_body=body)
        with discord.lock:
            record = discord.interactions[token]
            original = _original(result)
            if original is not None:
                record["acknowledged"] = True
                record["original"] = {
                    "id": discord.new_id(),
                    "type": 20,
                    "channel_id": payload.get("channel_id"),
                    "content": original["content"],
                    "flags": original["flags"],
                    "author": discord.bot_user(),
                    "interaction_metadata": {"id": interaction_id, "type": 2, "user": user},
                    "edited_timestamp": None,
                    "mentions": [],
                    "embeds": [],
                }
            discord.interaction_log.append({"payload": payload, "status": result["status"], "answer": result["answer"]})
        return result["status"], result["answer"]


def _options(command: Row, given: dict[str, Any]) -> list[Row]:
    """The options as Discord sends them, after the checks its client makes before it lets the member send."""
    declared = {o["name"]: o for o in command.get("options") or []}
    for name in given:
        if name not in declared:
            raise CommandNotRegistered(f"/{command['name']} has no option {name!r}")
    out = []
    for name, option in declared.items():
        if name not in given:
            if option.get("required"):
                raise CommandNotRegistered(f"/{command['name']} needs {name}")
            continue
        value = given[name]
        if option["type"] == 4 and (isinstance(value, bool) or not isinstance(value, int)):
            raise CommandNotRegistered(f"{name} must be an integer")
        if option.get("min_value") is not None and value < option["min_value"]:
            raise CommandNotRegistered(f"{name} must be at least {option['min_value']}")
        out.append({"name": name, "type": option["type"], "value": value})
    return out


def _original(result: Row) -> Row | None:
    """The first reply a valid answer makes (content and flags), or None when Discord would fail the interaction."""
    answer = result["answer"]
    if result["status"] != 200 or not isinstance(answer, dict):
        return None
    if result["content_type"].split(";")[0].strip() != "application/json":
        return None
    raw = answer.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    flags = data.get("flags", 0) if isinstance(data.get("flags", 0), int) else -1
    if answer.get("type") == 5:
        if flags & ~EPHEMERAL:
            return None  # a deferred answer may set EPHEMERAL only (receiving-and-responding.mdx:304)
        return {"content": "", "flags": flags | LOADING}
    if answer.get("type") == 4:
        content = data.get("content")
        if flags < 0 or flags & ~MESSAGE_FLAGS or not isinstance(content, str) or not 0 < len(content) <= 2000:
            return None
        return {"content": content, "flags": flags}
    return None

"""Application command and interaction-webhook routes.

discord/discord-api-docs (commit c98d64bc), developers/interactions/:

Form errors: 400 ``50035`` with the failing fields; the sandbox decides the status, the code and the field paths,
not the wording of Discord's field messages (placeholders).

- application-commands.mdx:1275-1289 Get Guild Application Commands; :1348-1373 Bulk Overwrite Guild Application
  Commands (``PUT``, 200 and the list; a command whose ``name`` exists keeps its id, the rest are created, and
  commands not listed are deleted); :18 names match ``^[-_'\\p{L}\\p{N}]{1,32}$``, lowercase; :31/:73 descriptions
  1-100 characters; :33 at most 25 options, required ones first (:63); :100-111 option types; :177 at most 200
  command creates a day per guild (``30034``, opcodes-and-status-codes.mdx:219). A bot whose application is not the
  one in the path: ``20012`` (opcodes-and-status-codes.mdx:191).
- receiving-and-responding.mdx:455-468 Get / Edit / Delete Original Interaction Response, which work like the webhook
  message routes (webhook.mdx:288-360): no authentication but the token in the path (webhook.mdx:10), content at
  most 2000 characters, ``allowed_mentions`` as for messages. :351/:432 a token is valid 15 minutes, and only once
  the interaction was answered within 3 seconds. An expired token answers 401 ``50027`` Invalid Webhook Token, an
  unknown (or never answered) one 404 ``10015`` Unknown Webhook: discord/discord-api-docs issue #6851 (404 within
  the 15 minutes, 401 after), discord.js issues #8335 and #10798 (``50027``, status 401).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.discord.common import API, body_of, error, field_error, form_error, iso, raw_body
from sandbox.discord.state import DiscordState, Row

#: An interaction token may be used this long after the interaction was sent (seconds).
TOKEN_SECONDS = 15 * 60
DAILY_CREATES = 200
MAX_COMMANDS = 100
_NAME = re.compile(r"^[-_'\w]{1,32}$")
_MENTION = re.compile(r"@everyone|@here|<@&?!?\d+>")
_OPTION_TYPES = set(range(1, 12))


def _check_option(option: Any, path: str, errors: dict[str, Any]) -> None:
    if not isinstance(option, dict):
        errors[path] = field_error("BASE_TYPE_REQUIRED", "This field is required")
        return
    name = option.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or name != name.lower():
        errors[f"{path}.name"] = field_error("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    description = option.get("description")
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        errors[f"{path}.description"] = field_error("BASE_TYPE_REQUIRED", "This field is required")
    if option.get("type") not in _OPTION_TYPES:
        errors[f"{path}.type"] = field_error("BASE_TYPE_REQUIRED", "This field is required")


def check_commands(body: Any) -> dict[str, Any]:
    """The form errors Discord would give for a bulk overwrite (empty: valid)."""
    errors: dict[str, Any] = {}
    if not isinstance(body, list):
        return {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}
    if len(body) > MAX_COMMANDS:
        return {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 100 or fewer in length."}]}
    for i, command in enumerate(body):
        _check_option(command if isinstance(command, dict) and command.get("type", 1) == 1 else None, str(i), errors)
        if not isinstance(command, dict):
            continue
        errors.pop(f"{i}.type", None)  # a command's type is 1..4, checked above as CHAT_INPUT only
        options = command.get("options") or []
        if not isinstance(options, list) or len(options) > 25:
            errors[f"{i}.options"] = field_error("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            continue
        seen_optional = False
        for j, option in enumerate(options):
            _check_option(option, f"{i}.options.{j}", errors)
            if isinstance(option, dict):
                if option.get("required") and seen_optional:
                    errors[f"{i}.options.{j}.required"] = field_error("BASE_TYPE_REQUIRED", "This field is required")
                seen_optional = seen_optional or not option.get("required")
    names = [c.get("name") for c in body if isinstance(c, dict)]
    if len(set(names)) != len(names):
        errors["_errors"] = [{"code": "APPLICATION_COMMAND_INVALID_NAME", "message": "Command name is invalid"}]
    return errors


class Interactions:
    def __init__(self, discord: DiscordState) -> None:
        self.discord = discord

    def routes(self) -> list[BaseRoute]:
        return [
            Route(
                f"{API}/applications/{{application}}/guilds/{{guild}}/commands", self.commands, methods=["GET", "PUT"]
            ),
            Route(
                f"{API}/webhooks/{{application}}/{{token}}/messages/@original",
                self.original,
                methods=["GET", "PATCH", "DELETE"],
            ),
        ]

    async def commands(self, request: Request) -> Response:
        discord = self.discord
        with discord.lock:
            if request.path_params["application"] != discord.client_id:
                return error(403, 20012, "You are not authorized to perform this action on this application")
            if request.path_params["guild"] != discord.guild_id:
                return error(404, 10004, "Unknown Guild")
            if not discord.bot_in_guild:
                return error(403, 50001, "Missing Access")
            if request.method == "GET":
                return JSONResponse(list(discord.commands.values()))
            body = raw_body(request)
            errors = check_commands(body)
            if errors:
                return form_error(errors)
            new = [c for c in body if c["name"] not in discord.commands]
            if discord.command_creates + len(new) > DAILY_CREATES:
                return error(429, 30034, "Max number of daily application command creates has been reached (200)")
            discord.command_creates += len(new)
            commands: dict[str, Row] = {}
            for command in body:
                kept = discord.commands.get(command["name"])
                commands[command["name"]] = {
                    "id": kept["id"] if kept else discord.new_id(),
                    "application_id": discord.client_id,
                    "guild_id": discord.guild_id,
                    "version": discord.new_id(),
                    "type": command.get("type", 1),
                    "name": command["name"],
                    "description": command["description"],
                    "description_localizations": command.get("description_localizations"),
                    "default_member_permissions": command.get("default_member_permissions"),
                    "nsfw": bool(command.get("nsfw", False)),
                    "options": command.get("options") or [],
                }
            discord.commands = commands
            return JSONResponse(list(commands.values()))

    def _interaction(self, request: Request) -> tuple[Row | None, Response | None]:
        discord = self.discord
        found = discord.interactions.get(request.path_params["token"])
        if request.path_params["application"] != discord.client_id or found is None or not found["acknowledged"]:
            return None, error(404, 10015, "Unknown Webhook")
        if discord.clock() - found["created"] > TOKEN_SECONDS:
            return None, error(401, 50027, "Invalid Webhook Token")
        return found, None

    async def original(self, request: Request) -> Response:
        discord = self.discord
        body = body_of(request)
        with discord.lock:
            found, refused = self._interaction(request)
            if refused is not None or found is None:
                return refused or error(404, 10015, "Unknown Webhook")
            message = found.get("original")
            if message is None:
                return error(404, 10008, "Unknown Message")
            if request.method == "GET":
                return JSONResponse(message)
            if request.method == "DELETE":
                found["original"] = None
                return Response(status_code=204)
            content = body.get("content")
            if content is not None and (not isinstance(content, str) or len(content) > 2000):
                return form_error({"content": field_error("BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")})
            if isinstance(content, str):
                allowed = body.get("allowed_mentions")
                parses = None if not isinstance(allowed, dict) else set(allowed.get("parse") or [])
                if _MENTION.search(content) and (parses is None or parses):
                    discord.pings.append({"content": content, "allowed_mentions": allowed})
                message["content"] = content
            # An edit ends the "thinking…" state (LOADING, 1 << 7); the ephemeral flag stays.
            message["flags"] = message["flags"] & ~(1 << 7)
            message["edited_timestamp"] = iso(discord.clock())
            found["edits"].append({"content": message["content"], "allowed_mentions": body.get("allowed_mentions")})
            return JSONResponse(message)

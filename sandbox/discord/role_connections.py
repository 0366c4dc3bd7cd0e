"""Linked Roles: the application's role-connection metadata records (bot token; ``PUT`` replaces the whole set, at
most 5) and a user's role connection (``GET/PUT/DELETE /users/@me/applications/{app}/role-connection``, Bearer token
with scope ``role_connections.write``; 50026 without it)."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.discord.common import API, error, field_error, form_error, raw_body, token_of
from sandbox.discord.state import DiscordState

METADATA_KEY = re.compile(r"^[a-z0-9_]{1,50}$")


class RoleConnections:
    def __init__(self, discord: DiscordState) -> None:
        self.discord = discord

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{API}/applications/{{app}}/role-connections/metadata", self.metadata, methods=["GET", "PUT"]),
            Route(
                f"{API}/users/@me/applications/{{app}}/role-connection",
                self.role_connection,
                methods=["GET", "PUT", "DELETE"],
            ),
        ]

    async def metadata(self, request: Request) -> Response:
        """Role-connection metadata records (bot token): ``PUT`` replaces the whole set (at most 5)."""
        body = raw_body(request)
        with self.discord.lock:
            if request.path_params["app"] != self.discord.client_id:
                return error(404, 10002, "Unknown Application")
            if request.method == "GET":
                return JSONResponse(self.discord.metadata_records)
            records = [] if body is None else body
            if not isinstance(records, list):
                return form_error(field_error("BASE_TYPE_ARRAY", "Must be an array."))
            if len(records) > 5:
                return form_error(field_error("BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."))
            errors: dict[str, Any] = {}
            seen: set[str] = set()
            for index, record in enumerate(records):
                problems = _metadata_problems(record, seen)
                if problems:
                    errors[str(index)] = problems
                elif isinstance(record, dict):
                    seen.add(record["key"])
            if errors:
                return form_error(errors)
            fields = ("type", "key", "name", "name_localizations", "description", "description_localizations")
            self.discord.metadata_records = [{k: r[k] for k in fields if k in r} for r in records]
            return JSONResponse(self.discord.metadata_records)

    async def role_connection(self, request: Request) -> Response:
        token = token_of(request)
        assert token is not None
        body = raw_body(request)
        with self.discord.lock:
            if "role_connections.write" not in token["scopes"]:
                return error(403, 50026, "Missing required OAuth2 scope")
            if request.path_params["app"] != self.discord.client_id:
                return error(404, 10002, "Unknown Application")
            user = token["user"]
            empty: dict[str, Any] = {"platform_name": None, "platform_username": None, "metadata": {}}
            if request.method == "GET":
                return JSONResponse(self.discord.role_connections.get(user, empty))
            if request.method == "DELETE":
                self.discord.role_connections.pop(user, None)
                return Response(status_code=204)
            if not isinstance(body, dict):
                return form_error(field_error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"))
            errors = self._problems(body)
            if errors:
                return form_error(errors)
            # values are stored stringified, as Python's str() does it: ``true`` becomes "True" (discord-api-docs#5755)
            metadata = {k: str(v) for k, v in (body.get("metadata") or {}).items()}
            self.discord.role_connections[user] = {
                "platform_name": body.get("platform_name"),
                "platform_username": body.get("platform_username"),
                "metadata": metadata,
            }
            return JSONResponse(self.discord.role_connections[user])

    def _problems(self, body: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        for field, most in (("platform_name", 50), ("platform_username", 100)):
            value = body.get(field)
            if value is not None and not isinstance(value, str):
                errors[field] = field_error("BASE_TYPE_STRING", "Must be a string.")
            elif value is not None and len(value) > most:
                errors[field] = field_error("BASE_TYPE_MAX_LENGTH", f"Must be {most} or fewer in length.")
        metadata = body.get("metadata")
        if metadata is None:
            return errors
        if not isinstance(metadata, dict):
            errors["metadata"] = field_error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            return errors
        if len(metadata) > 5:
            errors["metadata"] = field_error("BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
            return errors
        known = {r["key"] for r in self.discord.metadata_records}
        problems: dict[str, Any] = {}
        for key, value in metadata.items():
            if key not in known:
                problems[key] = field_error(
                    "APPLICATION_ROLE_CONNECTION_METADATA_KEY_INVALID",
                    f"Metadata key {key!r} is not registered for this application.",
                )
            elif not isinstance(value, (str, int)) or not 1 <= len(str(value)) <= 100:
                problems[key] = field_error("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if problems:
            errors["metadata"] = problems
        return errors


def _metadata_problems(record: Any, seen: set[str]) -> dict[str, Any]:
    if not isinstance(record, dict):
        return field_error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    problems: dict[str, Any] = {}
    kind = record.get("type")
    if isinstance(kind, bool) or not isinstance(kind, int) or not 1 <= kind <= 8:
        problems["type"] = field_error("ENUM_TYPE_COERCE", f'Value "{kind}" is not a valid enum value.')
    key = record.get("key")
    if not isinstance(key, str) or not METADATA_KEY.match(key):
        problems["key"] = field_error("BASE_TYPE_REGEX", "Must be 1-50 characters of a-z, 0-9 or _.")
    elif key in seen:
        problems["key"] = field_error("DUPLICATE_KEY", "Keys must be unique.")
    for field, most in (("name", 100), ("description", 200)):
        value = record.get(field)
        if not isinstance(value, str) or not 1 <= len(value) <= most:
            problems[field] = field_error("BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {most} in length.")
    return problems

"""What controllers share with the app: the request context a handler gets, the route entries they register, and the
``ApplicationController`` helpers that look at the acting user."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.discourse.errors import not_found
from sandbox.discourse.state import ForumState, Row

#: An optional ``.json`` suffix, as Rails routes accept one.
J = r"(?:\.json)?"


@dataclass
class Ctx:
    method: str
    path: str
    params: dict[str, Any]
    path_params: dict[str, str]
    actor: Row
    #: ``Discourse.base_url``: scheme, host, port and the subfolder (``Discourse.base_path``) of a subfolder install.
    base_url: str
    wants_json: bool
    headers: dict[str, str] = field(default_factory=dict)


#: A handler answers a JSON-able value (200) or an ``Answer``; it may also raise an ``Answer``.
Handler = Callable[[Ctx], Any]


@dataclass(frozen=True)
class Endpoint:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    #: Rails ``AdminConstraint``: the route does not exist (404) for a non-admin acting user.
    admin_only: bool


def route(method: str, pattern: str, handler: Handler, admin_only: bool = False) -> Endpoint:
    """One route; ``pattern`` matches the whole path (named groups become ``path_params``)."""
    return Endpoint(method, re.compile(rf"\A{pattern}\Z"), handler, admin_only)


def user_from_params(forum: ForumState, ctx: Ctx, key: str = "username") -> Row:
    user = forum.find_user(ctx.params.get(key))
    if user is None:
        raise not_found()
    return user

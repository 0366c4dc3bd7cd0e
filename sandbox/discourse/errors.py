"""The forum's error answers: the strings (``config/locales/server.en.yml``; every answer is rendered in the forum's
locale, see :mod:`sandbox.discourse.locales`), the ``rescue_from`` shapes (``{"errors": [...], "error_type": ...}``)
and the ``ApplicationController`` parameter helpers that raise them.

Shapes (discourse/discourse app/controllers/application_controller.rb): ``rescue_discourse_actions`` renders
``render_json_error(I18n.t(type), type: type, status:)`` for ``Discourse::NotFound`` (404, ``not_found``) and
``Discourse::InvalidAccess`` (403, ``invalid_access``); ``Discourse::InvalidParameters`` is 400 ``invalid_parameters``
with ``I18n.t("invalid_params", message: e.message)``; a bare ``render_json_error(message)`` is 422 with no
``error_type`` (``create_errors_json`` adds ``error_type`` only when a ``type`` is given)."""

from __future__ import annotations

from typing import Any

from sandbox.discourse.locales import localise, t
from sandbox.discourse.rails import blank, strict_int

# ---- strings (config/locales/server.en.yml) ---------------------------------------------------------------------------

MSG_NOT_FOUND = "The requested URL or resource could not be found."
MSG_INVALID_ACCESS = "You are not permitted to view the requested resource."
MSG_INVALID_API_CREDENTIALS = (
    "You are not permitted to view the requested resource. The API username or key is invalid."
)
MSG_INVALID_PARAMS = "You supplied invalid parameters to the request: {}"
MSG_PARAM_MISSING = "param is missing or the value is empty: {}"
MSG_EDIT_CONFLICT = "That post was edited by another user and your changes can no longer be saved."
MSG_TOPIC_NOT_FOUND = "Something has gone wrong. Perhaps this topic was closed or deleted while you were looking at it?"
MSG_TOO_MANY = "You’ve performed this action too many times. Please wait {} before trying again."
MSG_BAD_BADGE_REASON = "External or invalid discourse link is not allowed in badge reason"
MSG_MISSING_USER_FIELD = "You have not completed all the user fields"
MSG_CANT_MODIFY_AUTOMATIC = "You cannot modify an automatic group"
MSG_CANT_ALLOW_REQUESTS = "You cannot allow membership requests for a group without any owners."
MSG_USERNAMES_OR_EMAILS = "Usernames or emails must be present"
MSG_REMOVE_NEEDS_USERS = "user_ids or usernames or user_emails must be present"

# ---- answers --------------------------------------------------------------------------------------------------------------


class Answer(Exception):
    """A response decided deep in a handler (Discourse's ``rescue_from`` paths)."""

    def __init__(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        media_type: str = "application/json; charset=utf-8",
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.media_type = media_type


def error_body(
    errors: list[str], error_type: str | None = None, extras: dict[str, Any] | None = None
) -> dict[str, Any]:
    # Handlers that hold an English ``MSG_*`` constant answer in the forum's locale too.
    body: dict[str, Any] = {"errors": [localise(e) if isinstance(e, str) else e for e in errors]}
    if error_type:
        body["error_type"] = error_type
    if extras is not None:
        body["extras"] = extras
    return body


def not_found(extras: dict[str, Any] | None = None) -> Answer:
    return Answer(404, error_body([t("not_found")], "not_found", extras))


def forbidden(message: str | None = None) -> Answer:
    return Answer(403, error_body([message or t("invalid_access")], "invalid_access"))


def invalid_params(message: str) -> Answer:
    """``Discourse::InvalidParameters.new(message)``: the parameter's name (or an already translated sentence)
    inside the translated ``invalid_params``."""
    return Answer(400, error_body([t("invalid_params", message=message)], "invalid_parameters"))


def json_error(errors: list[str] | str, status: int = 422, error_type: str | None = None) -> Answer:
    """``render_json_error``: 422 by default, ``error_type`` only when the caller names one."""
    return Answer(status, error_body([errors] if isinstance(errors, str) else list(errors), error_type))


def require(params: dict[str, Any], key: str) -> Any:
    """``params.require(key)``: 400 ``ParameterMissing`` when absent or blank."""
    value = params.get(key)
    if blank(value):
        raise Answer(400, {"errors": [MSG_PARAM_MISSING.format(key)]})
    return value


def fetch_int(
    params: dict[str, Any], key: str, default: int, minimum: int | None = 0, maximum: int | None = None
) -> int:
    """``ApplicationController#fetch_int_from_params``: a present value must be an integer within bounds."""
    if key not in params:
        return default
    value = params[key]
    parsed = strict_int(value) if not isinstance(value, int) or isinstance(value, bool) else value
    if parsed is None:
        raise invalid_params(key)
    if (minimum is not None and parsed < minimum) or (maximum is not None and parsed > maximum):
        raise invalid_params(key)
    return parsed

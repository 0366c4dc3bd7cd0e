"""What an adapter's settings are built from: the strict base model, shared field types, errors that name their key,
and the two bases the core reads (:class:`ShopSettings`, :class:`CommunitySettings`).

An adapter declares its own model as a class attribute (``settings = WooCommerceSettings``), subclassing one of the
bases with the keys, defaults and checks it needs. The config looks the adapter up by ``kind`` (entry points, see
:mod:`connector.core.plugins`) and validates the table with that model, so after loading, ``config.shop`` *is* a
``WooCommerceSettings``. The core itself reads only the keys the bases declare.

Errors name the whole key: pydantic's own errors carry their location, and a :class:`KeyedError` raised inside a model
names a key relative to that model (``base_url``), to which the location of the model is prefixed (``shop.``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and says why."""


class KeyedError(ValueError):
    """A validation error about ``key``, relative to the model that raises it (``"base_url"``, ``"fields.email"``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


_BOOLEANS: tuple[Any, ...] = (bool, bool | None)


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo cannot silently switch something off); loaded values do not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads "yes", "off", 1 as booleans; a switch in the config is true or false, so a
        # quoted "yes" is a mistake to name, not a guess to make (applies to every settings model, adapters' too).
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and field.annotation in _BOOLEANS and not isinstance(value, bool):
            raise PydanticCustomError(
                "strict_bool", "must be true or false (unquoted), not {value}", {"value": repr(value)}
            )
        return value


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


def _filled(value: str) -> str:
    # The same answer as a missing key: "${VAR}" set to an empty string is as good as no value.
    if not value.strip():
        raise PydanticCustomError("required", "is required")
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


#: A site root such as ``https://shop.example.com`` (a trailing slash is dropped).
HttpUrl = Annotated[str, AfterValidator(_http_url)]
#: A string that must be given and not empty (a token, an id); reported like a missing key.
RequiredStr = Annotated[str, AfterValidator(_filled)]
#: An IANA time zone name (``Asia/Shanghai``).
TimeZone = Annotated[str, AfterValidator(_time_zone)]
#: Seconds, zero or more (a look-back before a cursor).
Seconds = Annotated[int, Field(ge=0)]
#: A per-request timeout in seconds, more than zero.
Timeout = Annotated[float, Field(gt=0)]
#: Records per request; 100 is the most WooCommerce (and most shops) allow.
PageSize = Annotated[int, Field(ge=1, le=100)]
#: Seconds one request may spend on its attempts and waits, more than zero and at most an hour.
RetrySeconds = Annotated[float, Field(gt=0, le=3600)]


class RemoteTimeouts(StrictModel):
    """How long a remote gets (mixed into the settings of a shop or community reached over HTTP).

    Sized for one API call: a remote that accepts connections and never answers fails the pass for that remote in
    about ``max_retry_seconds``, with a message naming the key to change.
    """

    #: Seconds to wait for the answer (each read of it) once connected.
    timeout_seconds: Timeout = 15.0
    #: Seconds to wait for a connection.
    connect_timeout_seconds: Timeout = 5.0
    #: Seconds one request may take over all its attempts and the waits between them; after a remote failed to
    #: answer, it is not asked again for this long (the pass goes on without it).
    max_retry_seconds: RetrySeconds = 60.0


class ShopSettings(StrictModel):
    """``[shop]``: the base of every shop adapter's settings. ``kind`` picks the adapter; it is all the core reads."""

    kind: str


class CommunitySettings(StrictModel):
    """``[communities.<name>]``: the base of every community adapter's settings; the core reads these keys."""

    kind: str
    #: Seconds before a customer with no account on this community is looked up again.
    unmatched_retry_seconds: Annotated[int, Field(ge=0)] = 900
    #: The longest single wait the community may impose (a 429's ``Retry-After``; Discord ``shared`` limits can ask
    #: for 1337 s). A longer one is not slept: the action is deferred to the time given and the pass goes on.
    max_retry_wait_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0

    def missing_for(self, section: str) -> list[str]:
        """Keys (of this model) this community lacks to serve the config section ``section`` (e.g. ``"link"``).

        The config reports each as ``communities.<name>.<key>: is required by [<section>]``. None by default.
        """
        return []


def split_communities(data: Any, model: type[BaseModel]) -> Any:
    """``[reviews]``, ``[points]`` and ``[earn]`` mix their own keys with one key per community: gather the latter."""
    if isinstance(data, dict):
        own = set(model.model_fields)
        rest = {k: v for k, v in data.items() if k not in own}
        data = {k: v for k, v in data.items() if k in own}
        data["communities"] = {**data.get("communities", {}), **rest}
    return data


M = TypeVar("M", bound=BaseModel)


def validate_table(model: type[M], table: Mapping[str, Any], where: str) -> M:
    """Validate one table alone with ``model`` (an adapter's tests, a tool); errors name keys under ``where``."""
    try:
        return model.model_validate(dict(table))
    except ValidationError as error:
        raise ConfigError(format_errors(error, {where: table}, (where,))) from None


def format_errors(error: ValidationError, data: Any, prefix: Sequence[str] = ()) -> str:
    """One line per error, ``key: why``, joined by ``; ``. ``data`` is the validated input (its ``kind`` keys make
    "is required" say which adapter requires the key); ``prefix`` is where the validated model sits in it."""
    lines = []
    for item in error.errors():
        loc = [*prefix, *(str(part) for part in item["loc"])]
        ctx_error = (item.get("ctx") or {}).get("error")
        if isinstance(ctx_error, KeyedError):
            loc.append(ctx_error.key)
            message = str(ctx_error)
        elif item["type"] == "extra_forbidden":
            message = "unknown key (see config.example.toml for the keys there are)"
        elif item["type"] in ("missing", "required"):
            message = "is required" + _for_kind(data, loc[:-1])
        else:
            message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{'.'.join(loc) or '(top level)'}: {message}")
    return "; ".join(lines)


def _for_kind(data: Any, path: Sequence[str]) -> str:
    """`` for kind = "woocommerce"`` when the table holding the key names its adapter."""
    for part in path:
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return ""
    kind = data.get("kind") if isinstance(data, Mapping) else None
    return f' for kind = "{kind}"' if isinstance(kind, str) and kind else ""

"""Which part of the config file a command reads, so that it needs only the secrets of the sections it uses.

:func:`connector.core.config.load_config` takes a :class:`Scope`:

- ``ALL`` (the default; ``cardbridge run`` and ``check``): every section, every ``${VAR}`` resolved.
- ``PASS`` (``sync``, ``backfill``, ``reconcile``, ``link``, ``link-url``, …): every section a pass uses, but not the
  ``[server]`` secrets only the daemon reads (:data:`SERVER_SECRETS`): those keys are dropped before anything is
  resolved, so an unset variable there is no error and the value is unset for the command.
- ``LOCAL`` (``status``, ``points show``, ``reviews``, ``conflicts``, ``outbox``): only ``[state]``,
  ``[reviews] hold`` and the names of the ``[communities.*]`` tables, read into a :class:`LocalConfig`. The other sections are neither resolved nor validated, so the
  state store can be inspected while the shop or a community is still being configured.

A variable a command does need and that is unset stays an error naming the key and the variable.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field

from connector.core.settings import ConfigError, StrictModel

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: ``[server]`` keys read by the daemon alone (webhook signatures, the operator's pages).
SERVER_SECRETS = ("woocommerce_webhook_secret", "discourse_webhook_secret", "sellix_webhook_secret", "operator_token")


class Scope(StrEnum):
    """What a command reads of the config file (see the module's docstring)."""

    ALL = "all"
    PASS = "pass"
    LOCAL = "local"


class StateConfig(StrictModel):
    url: str = "sqlite:///cardbridge.db"
    #: Count the communities' rate limits in the state store, shared by every process on it (replicas, a CLI pass
    #: beside the daemon). Unset: on for PostgreSQL (where replicas share a store), off for SQLite (one host, and each
    #: request would wait for the file's write lock).
    shared_rate_limits: bool | None = None

    @property
    def shares_rate_limits(self) -> bool:
        if self.shared_rate_limits is not None:
            return self.shared_rate_limits
        return self.url.startswith("postgresql")


class HoldFlag(StrictModel):
    """``[reviews]`` as the local commands read it: only whether reviews wait for approval."""

    hold: bool = False


class LocalConfig(StrictModel):
    """The config of a ``LOCAL`` command: the state store and ``[reviews] hold``."""

    state: StateConfig = StateConfig()
    reviews: HoldFlag | None = None
    #: The names of the ``[communities.*]`` tables, nothing of their content (``outbox list --community`` checks a
    #: name against them).
    community_names: tuple[str, ...] = ()
    base_dir: Path = Field(default=Path("."), exclude=True)

    @property
    def state_url(self) -> str:
        return state_url(self.state.url, self.base_dir)


def state_url(url: str, base_dir: Path) -> str:
    """``url`` with a relative sqlite path resolved against the config file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str((base_dir / url[len(prefix) :]).resolve())
    return url


def select(data: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """The part of a parsed TOML document that a command of ``scope`` reads (its variables not yet resolved)."""
    if scope is Scope.ALL:
        return data
    if scope is Scope.PASS:
        server = data.get("server")
        if not isinstance(server, dict):
            return data  # absent, or not a table: validation says so
        return {**data, "server": {k: v for k, v in server.items() if k not in SERVER_SECRETS}}
    kept = {"state": data["state"]} if "state" in data else {}
    reviews = data.get("reviews")
    if isinstance(reviews, dict):
        kept["reviews"] = {"hold": reviews["hold"]} if "hold" in reviews else {}
    elif reviews is not None:
        kept["reviews"] = reviews  # not a table: validation says so
    communities = data.get("communities")
    if isinstance(communities, dict):
        kept["community_names"] = [str(name) for name in communities]
    return kept


def interpolate(value: Any, path: str = "") -> Any:
    """Replace ``${VAR}`` in every string; an unset variable is an error naming both the key and the variable."""
    if isinstance(value, dict):
        return {k: interpolate(v, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{path}: environment variable {name} is not set")
            return os.environ[name]

        return _VAR.sub(replace, value)
    return value

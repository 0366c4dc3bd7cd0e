"""Finding adapters by ``kind`` through entry points, so a third-party package can add a shop or a community."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from connector.core.config import ConfigError

SHOPS = "cardbridge.shops"
COMMUNITIES = "cardbridge.communities"


def available(group: str) -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=group)}


def load(group: str, kind: str, key: str) -> Any:
    """The adapter class registered as ``kind``; an unknown kind is a config error naming ``key``."""
    found = available(group)
    if kind not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise ConfigError(f"{key}: unknown kind {kind!r} (known: {known})")
    return found[kind].load()

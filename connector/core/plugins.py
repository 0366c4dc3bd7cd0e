"""Adapters found by ``kind`` through entry points, so a separately installed package can add a shop or a community.

The kernel imports no adapter: a lookup is a runtime :func:`importlib.metadata.entry_points` call. A package
registers its class in its ``pyproject.toml``::

    [project.entry-points."cardbridge.shops"]
    tinyshop = "tinyshop:TinyShop"
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

SHOPS = "cardbridge.shops"
COMMUNITIES = "cardbridge.communities"


class AdapterNotFound(LookupError):
    """No adapter is registered under a kind, or its package cannot be imported; the message says which."""


def available(group: str) -> dict[str, EntryPoint]:
    """The installed adapters of ``group`` by kind."""
    return {ep.name: ep for ep in entry_points(group=group)}


def adapter_class(group: str, kind: str) -> Any:
    """The class registered as ``kind`` in ``group`` (:data:`SHOPS` or :data:`COMMUNITIES`)."""
    found = available(group)
    if kind not in found:
        raise AdapterNotFound(f"unknown kind {kind!r} (known: {', '.join(sorted(found)) or 'none installed'})")
    try:
        return found[kind].load()
    except Exception as error:  # a broken third-party package: say which, never a traceback in the config error
        raise AdapterNotFound(
            f"the adapter for kind {kind!r} ({found[kind].value}) cannot be loaded: {type(error).__name__}: {error}"
        ) from error

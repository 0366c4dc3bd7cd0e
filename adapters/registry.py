"""Opening the configured adapters: the class ``kind`` names (entry points, looked up by the kernel's
:mod:`connector.core.plugins`), built with the settings the config validated with that class's own model."""

from __future__ import annotations

from typing import Any, Protocol

from adapters.base import CommunityAdapter, IdCache, MemoryCache, ShopAdapter
from connector.core.config import Config, ConfigError
from connector.core.plugins import COMMUNITIES, SHOPS, AdapterNotFound, adapter_class, available

__all__ = ["COMMUNITIES", "SHOPS", "RemoteIdStore", "available", "load", "open_community", "open_shop"]


def load(group: str, kind: str, key: str) -> Any:
    """The adapter class registered as ``kind``; an unknown kind is a config error naming ``key``.

    A loaded config has already checked its kinds, so this fails only for a config built by hand.
    """
    try:
        return adapter_class(group, kind)
    except AdapterNotFound as error:
        raise ConfigError(f"{key}: {error}") from None


def open_shop(config: Config) -> ShopAdapter:
    """The shop adapter of ``[shop]``, built with ``config.shop`` (an instance of the adapter's settings model)."""
    shop = load(SHOPS, config.shop.kind, "shop.kind")(config.shop)
    if not isinstance(shop, ShopAdapter):
        raise ConfigError(f"shop.kind: the adapter for kind {config.shop.kind!r} is not a ShopAdapter")
    return shop


class RemoteIdStore(Protocol):
    """Where the core keeps remote object ids, for every community (the state store's ``remote_ids``)."""

    def remote_id(self, community: str, kind: str, name: str) -> str | None: ...

    def set_remote_id(self, community: str, kind: str, name: str, remote_id: str | None) -> None: ...


class CommunityIds:
    """One community's view of a :class:`RemoteIdStore`: the :class:`~adapters.base.IdCache` its adapter gets."""

    def __init__(self, store: RemoteIdStore, community: str) -> None:
        self.store, self.community = store, community

    def get(self, kind: str, name: str) -> str | None:
        return self.store.remote_id(self.community, kind, name)

    def set(self, kind: str, name: str, remote_id: str | None) -> None:
        self.store.set_remote_id(self.community, kind, name, remote_id)


def open_community(name: str, config: Config, ids: RemoteIdStore | None = None) -> CommunityAdapter:
    """The adapter of ``[communities.<name>]``, with the rules and, when given, the stored remote ids."""
    settings = config.communities[name]
    cache: IdCache = CommunityIds(ids, name) if ids is not None else MemoryCache()
    community = load(COMMUNITIES, settings.kind, f"communities.{name}.kind")(
        name, settings, rules=config.rules, cache=cache
    )
    if not isinstance(community, CommunityAdapter):
        raise ConfigError(f"communities.{name}.kind: the adapter for kind {settings.kind!r} is not a CommunityAdapter")
    return community

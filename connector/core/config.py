"""Configuration: one TOML file, validated by pydantic, with ``${VAR}`` read from the environment.

Errors are turned into :class:`ConfigError`, whose message names the offending key (``communities.forum.api_key``),
so the CLI can print one clear line and exit 2.

The core knows only ``kind`` of ``[shop]`` and ``[communities.<name>]`` (and the few keys the bases in
:mod:`connector.core.settings` declare): the adapter that ``kind`` names is looked up through its entry point and
validates the rest of the table with its own settings model, so ``config.shop`` is an instance of that model. An
installed third-party adapter takes its own keys the same way.

One module for the whole file, past the house's ~400 lines: the sections are small models that are read and
cross-checked together (``Config._cross_checks``), and the key names every error refers to are easier to keep
consistent in one place.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, overload

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator

from connector.core import plugins
from connector.core.config_scope import LocalConfig, Scope, StateConfig, interpolate, select, state_url
from connector.core.insights_config import InsightsConfig
from connector.core.loop_config import EarnConfig, RedeemConfig, check_communities
from connector.core.products_config import ProductsConfig
from connector.core.settings import (
    CommunitySettings,
    ConfigError,
    HttpUrl,
    KeyedError,
    RequiredStr,
    ShopSettings,
    StrictModel,
    TimeZone,
    format_errors,
    split_communities,
    validate_table,
)

__all__ = [
    "CommunitySettings",
    "Config",
    "ConfigError",
    "HttpUrl",
    "KeyedError",
    "LocalConfig",
    "RequiredStr",
    "Scope",
    "ShopSettings",
    "StrictModel",
    "TimeZone",
    "load_config",
    "parse_config",
    "validate_table",
]

ENV_VAR = "CARDBRIDGE_CONFIG"
S = TypeVar("S", ShopSettings, CommunitySettings)


def _settings(group: str, base: type[S]) -> Callable[[Any], Any]:
    """A before-validator that validates a table with the settings model of the adapter its ``kind`` names."""

    def validate(value: Any) -> Any:
        if not isinstance(value, dict):
            return value  # not a table: the base model says so
        kind = value.get("kind")
        if not isinstance(kind, str) or not kind:
            known = ", ".join(sorted(plugins.available(group))) or "none installed"
            raise KeyedError("kind", f"is required (the adapter: {known})")
        try:
            adapter = plugins.adapter_class(group, kind)
        except plugins.AdapterNotFound as error:
            raise KeyedError("kind", str(error)) from None
        model = getattr(adapter, "settings", base)  # an adapter that declares no settings takes the base keys only
        if not (isinstance(model, type) and issubclass(model, base)):
            raise KeyedError("kind", f"the adapter for kind {kind!r} declares settings that are not a {base.__name__}")
        # A ValidationError raised here is merged into the config's, each error under this table's key.
        return model.model_validate(value)

    return validate


#: ``[shop]``, validated with the settings model of the shop adapter ``kind`` names.
ShopTable = Annotated[ShopSettings, BeforeValidator(_settings(plugins.SHOPS, ShopSettings))]
#: ``[communities.<name>]``, validated with the settings model of the community adapter ``kind`` names.
CommunityTable = Annotated[CommunitySettings, BeforeValidator(_settings(plugins.COMMUNITIES, CommunitySettings))]


class Grant(StrictModel):
    """What a rule gives on one community. Discourse: a badge and/or a group (whose title becomes the member's tag);
    Discord: a role (its id)."""

    badge: str | None = None
    group: str | None = None
    group_title: str | None = None
    role: str | None = None

    @model_validator(mode="after")
    def _something(self) -> Grant:
        if not self.badge and not self.group and not self.role:
            raise ValueError("a grant needs a badge, a group or a role")
        if self.role is not None and not self.role.isdigit():
            raise ValueError("role is the role's id (a number: Server Settings > Roles > Copy Role ID)")
        if self.group is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,60}", self.group):
            raise ValueError("group names may use letters, digits, '_', '.', '-' (Discourse's rule)")
        return self


class Rule(StrictModel):
    name: str
    #: ``"*"`` (any product) or a list of shop product ids.
    products: Literal["*"] | list[str] = "*"
    grant: dict[str, Grant]

    @field_validator("products", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        # Product ids are compared as strings: [12, 40] and ["12", "40"] mean the same products.
        return [str(v) for v in value] if isinstance(value, list) else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[\w.-]{1,60}", value):
            raise ValueError("use letters, digits, '_', '.', '-' (it is part of idempotency keys)")
        return value


class ReviewTarget(StrictModel):
    """Where a community shows reviews. Discourse: a category (created if missing). Discord: a forum channel, with one
    thread per product (each review a message in it) or one thread per review."""

    category: str = "Reviews"
    category_color: str = "2E7D32"
    category_text_color: str = "FFFFFF"
    forum_channel: str | None = None
    thread_per: Literal["product", "review"] = "product"
    #: Names of the forum's tags (its ``available_tags``) applied to every thread CardBridge starts.
    tags: list[str] = Field(default_factory=list)
    #: ``thread_per = "review"``: a tag applied to threads of verified purchases only.
    verified_tag: str | None = None

    @field_validator("forum_channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not value.isdigit():
            raise ValueError("forum_channel is the channel's id (a number: right-click the forum > Copy Channel ID)")
        return value

    @model_validator(mode="after")
    def _tags(self) -> ReviewTarget:
        if len(self.tags) + (1 if self.verified_tag else 0) > 5:
            raise ValueError("Discord applies at most 5 tags to a thread")
        return self


class ReviewsConfig(StrictModel):
    """``[reviews]``: moderation keys, plus one entry per community that shows reviews (``forum = {…}``)."""

    #: Reviews rated below this are not posted.
    min_rating: Annotated[int, Field(ge=0, le=5)] = 0
    #: Reviews containing any of these words (case-insensitive) are not posted.
    blocklist: list[str] = Field(default_factory=list)
    #: Queue every review until an admin runs ``cardbridge reviews approve ID``.
    hold: bool = False
    #: Prefix of topic external ids: ``<prefix>-product-<id>`` (``[\w-]``, the whole id at most 50 characters).
    topic_prefix: str = "shop"
    communities: dict[str, ReviewTarget] = Field(default_factory=dict)

    _split = model_validator(mode="before")(lambda data: split_communities(data, ReviewsConfig))

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[\w-]{1,20}", value):
            raise ValueError("use at most 20 letters, digits, '_' or '-' (Discourse external ids are [\\w-])")
        return value


class PointsTarget(StrictModel):
    """How a community holds points. Discourse: the gamification plugin's score events, or a user field. Discord: tier
    roles (``tiers = { "100" = "<role id>" }``; a member holds the role of the highest tier reached)."""

    mode: Literal["gamification", "user_field", "tiers"] = "gamification"
    user_field_id: int | None = None
    tiers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _tier_mode(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("tiers") and "mode" not in data:
            data = {**data, "mode": "tiers"}
        return data

    @model_validator(mode="after")
    def _field(self) -> PointsTarget:
        if self.mode == "user_field" and self.user_field_id is None:
            raise ValueError('mode = "user_field" needs user_field_id (Admin > Customize > User fields)')
        if self.mode == "tiers" and not self.tiers:
            raise ValueError('mode = "tiers" needs tiers = { "100" = "<role id>", ... }')
        for threshold, role in self.tiers.items():
            if not threshold.isdigit():
                raise ValueError(f"tier {threshold!r}: the key is a points threshold (a whole number)")
            if not role.isdigit():
                raise ValueError(f"tier {threshold}: the value is a role id (a number)")
        return self

    def tier_roles(self) -> list[tuple[int, str]]:
        """(threshold, role id), lowest threshold first."""
        return sorted((int(threshold), role) for threshold, role in self.tiers.items())


class PointsConfig(StrictModel):
    """``[points]``: how many points a paid order and a published review earn; one entry per community."""

    per_order: Annotated[int, Field(ge=0)] = 0
    #: Points per whole currency unit of the order total (fractions are rounded down).
    per_currency_unit: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    per_review: Annotated[int, Field(ge=0)] = 0
    communities: dict[str, PointsTarget] = Field(default_factory=dict)

    _split = model_validator(mode="before")(lambda data: split_communities(data, PointsConfig))


class DeliveryConfig(StrictModel):
    #: Attempts per outbox action before it is parked as dead (listed by ``status``, never dropped).
    max_attempts: Annotated[int, Field(ge=1)] = 5
    #: Seconds before a failed action is tried again (doubles per attempt).
    retry_base_seconds: Annotated[float, Field(ge=0)] = 30.0


class ScheduleConfig(StrictModel):
    """``cardbridge run``: how often each job runs (seconds)."""

    sync_every: Annotated[int, Field(ge=1)] = 300
    reconcile_every: Annotated[int, Field(ge=1)] = 3600
    retry_every: Annotated[int, Field(ge=1)] = 60
    #: A job that could not start on time still runs if it is at most this late (then coalesced into one run).
    misfire_grace_seconds: Annotated[int, Field(ge=1)] = 60


class ServerConfig(StrictModel):
    """The daemon's HTTP server: webhooks, health, metrics, the status page."""

    listen: str = "127.0.0.1:8080"
    #: The secret set on the WooCommerce webhook (WooCommerce > Settings > Advanced > Webhooks).
    woocommerce_webhook_secret: str = ""
    #: The secret set on the Discourse webhook (Admin > API > Webhooks).
    discourse_webhook_secret: str = ""
    #: The Sellix webhook secret (Settings > Security; X-Sellix-Signature).
    sellix_webhook_secret: str = ""
    #: Webhook bodies larger than this are refused (413) as soon as the bytes read pass it, chunked or not.
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    #: A request's head must arrive within this many seconds of the connection (or of the previous answer), and its
    #: body within this many seconds of its head; a slower sender is answered 408 or disconnected.
    read_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 15.0
    #: Open connections served at once; past it, new requests are answered 503 at once.
    max_connections: Annotated[int, Field(ge=4)] = 100
    #: A failing shop or community makes the daemon ``degraded`` (``/healthz`` 200); failing for longer than this, or
    #: no pass having read the shop for longer than this, ``unhealthy`` (503).
    unhealthy_after_seconds: Annotated[int, Field(ge=1)] = 900
    #: /healthz answers 503 once a job's passes (sync, reconcile, webhook, …) failed this many times in a row.
    unhealthy_after_failed_passes: Annotated[int, Field(ge=1)] = 3
    #: The operator's pages (``/``, ``/metrics``) need ``Authorization: Bearer <token>`` (or HTTP Basic with the
    #: token as password, for a browser) when set; at least 24 characters, from the environment.
    operator_token: str = ""
    #: A second listener (host:port) for the operator's pages; when set, ``/`` and ``/metrics`` are served only there.
    operator_listen: str = ""
    #: Tries of a stored webhook event before it is parked as dead (listed on the status page).
    webhook_max_attempts: Annotated[int, Field(ge=1)] = 8
    #: Seconds before a failed webhook event is tried again (doubles per attempt, at most an hour).
    webhook_retry_seconds: Annotated[float, Field(ge=0)] = 30.0
    #: A delivery whose topic and body equal one received this many seconds before is a duplicate (fresh delivery
    #: id or not): the order is not re-read again.
    webhook_dedup_seconds: Annotated[int, Field(ge=0)] = 86_400
    #: Handled (and dead) webhook events are deleted this many days after they were handled.
    webhook_retention_days: Annotated[int, Field(ge=1)] = 14
    #: Replicas (several ``cardbridge run`` on one PostgreSQL): the leader, which alone runs the scheduled jobs, renews
    #: its lease every quarter of this; when it dies, another replica takes over within about 1.25 times this.
    lease_seconds: Annotated[float, Field(ge=1, le=120)] = 20.0

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return cls._host_port(value)

    @field_validator("operator_listen")
    @classmethod
    def _operator_listen(cls, value: str) -> str:
        return cls._host_port(value) if value else value

    @staticmethod
    def _host_port(value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("use host:port, e.g. 127.0.0.1:8080")
        return value

    @field_validator("operator_token")
    @classmethod
    def _operator_token(cls, value: str) -> str:
        if value and (len(value) < 24 or not value.isascii() or not value.isprintable() or " " in value):
            raise ValueError("use at least 24 printable ASCII characters without spaces (openssl rand -hex 24)")
        return value

    @model_validator(mode="after")
    def _listeners(self) -> ServerConfig:
        if self.operator_listen and self.operator_listen.rpartition(":")[2] == self.listen.rpartition(":")[2]:
            raise ValueError("operator_listen must use another port than listen")
        return self

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class LinkConfig(StrictModel):
    """``[link]``: the member link page (``/link`` on the daemon's server) and signed links (``cardbridge link-url``).

    A buyer proves an order (number + email) or opens a signed link, then signs in with Discord (OAuth2 authorization
    code); their Discord account is linked to the shop customer and gets the roles the rules give.
    """

    #: The Discord community members link to (a ``kind = "discord"`` entry with application_id and client_secret).
    community: str
    #: The connector's public address as buyers reach it (``https://shop-bridge.example.com``); the OAuth2 redirect is
    #: ``<public_url>/link/callback``, which must be added under OAuth2 > Redirects in the developer portal.
    public_url: HttpUrl
    #: Signs links and the OAuth2 ``state``; at least 32 characters, from the environment.
    secret: str
    #: Hours a link printed by ``cardbridge link-url`` stays valid.
    link_ttl_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 72
    #: Ask for ``guilds.join`` and add the buyer to the server if they are not in it yet.
    join_guild: bool = True
    #: Ask for ``role_connections.write`` and keep Linked Roles metadata (verified buyer, orders, points) up to date.
    linked_roles: bool = False
    #: Fernet key (``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``) that
    #: encrypts the members' OAuth2 tokens in the state store; required with linked_roles.
    token_key: str = ""
    #: Shown on the member's profile connection.
    platform_name: str = "Shop"
    #: Failed order-number attempts allowed per client address per hour (and per order number), against guessing.
    attempts_per_hour: Annotated[int, Field(ge=1)] = 10
    #: Addresses of the reverse proxies in front of the daemon (``["127.0.0.1/32", "10.0.0.0/8"]``). Only a peer in
    #: these networks is believed about the client's address (the right-most ``X-Forwarded-For`` entry that is not
    #: one of them); by default none: the peer's own address is the client.
    trusted_proxies: tuple[str, ...] = ()
    #: Also ask for Discord's ``email`` scope: a member whose Discord email is verified and equal to the shop email
    #: may move a link made with an order number to their account (it is compared, never stored).
    verified_email: bool = True

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        try:
            return tuple(str(ipaddress.ip_network(v.strip(), strict=False)) for v in value)
        except ValueError as error:
            raise ValueError(f"use addresses or networks, e.g. 127.0.0.1/32 ({error})") from None

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(value) < 32:
            raise ValueError("use at least 32 random characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("platform_name")
    @classmethod
    def _platform(cls, value: str) -> str:
        if not 1 <= len(value) <= 50:
            raise ValueError("1 to 50 characters (Discord's limit)")
        return value

    @model_validator(mode="after")
    def _key(self) -> LinkConfig:
        if self.linked_roles:
            if not self.token_key:
                raise KeyedError("token_key", "is required with linked_roles = true (a Fernet key)")
            try:
                from cryptography.fernet import Fernet

                Fernet(self.token_key.encode())
            except ValueError:
                raise KeyedError("token_key", "is not a Fernet key (32 url-safe base64-encoded bytes)") from None
        return self


class PolicyConfig(StrictModel):
    #: A grant a moderator removed by hand is recorded as an override and not granted again (false: grant again).
    respect_manual_removal: bool = True


class Config(StrictModel):
    state: StateConfig = StateConfig()
    shop: ShopTable
    communities: dict[str, CommunityTable]
    rules: list[Rule] = Field(default_factory=list)
    delivery: DeliveryConfig = DeliveryConfig()
    reviews: ReviewsConfig | None = None
    points: PointsConfig | None = None
    schedule: ScheduleConfig = ScheduleConfig()
    server: ServerConfig = ServerConfig()
    policy: PolicyConfig = PolicyConfig()
    link: LinkConfig | None = None
    earn: EarnConfig | None = None
    redeem: RedeemConfig | None = None
    insights: InsightsConfig | None = None
    products: ProductsConfig | None = None
    #: Folder of the config file; relative sqlite paths resolve against it.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("communities")
    @classmethod
    def _names(cls, value: dict[str, CommunitySettings]) -> dict[str, CommunitySettings]:
        if not value:
            raise ValueError("configure at least one community, e.g. [communities.forum]")
        for name in value:
            if not re.fullmatch(r"[\w-]{1,40}", name):
                raise ValueError(f"community name {name!r}: use letters, digits, '_' or '-'")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        for index, rule in enumerate(self.rules):
            for community in rule.grant:
                if community not in self.communities:
                    raise KeyedError(
                        f"rules.{index}.grant.{community}",
                        f"no community named {community!r} (known: {', '.join(sorted(self.communities))})",
                    )
        for section in ("reviews", "points"):
            block = getattr(self, section)
            for community in block.communities if block else {}:
                if community not in self.communities:
                    raise KeyedError(
                        f"{section}.{community}",
                        f"no community named {community!r} (known: {', '.join(sorted(self.communities))})",
                    )
        if self.reviews:
            for community, review_target in self.reviews.communities.items():
                if self.communities[community].kind == "discord" and review_target.forum_channel is None:
                    raise KeyedError(f"reviews.{community}.forum_channel", "is required for a Discord community")
                if self.communities[community].kind != "discord" and review_target.forum_channel is not None:
                    raise KeyedError(
                        f"reviews.{community}.forum_channel", "is for Discord communities (Discourse uses category)"
                    )
        if self.points:
            for community, points_target in self.points.communities.items():
                is_discord = self.communities[community].kind == "discord"
                if is_discord != (points_target.mode == "tiers"):
                    raise KeyedError(
                        f"points.{community}",
                        "Discord holds points as tier roles (tiers = {...}); tiers are for Discord only"
                        if is_discord
                        else "tiers are for Discord communities only",
                    )
        if self.link:
            linked = self.communities.get(self.link.community)
            if linked is None or linked.kind != "discord":
                raise KeyedError("link.community", f"{self.link.community!r} is not a Discord community here")
            missing = linked.missing_for("link")
            if missing:
                raise KeyedError(f"communities.{self.link.community}.{missing[0]}", "is required by [link]")
        if self.earn:
            check_communities("earn", list(self.earn.communities), self.communities)
            for community, earn_target in self.earn.communities.items():
                is_discord = self.communities[community].kind == "discord"
                if (is_discord and earn_target.categories) or (not is_discord and earn_target.channels):
                    raise KeyedError(
                        f"earn.{community}",
                        "Discord earns in channels = [...] (forum channel ids)"
                        if is_discord
                        else "a forum earns in categories = [...] (names); channels are for Discord",
                    )
                if not earn_target.places:
                    raise KeyedError(f"earn.{community}", "name where points are earned (categories or channels)")
        if self.redeem:
            check_communities("redeem.communities", self.redeem.communities, self.communities)
            for name in self.redeem.communities:
                missing = self.communities[name].missing_for("redeem")
                if missing:
                    raise KeyedError(f"communities.{name}.{missing[0]}", "is required by [redeem]")
        if self.insights:
            check_communities("insights", list(self.insights.communities), self.communities)
            for community, where in self.insights.communities.items():
                is_discord = self.communities[community].kind == "discord"
                if is_discord and where.category is not None:
                    raise KeyedError(f"insights.{community}.category", "is for forums; Discord names a forum channel")
                if not is_discord and where.channel is not None:
                    raise KeyedError(f"insights.{community}.channel", "is for Discord; a forum names a category")
                if is_discord and (where.channel is None or where.tag is None):
                    raise KeyedError(f"insights.{community}", 'Discord demand threads need channel = "id" and tag')
        if self.products:
            check_communities("products.cards", self.products.cards, self.communities)
            check_communities("products.announce", list(self.products.announce), self.communities)
            for name in self.products.cards:
                is_discord = self.communities[name].kind == "discord"
                review = self.reviews.communities.get(name) if self.reviews else None
                if is_discord and (review is None or review.forum_channel is None):
                    raise KeyedError(
                        "products.cards", f"{name!r}: a Discord card lives in [reviews] {name}.forum_channel"
                    )
            for name, announce in self.products.announce.items():
                is_discord = self.communities[name].kind == "discord"
                if is_discord != (announce.channel is not None):
                    raise KeyedError(
                        f"products.announce.{name}",
                        'Discord announces in a channel = "<id>"' if is_discord else "a forum announces in a category",
                    )
        names = [rule.name for rule in self.rules]
        for name in names:
            if names.count(name) > 1:
                raise KeyedError("rules", f"rule name {name!r} is used twice")
        return self

    @property
    def state_url(self) -> str:
        """The state URL with a relative sqlite path resolved against the config file's folder."""
        return state_url(self.state.url, self.base_dir)


def parse_config(data: dict[str, Any], base_dir: Path = Path(".")) -> Config:
    """Validate an already-parsed TOML document (every section)."""
    return _parse(Config, data, base_dir)


M = TypeVar("M", Config, LocalConfig)


def _parse(model: type[M], data: dict[str, Any], base_dir: Path) -> M:
    data = interpolate(data)
    try:
        return model.model_validate({**data, "base_dir": base_dir})
    except ValidationError as error:
        raise ConfigError(format_errors(error, data)) from None


@overload
def load_config(
    path: str | os.PathLike[str] | None = None, scope: Literal[Scope.ALL, Scope.PASS] = Scope.ALL
) -> Config: ...
@overload
def load_config(path: str | os.PathLike[str] | None, scope: Literal[Scope.LOCAL]) -> LocalConfig: ...
def load_config(path: str | os.PathLike[str] | None = None, scope: Scope = Scope.ALL) -> Config | LocalConfig:
    """Load the config from ``path``, else from ``$CARDBRIDGE_CONFIG``: the sections ``scope`` reads
    (:mod:`connector.core.config_scope`; by default all of them, every ``${VAR}`` resolved)."""
    if path is None:
        path = os.environ.get(ENV_VAR)
    if not path:
        raise ConfigError(f"no config file: pass --config FILE or set {ENV_VAR}")
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {file}: {error.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{file} is not valid TOML: {error}") from None
    data = select(data, scope)
    base_dir = file.resolve().parent
    return _parse(LocalConfig, data, base_dir) if scope is Scope.LOCAL else _parse(Config, data, base_dir)

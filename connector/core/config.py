"""Configuration: one TOML file, validated by pydantic, with ``${VAR}`` read from the environment.

Errors are turned into :class:`ConfigError`, whose message names the offending key (``communities.forum.api_key``),
so the CLI can print one clear line and exit 2.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_VAR = "CARDBRIDGE_CONFIG"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


#: A site root such as ``https://shop.example.com`` (a trailing slash is dropped).
HttpUrl = Annotated[str, AfterValidator(_http_url)]


class StateConfig(_Strict):
    url: str = "sqlite:///cardbridge.db"


class ShopConfig(_Strict):
    kind: str
    #: REST shops (woocommerce): the site root.
    base_url: HttpUrl | None = None
    consumer_key: str = ""
    consumer_secret: str = ""
    #: API-key shops (sellix): the key, and the shop name for ``X-Sellix-Merchant`` when the account has several.
    api_key: str = ""
    merchant: str = ""
    #: Database shops (dujiaoka): a read-only SQLAlchemy URL, e.g. ``mysql+pymysql://reader:pw@127.0.0.1/dujiaoka``.
    database_url: str | None = None
    #: Database shops: table name prefix (dujiaoka: none by default).
    table_prefix: str = ""
    #: Database shops: the zone their ``Y-m-d H:i:s`` timestamps are written in (stored here as UTC).
    timezone: str = "Asia/Shanghai"
    #: ``kind = "rest"``: the declarative description of the shop's API (validated by the adapter).
    rest: dict[str, Any] | None = None
    #: Orders per page (WooCommerce allows at most 100).
    page_size: Annotated[int, Field(ge=1, le=100)] = 100
    #: Re-read orders modified this many seconds before the cursor (late commits, clock skew between shop nodes).
    lookback_seconds: Annotated[int, Field(ge=0)] = 300
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0

    @model_validator(mode="after")
    def _source(self) -> ShopConfig:
        if self.kind == "woocommerce" and self.base_url is None:
            raise _KeyedError("shop.base_url", 'is required for kind = "woocommerce"')
        if self.kind == "rest" and (self.base_url is None or not self.rest):
            raise _KeyedError("shop.rest", 'kind = "rest" needs base_url and a [shop.rest] table')
        if self.kind == "sellix" and not self.api_key:
            raise _KeyedError("shop.api_key", 'is required for kind = "sellix"')
        if self.kind in ("dujiaoka", "acgfaka") and not self.database_url:
            raise _KeyedError("shop.database_url", f'is required for kind = "{self.kind}"')
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise _KeyedError("shop.timezone", f"unknown time zone {self.timezone!r}") from None
        if not re.fullmatch(r"\w{0,20}", self.table_prefix):
            raise _KeyedError("shop.table_prefix", "use letters, digits and '_' only")
        return self


class CommunityConfig(_Strict):
    kind: str
    #: Discourse: the forum's root URL.
    base_url: HttpUrl | None = None
    #: Discord: the bot's token, the guild (server) id, and the API root (default https://discord.com/api/v10).
    bot_token: str = ""
    guild_id: str = ""
    api_base: HttpUrl | None = None
    #: Discord, for the member link page and Linked Roles: the application's id (= OAuth2 client id), its OAuth2
    #: client secret, and the site that serves the OAuth2 authorize page (default https://discord.com).
    application_id: str = ""
    client_secret: str = ""
    oauth_base: HttpUrl | None = None
    api_key: str = ""
    api_username: str = "system"
    #: Request budget per minute for this forum (Discourse's admin-key default is 60 per site).
    requests_per_minute: Annotated[int, Field(ge=1)] = 60
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    #: Use the bulk user list (one page of 100 users a call) instead of per-email look-ups when more than this many
    #: customers are waiting for a match.
    bulk_lookup_threshold: Annotated[int, Field(ge=0)] = 20
    #: Shown on the badge and group the connector creates on first use.
    badge_description: str = "Bought from the shop: a verified purchase."
    group_flair_icon: str = "check-circle"
    group_flair_bg_color: str = "2E7D32"
    group_flair_color: str = "FFFFFF"
    #: Make the group the members' primary group, so its title and flair show next to their posts.
    group_primary: bool = True
    #: Seconds before a customer with no forum account is looked up again.
    unmatched_retry_seconds: Annotated[int, Field(ge=0)] = 900


def _check_community(name: str, community: CommunityConfig) -> None:
    if community.kind == "discourse" and community.base_url is None:
        raise _KeyedError(f"communities.{name}.base_url", 'is required for kind = "discourse"')
    if community.kind == "discord":
        for key in ("bot_token", "guild_id"):
            if not getattr(community, key):
                raise _KeyedError(f"communities.{name}.{key}", 'is required for kind = "discord"')


class Grant(_Strict):
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


class Rule(_Strict):
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


def _split_communities(data: Any, model: type[BaseModel]) -> Any:
    """``[reviews]`` and ``[points]`` mix their own keys with one key per community: gather the latter."""
    if isinstance(data, dict):
        own = set(model.model_fields)
        rest = {k: v for k, v in data.items() if k not in own}
        data = {k: v for k, v in data.items() if k in own}
        data["communities"] = {**data.get("communities", {}), **rest}
    return data


class ReviewTarget(_Strict):
    """Where a community shows reviews. Discourse: a category (created if missing). Discord: a forum channel, with one
    thread per product (each review a message in it) or one thread per review."""

    category: str = "Reviews"
    category_color: str = "2E7D32"
    category_text_color: str = "FFFFFF"
    forum_channel: str | None = None
    thread_per: Literal["product", "review"] = "product"
    #: Names of the forum's tags (its ``available_tags``) applied to every thread CardBridge starts.
    tags: list[str] = []
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


class ReviewsConfig(_Strict):
    """``[reviews]``: moderation keys, plus one entry per community that shows reviews (``forum = {…}``)."""

    #: Reviews rated below this are not posted.
    min_rating: Annotated[int, Field(ge=0, le=5)] = 0
    #: Reviews containing any of these words (case-insensitive) are not posted.
    blocklist: list[str] = []
    #: Queue every review until an admin runs ``cardbridge reviews approve ID``.
    hold: bool = False
    #: Prefix of topic external ids: ``<prefix>-product-<id>`` (``[\w-]``, the whole id at most 50 characters).
    topic_prefix: str = "shop"
    communities: dict[str, ReviewTarget] = {}

    _split = model_validator(mode="before")(lambda data: _split_communities(data, ReviewsConfig))

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[\w-]{1,20}", value):
            raise ValueError("use at most 20 letters, digits, '_' or '-' (Discourse external ids are [\\w-])")
        return value


class PointsTarget(_Strict):
    """How a community holds points. Discourse: the gamification plugin's score events, or a user field. Discord: tier
    roles (``tiers = { "100" = "<role id>" }``; a member holds the role of the highest tier reached)."""

    mode: Literal["gamification", "user_field", "tiers"] = "gamification"
    user_field_id: int | None = None
    tiers: dict[str, str] = {}

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


class PointsConfig(_Strict):
    """``[points]``: how many points a paid order and a published review earn; one entry per community."""

    per_order: Annotated[int, Field(ge=0)] = 0
    #: Points per whole currency unit of the order total (fractions are rounded down).
    per_currency_unit: Annotated[float, Field(ge=0)] = 0.0
    per_review: Annotated[int, Field(ge=0)] = 0
    communities: dict[str, PointsTarget] = {}

    _split = model_validator(mode="before")(lambda data: _split_communities(data, PointsConfig))


class DeliveryConfig(_Strict):
    #: Attempts per outbox action before it is parked as dead (listed by ``status``, never dropped).
    max_attempts: Annotated[int, Field(ge=1)] = 5
    #: Seconds before a failed action is tried again (doubles per attempt).
    retry_base_seconds: Annotated[float, Field(ge=0)] = 30.0


class ScheduleConfig(_Strict):
    """``cardbridge run``: how often each job runs (seconds)."""

    sync_every: Annotated[int, Field(ge=1)] = 300
    reconcile_every: Annotated[int, Field(ge=1)] = 3600
    retry_every: Annotated[int, Field(ge=1)] = 60
    #: A job that could not start on time still runs if it is at most this late (then coalesced into one run).
    misfire_grace_seconds: Annotated[int, Field(ge=1)] = 60


class ServerConfig(_Strict):
    """The daemon's HTTP server: webhooks, health, metrics, the status page."""

    listen: str = "127.0.0.1:8080"
    #: The secret set on the WooCommerce webhook (WooCommerce > Settings > Advanced > Webhooks).
    woocommerce_webhook_secret: str = ""
    #: The secret set on the Discourse webhook (Admin > API > Webhooks).
    discourse_webhook_secret: str = ""
    #: The Sellix webhook secret (Settings > Security; X-Sellix-Signature).
    sellix_webhook_secret: str = ""
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    #: /healthz answers 503 when a community has been failing for longer than this.
    unhealthy_after_seconds: Annotated[int, Field(ge=1)] = 900

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("use host:port, e.g. 127.0.0.1:8080")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class LinkConfig(_Strict):
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
                raise _KeyedError("link.token_key", "is required with linked_roles = true (a Fernet key)")
            try:
                from cryptography.fernet import Fernet

                Fernet(self.token_key.encode())
            except ValueError:
                raise _KeyedError("link.token_key", "is not a Fernet key (32 url-safe base64-encoded bytes)") from None
        return self


class PolicyConfig(_Strict):
    #: A grant a moderator removed by hand is recorded as an override and not granted again (false: grant again).
    respect_manual_removal: bool = True


class Config(_Strict):
    state: StateConfig = StateConfig()
    shop: ShopConfig
    communities: dict[str, CommunityConfig]
    rules: list[Rule] = []
    delivery: DeliveryConfig = DeliveryConfig()
    reviews: ReviewsConfig | None = None
    points: PointsConfig | None = None
    schedule: ScheduleConfig = ScheduleConfig()
    server: ServerConfig = ServerConfig()
    policy: PolicyConfig = PolicyConfig()
    link: LinkConfig | None = None
    #: Folder of the config file; relative sqlite paths resolve against it.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("communities")
    @classmethod
    def _names(cls, value: dict[str, CommunityConfig]) -> dict[str, CommunityConfig]:
        if not value:
            raise ValueError("configure at least one community, e.g. [communities.forum]")
        for name in value:
            if not re.fullmatch(r"[\w-]{1,40}", name):
                raise ValueError(f"community name {name!r}: use letters, digits, '_' or '-'")
        return value

    @model_validator(mode="after")
    def _rules_target_known_communities(self) -> Config:
        for name, community in self.communities.items():
            _check_community(name, community)
        for index, rule in enumerate(self.rules):
            for community in rule.grant:
                if community not in self.communities:
                    raise _KeyedError(
                        f"rules.{index}.grant.{community}",
                        f"no community named {community!r} (known: {', '.join(sorted(self.communities))})",
                    )
        for section in ("reviews", "points"):
            block = getattr(self, section)
            for community in block.communities if block else {}:
                if community not in self.communities:
                    raise _KeyedError(
                        f"{section}.{community}",
                        f"no community named {community!r} (known: {', '.join(sorted(self.communities))})",
                    )
        if self.reviews:
            for community, target in self.reviews.communities.items():
                if self.communities[community].kind == "discord" and target.forum_channel is None:
                    raise _KeyedError(f"reviews.{community}.forum_channel", "is required for a Discord community")
                if self.communities[community].kind != "discord" and target.forum_channel is not None:
                    raise _KeyedError(
                        f"reviews.{community}.forum_channel", "is for Discord communities (Discourse uses category)"
                    )
        if self.points:
            for community, target in self.points.communities.items():
                is_discord = self.communities[community].kind == "discord"
                if is_discord != (target.mode == "tiers"):
                    raise _KeyedError(
                        f"points.{community}",
                        "Discord holds points as tier roles (tiers = {...}); tiers are for Discord only"
                        if is_discord
                        else "tiers are for Discord communities only",
                    )
        if self.link:
            linked = self.communities.get(self.link.community)
            if linked is None or linked.kind != "discord":
                raise _KeyedError("link.community", f"{self.link.community!r} is not a Discord community here")
            for key in ("application_id", "client_secret"):
                if not getattr(linked, key):
                    raise _KeyedError(f"communities.{self.link.community}.{key}", "is required by [link]")
        names = [rule.name for rule in self.rules]
        for name in names:
            if names.count(name) > 1:
                raise _KeyedError("rules", f"rule name {name!r} is used twice")
        return self

    @property
    def state_url(self) -> str:
        """The state URL with a relative sqlite path resolved against the config file's folder."""
        url = self.state.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
            return prefix + str((self.base_dir / url[len(prefix) :]).resolve())
        return url


class _KeyedError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _interpolate(value: Any, path: str) -> Any:
    """Replace ``${VAR}`` in every string; an unset variable is an error naming both the key and the variable."""
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{path}: environment variable {name} is not set")
            return os.environ[name]

        return _VAR.sub(replace, value)
    return value


def _format_validation_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        ctx_error = (item.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _KeyedError):
            key = ctx_error.key
            message = str(ctx_error)
        elif item["type"] == "extra_forbidden":
            message = "unknown key (see config.example.toml for the keys there are)"
        elif item["type"] == "missing":
            message = "is required"
        else:
            message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{key}: {message}")
    return "; ".join(lines)


def parse_config(data: dict[str, Any], base_dir: Path = Path(".")) -> Config:
    """Validate an already-parsed TOML document."""
    data = _interpolate(data, "")
    try:
        return Config.model_validate({**data, "base_dir": base_dir})
    except ValidationError as error:
        raise ConfigError(_format_validation_error(error)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the config from ``path``, else from ``$CARDBRIDGE_CONFIG``."""
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
    return parse_config(data, base_dir=file.resolve().parent)

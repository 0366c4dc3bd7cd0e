"""Config: the documented shape loads; bad input names the key."""

import tomllib
from pathlib import Path

import pytest

from connector.core.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[state]
url = "sqlite:///cardbridge.db"
[shop]
kind = "woocommerce"
base_url = "https://shop.example.com"
consumer_key = "${WC_CONSUMER_KEY}"
consumer_secret = "${WC_CONSUMER_SECRET}"
[communities.forum]
kind = "discourse"
base_url = "https://forum.example.com"
api_key = "${DISCOURSE_API_KEY}"
api_username = "system"
[[rules]]
name = "verified-buyer"
products = "*"
grant.forum = { badge = "Verified Buyer", group = "verified-buyers" }
"""


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("WC_CONSUMER_KEY", "ck_test")
    monkeypatch.setenv("WC_CONSUMER_SECRET", "cs_test")
    monkeypatch.setenv("DISCOURSE_API_KEY", "dk")
    monkeypatch.setenv("WC_WEBHOOK_SECRET", "ws")
    monkeypatch.setenv("DISCOURSE_WEBHOOK_SECRET", "ds")


def write(tmp_path, text):
    path = tmp_path / "cardbridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_issue_shape_loads_and_resolves_relative_sqlite(tmp_path, env):
    config = load_config(write(tmp_path, MINIMAL))
    # each table is an instance of its adapter's own settings model
    assert type(config.shop).__name__ == "WooCommerceSettings"
    assert type(config.communities["forum"]).__name__ == "DiscourseSettings"
    assert config.shop.consumer_key == "ck_test"
    assert config.communities["forum"].api_key == "dk"
    assert config.rules[0].grant["forum"].badge == "Verified Buyer"
    assert config.state_url == f"sqlite:///{tmp_path / 'cardbridge.db'}"


def test_example_config_documents_a_valid_config(env):
    config = load_config(ROOT / "config.example.toml")
    assert config.communities["forum"].requests_per_minute == 60
    assert config.reviews and config.points and config.server.port == 8080


def test_example_config_documents_every_key():
    """Every key the config models accept, the built-in adapters' settings included, appears in config.example.toml
    (so the example stays the reference)."""
    from connector.core import plugins
    from connector.core.config import (
        DeliveryConfig,
        LinkConfig,
        PointsConfig,
        PointsTarget,
        PolicyConfig,
        ReviewsConfig,
        ReviewTarget,
        ScheduleConfig,
        ServerConfig,
        StateConfig,
    )
    from connector.core.insights_config import InsightsConfig, InsightsTarget
    from connector.core.loop_config import CouponTerms, EarnConfig, EarnTarget, RedeemConfig, RedeemOption
    from connector.core.products_config import AnnounceTarget, ProductsConfig

    adapters = [
        plugins.adapter_class(group, kind).settings
        for group in (plugins.SHOPS, plugins.COMMUNITIES)
        for kind in plugins.available(group)
    ]
    text = (ROOT / "config.example.toml").read_text()
    for model in (
        StateConfig,
        *adapters,
        DeliveryConfig,
        ReviewsConfig,
        ReviewTarget,
        PointsConfig,
        PointsTarget,
        ScheduleConfig,
        ServerConfig,
        PolicyConfig,
        LinkConfig,
        EarnConfig,
        EarnTarget,
        RedeemConfig,
        RedeemOption,
        CouponTerms,
        InsightsConfig,
        InsightsTarget,
        ProductsConfig,
        AnnounceTarget,
    ):
        for key in model.model_fields:
            if key == "communities":
                continue
            # a key holding a table is documented as the table's header ([products.announce])
            assert f"{key} =" in text or f" {key} =" in text or f".{key}]" in text, f"{model.__name__}.{key}"


def test_unset_environment_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("WC_CONSUMER_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"shop.consumer_key: environment variable WC_CONSUMER_KEY is not set"):
        load_config(write(tmp_path, MINIMAL))


def test_unknown_key_is_named(tmp_path, env):
    with pytest.raises(ConfigError, match=r"shop.consumer_kye: unknown key"):
        load_config(write(tmp_path, MINIMAL.replace('consumer_key = "${WC_CONSUMER_KEY}"', 'consumer_kye = "x"')))


def test_rule_for_unknown_community_is_named(tmp_path, env):
    with pytest.raises(ConfigError, match=r"rules.0.grant.discord: no community named 'discord'"):
        load_config(write(tmp_path, MINIMAL.replace("grant.forum", "grant.discord")))


def test_bad_value_is_named(tmp_path, env):
    with pytest.raises(ConfigError, match=r"shop.base_url: must start with http"):
        load_config(write(tmp_path, MINIMAL.replace('"https://shop.example.com"', '"shop.example.com"')))


def test_page_size_limit_is_named(env):
    data = tomllib.loads(MINIMAL)
    data["shop"]["page_size"] = 500
    with pytest.raises(ConfigError, match=r"shop.page_size"):
        parse_config(data)


def test_config_from_environment_variable(tmp_path, env, monkeypatch):
    monkeypatch.setenv("CARDBRIDGE_CONFIG", str(write(tmp_path, MINIMAL)))
    assert load_config().shop.kind == "woocommerce"


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.toml")


DISCORD = (
    MINIMAL
    + """
[communities.discord]
kind = "discord"
bot_token = "t"
guild_id = "1"
application_id = "2"
client_secret = "s"
"""
)


def test_discord_reviews_need_a_forum_channel(tmp_path, env):
    with pytest.raises(ConfigError, match=r"reviews.discord.forum_channel: is required for a Discord community"):
        load_config(write(tmp_path, DISCORD + '[reviews]\ndiscord = { thread_per = "review" }\n'))
    with pytest.raises(ConfigError, match=r"reviews.forum.forum_channel: is for Discord communities"):
        load_config(write(tmp_path, DISCORD + '[reviews]\nforum = { forum_channel = "5" }\n'))
    with pytest.raises(ConfigError, match=r"forum_channel is the channel's id"):
        load_config(write(tmp_path, DISCORD + '[reviews]\ndiscord = { forum_channel = "#reviews" }\n'))


def test_points_tiers_are_roles_on_discord_only(tmp_path, env):
    config = load_config(write(tmp_path, DISCORD + '[points]\ndiscord = { tiers = { "500" = "9", "100" = "8" } }\n'))
    assert config.points.communities["discord"].tier_roles() == [(100, "8"), (500, "9")]
    with pytest.raises(ConfigError, match=r"points.discord: Discord holds points as tier roles"):
        load_config(write(tmp_path, DISCORD + '[points]\ndiscord = { mode = "gamification" }\n'))
    with pytest.raises(ConfigError, match=r"points.forum: tiers are for Discord communities only"):
        load_config(write(tmp_path, DISCORD + '[points]\nforum = { tiers = { "1" = "2" } }\n'))
    with pytest.raises(ConfigError, match=r"the key is a points threshold"):
        load_config(write(tmp_path, DISCORD + '[points]\ndiscord = { tiers = { "gold" = "2" } }\n'))


def test_link_section_names_the_missing_or_bad_key(tmp_path, env):
    link = '[link]\ncommunity = "discord"\npublic_url = "https://bridge.example.com"\nsecret = "%s"\n'
    good = "x" * 40
    assert load_config(write(tmp_path, DISCORD + link % good)).link.join_guild is True
    with pytest.raises(ConfigError, match=r"link.secret: use at least 32 random characters"):
        load_config(write(tmp_path, DISCORD + link % "short"))
    with pytest.raises(ConfigError, match=r"link.community: 'forum' is not a Discord community"):
        load_config(write(tmp_path, DISCORD + (link % good).replace('"discord"', '"forum"')))
    with pytest.raises(ConfigError, match=r"link.token_key: is required with linked_roles"):
        load_config(write(tmp_path, DISCORD + link % good + "linked_roles = true\n"))
    with pytest.raises(ConfigError, match=r"link.token_key: is not a Fernet key"):
        load_config(write(tmp_path, DISCORD + link % good + 'linked_roles = true\ntoken_key = "nope"\n'))
    no_secret = DISCORD.replace('client_secret = "s"\n', "")
    with pytest.raises(ConfigError, match=r"communities.discord.client_secret: is required by \[link\]"):
        load_config(write(tmp_path, no_secret + link % good))


def test_unknown_kind_names_the_key_and_the_kinds_there_are(tmp_path, env):
    with pytest.raises(ConfigError, match=r"shop.kind: unknown kind 'magento' \(known: .*woocommerce"):
        load_config(write(tmp_path, MINIMAL.replace('kind = "woocommerce"', 'kind = "magento"')))
    with pytest.raises(ConfigError, match=r"communities.forum.kind: unknown kind 'slack' \(known: discord, discourse"):
        load_config(write(tmp_path, MINIMAL.replace('kind = "discourse"', 'kind = "slack"')))
    with pytest.raises(ConfigError, match=r"shop.kind: is required \(the adapter: .*woocommerce"):
        load_config(write(tmp_path, MINIMAL.replace('kind = "woocommerce"\n', "")))


def test_each_adapter_takes_only_its_own_keys(tmp_path, env):
    # a Discourse key on a Discord community is a typo there, not a setting
    with pytest.raises(ConfigError, match=r"communities.discord.api_username: unknown key"):
        load_config(write(tmp_path, DISCORD + 'api_username = "system"\n'))
    with pytest.raises(ConfigError, match=r"shop.bot_token: unknown key"):
        load_config(write(tmp_path, MINIMAL.replace("[communities.forum]", 'bot_token = "x"\n[communities.forum]')))


def test_keys_an_adapter_requires_are_named_with_the_kind(tmp_path, env):
    with pytest.raises(ConfigError, match=r'shop.base_url: is required for kind = "woocommerce"'):
        load_config(write(tmp_path, MINIMAL.replace('base_url = "https://shop.example.com"\n', "")))
    with pytest.raises(ConfigError, match=r'communities.forum.base_url: is required for kind = "discourse"'):
        load_config(write(tmp_path, MINIMAL.replace('base_url = "https://forum.example.com"\n', "")))
    # an empty token (an environment variable set to "") counts as missing
    with pytest.raises(ConfigError, match=r'communities.discord.bot_token: is required for kind = "discord"'):
        load_config(write(tmp_path, DISCORD.replace('bot_token = "t"', 'bot_token = ""')))
    with pytest.raises(ConfigError, match=r'communities.discord.guild_id: is required for kind = "discord"'):
        load_config(write(tmp_path, DISCORD.replace('guild_id = "1"\n', "")))


AFTER_SHOP = MINIMAL.split("[communities.forum]")[1]


def shop_config(tmp_path, shop):
    return load_config(
        write(tmp_path, MINIMAL.split("[shop]")[0] + "[shop]\n" + shop + "[communities.forum]" + AFTER_SHOP)
    )


def test_database_and_api_shops_check_their_own_keys(tmp_path, env):
    config = shop_config(tmp_path, 'kind = "acgfaka"\ndatabase_url = "mysql+pymysql://r@127.0.0.1/acg"\n')
    assert config.shop.table_prefix == "acg_" and config.shop.timezone == "Asia/Shanghai"
    with pytest.raises(ConfigError, match=r'shop.database_url: is required for kind = "dujiaoka"'):
        shop_config(tmp_path, 'kind = "dujiaoka"\n')
    with pytest.raises(ConfigError, match=r"shop.timezone: unknown time zone 'Mars/Olympus'"):
        shop_config(tmp_path, 'kind = "dujiaoka"\ndatabase_url = "sqlite://"\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match=r"shop.table_prefix: use letters, digits and '_' only"):
        shop_config(tmp_path, 'kind = "dujiaoka"\ndatabase_url = "sqlite://"\ntable_prefix = "x; DROP"\n')
    with pytest.raises(ConfigError, match=r'shop.api_key: is required for kind = "sellix"'):
        shop_config(tmp_path, 'kind = "sellix"\n')
    assert shop_config(tmp_path, 'kind = "sellix"\napi_key = "k"\n').shop.base_url == "https://dev.sellix.io/v1"
    with pytest.raises(ConfigError, match=r'shop.rest: is required for kind = "rest"'):
        shop_config(tmp_path, 'kind = "rest"\nbase_url = "https://api.example.com"\n')
    rest = (
        'kind = "rest"\nbase_url = "https://api.example.com"\n[shop.rest]\norders = { path = "/o" }\n'
        'status_map = { "1" = "paid" }\n'
        'fields = { id = "no", email = "card_password", status = "s", product_id = "g", modified_at = "t" }\n'
    )
    with pytest.raises(ConfigError, match=r"shop.rest.fields.email: 'card_password' looks like a secret field"):
        shop_config(tmp_path, rest)
    with pytest.raises(ConfigError, match=r"shop.rest.orders.pagination.size: Input should be less than or equal to"):
        shop_config(tmp_path, rest.replace('path = "/o"', 'path = "/o", pagination = { size = 5000 }'))


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_points_per_currency_unit_must_be_a_finite_number(tmp_path, env, value):
    with pytest.raises(ConfigError, match=r"points.per_currency_unit: "):
        load_config(write(tmp_path, MINIMAL + f"[points]\nper_currency_unit = {value}\n"))


def test_insights_section_loads_and_bad_keys_are_named(tmp_path, env):
    config = load_config(
        write(tmp_path, MINIMAL + '[insights]\nfloor = 4\nforum = { category = "需求", tag = "request" }\n')
    )
    assert config.insights and config.insights.floor == 4 and config.insights.communities["forum"].tag == "request"
    with pytest.raises(ConfigError, match=r"insights.shop: no community named 'shop'"):
        load_config(write(tmp_path, MINIMAL + '[insights]\nshop = { tag = "x" }\n'))
    with pytest.raises(ConfigError, match=r"insights.forum.channel: is for Discord"):
        load_config(write(tmp_path, MINIMAL + '[insights]\nforum = { channel = "5" }\n'))
    with pytest.raises(ConfigError, match=r"insights.floor"):
        load_config(write(tmp_path, MINIMAL + "[insights]\nfloor = 0\n"))
    with pytest.raises(ConfigError, match=r"trailing_weeks must be less than weeks"):
        load_config(write(tmp_path, MINIMAL + "[insights]\nweeks = 4\ntrailing_weeks = 4\n"))


def _products_config(extra: str):
    import tomllib

    from connector.core.config import parse_config

    base = """
[shop]
kind = "woocommerce"
base_url = "https://shop.example.com"
consumer_key = "ck"
consumer_secret = "cs"

[communities.forum]
kind = "discourse"
base_url = "https://forum.example.com"
api_key = "k"
api_username = "system"
"""
    return parse_config(tomllib.loads(base + extra))


def test_products_config_defaults_and_invalid_keys_are_named():
    from connector.core.config import ConfigError

    config = _products_config('[products]\ncards = ["forum"]\n[products.announce]\nforum = { category = "News" }\n')
    assert config.products is not None
    assert config.products.card_edit_every == 3600
    target = config.products.announce["forum"]
    assert (target.max_per_day, target.price_drop_percent, target.events) == (3, 10, ["new", "restock", "price_drop"])
    for extra, key in (
        ('[products]\ncards = ["nowhere"]\n', "products.cards.nowhere"),
        ("[products]\ncard_edit_every = -1\n", "products.card_edit_every"),
        ('[products.announce]\nforum = { channel = "123" }\n', "products.announce.forum"),
        ('[products.announce]\nforum = { category = "N", price_drop_percent = 0 }\n', "price_drop_percent"),
        ('[products.announce]\nforum = { category = "N", max_per_day = -2 }\n', "max_per_day"),
    ):
        try:
            _products_config(extra)
        except ConfigError as error:
            assert key in str(error), (extra, str(error))
        else:
            raise AssertionError(f"accepted: {extra}")

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
    assert config.shop.consumer_key == "ck_test"
    assert config.communities["forum"].api_key == "dk"
    assert config.rules[0].grant["forum"].badge == "Verified Buyer"
    assert config.state_url == f"sqlite:///{tmp_path / 'cardbridge.db'}"


def test_example_config_documents_a_valid_config(env):
    config = load_config(ROOT / "config.example.toml")
    assert config.communities["forum"].requests_per_minute == 60
    assert config.reviews and config.points and config.server.port == 8080


def test_example_config_documents_every_key():
    """Every key the config models accept appears in config.example.toml (so the example stays the reference)."""
    from connector.core.config import (
        CommunityConfig,
        DeliveryConfig,
        LinkConfig,
        PointsConfig,
        PointsTarget,
        PolicyConfig,
        ReviewsConfig,
        ReviewTarget,
        ScheduleConfig,
        ServerConfig,
        ShopConfig,
        StateConfig,
    )

    text = (ROOT / "config.example.toml").read_text()
    for model in (
        StateConfig,
        ShopConfig,
        CommunityConfig,
        DeliveryConfig,
        ReviewsConfig,
        ReviewTarget,
        PointsConfig,
        PointsTarget,
        ScheduleConfig,
        ServerConfig,
        PolicyConfig,
        LinkConfig,
    ):
        for key in model.model_fields:
            if key == "communities":
                continue
            assert f"{key} =" in text or f"{key} = " in text or f" {key} =" in text, f"{model.__name__}.{key}"


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

"""``load_config(path, scope)``: what each kind of command reads of the file, and which unset variables stop it."""

from __future__ import annotations

import pytest

from connector.core.config import Config, ConfigError, LocalConfig, Scope, load_config

CONFIG = """
[state]
url = "sqlite:///${STATE_DB}"
[server]
listen = "127.0.0.1:9090"
unhealthy_after_seconds = 120
woocommerce_webhook_secret = "${WC_WEBHOOK_SECRET}"
operator_token = "${OPERATOR_TOKEN}"
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
grant.forum = { badge = "Verified Buyer" }
[reviews]
forum = { category = "Reviews" }
hold = true
"""

SHOP_AND_FORUM = ("WC_CONSUMER_KEY", "WC_CONSUMER_SECRET", "DISCOURSE_API_KEY")
DAEMON = ("WC_WEBHOOK_SECRET", "OPERATOR_TOKEN")


@pytest.fixture
def env(monkeypatch):
    for name in (*SHOP_AND_FORUM, *DAEMON, "STATE_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STATE_DB", "state.db")
    return monkeypatch


def write(tmp_path, text=CONFIG):
    path = tmp_path / "cardbridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def set_all(env, *names):
    for name in names:
        env.setenv(name, "t" * 32)


def test_everything_is_the_default_and_needs_every_variable(tmp_path, env):
    set_all(env, *SHOP_AND_FORUM, "OPERATOR_TOKEN")
    with pytest.raises(ConfigError, match=r"server\.woocommerce_webhook_secret: environment variable WC_WEBHOOK"):
        load_config(write(tmp_path))
    set_all(env, "WC_WEBHOOK_SECRET")
    config = load_config(write(tmp_path))
    assert config.server.woocommerce_webhook_secret == "t" * 32 and config.server.operator_token == "t" * 32


def test_a_pass_leaves_the_daemons_secrets_unset_and_reads_the_rest(tmp_path, env):
    set_all(env, *SHOP_AND_FORUM)
    config = load_config(write(tmp_path), Scope.PASS)
    assert isinstance(config, Config)
    assert config.server.woocommerce_webhook_secret == "" and config.server.operator_token == ""
    assert config.server.unhealthy_after_seconds == 120 and config.server.port == 9090  # the rest of [server]
    assert config.shop.consumer_key == "t" * 32
    # Set or not, the pass does not read them (a short operator token is the daemon's to refuse).
    env.setenv("OPERATOR_TOKEN", "short")
    assert load_config(write(tmp_path), Scope.PASS).server.operator_token == ""
    set_all(env, "WC_WEBHOOK_SECRET")
    with pytest.raises(ConfigError, match="operator_token"):
        load_config(write(tmp_path))


def test_a_pass_still_needs_the_shop_and_forum_secrets(tmp_path, env):
    set_all(env, "WC_CONSUMER_KEY", "WC_CONSUMER_SECRET")
    with pytest.raises(ConfigError, match=r"communities\.forum\.api_key: environment variable DISCOURSE_API_KEY"):
        load_config(write(tmp_path), Scope.PASS)
    set_all(env, "DISCOURSE_API_KEY")
    with pytest.raises(ConfigError, match=r"server\.listen"):
        load_config(write(tmp_path, CONFIG.replace('"127.0.0.1:9090"', '"nowhere"')), Scope.PASS)


def test_local_reads_the_state_and_the_hold_flag_only(tmp_path, env):
    config = load_config(write(tmp_path), Scope.LOCAL)
    assert isinstance(config, LocalConfig)
    assert config.state_url == f"sqlite:///{tmp_path / 'state.db'}"
    assert config.reviews is not None and config.reviews.hold is True
    # Mistakes elsewhere are for the commands that read those sections.
    broken = CONFIG.replace("consumer_key =", "consumer_kye =").replace('kind = "discourse"', 'kind = "slack"')
    assert load_config(write(tmp_path, broken + "[policy]\nrespect_manual_removal = 3\n"), Scope.LOCAL).reviews
    without = CONFIG.split("[reviews]")[0]
    assert load_config(write(tmp_path, without), Scope.LOCAL).reviews is None


def test_local_still_needs_what_it_reads(tmp_path, env):
    env.delenv("STATE_DB")
    with pytest.raises(ConfigError, match=r"state\.url: environment variable STATE_DB is not set"):
        load_config(write(tmp_path), Scope.LOCAL)
    env.setenv("STATE_DB", "state.db")
    with pytest.raises(ConfigError, match=r"reviews\.hold"):
        load_config(write(tmp_path, CONFIG.replace("hold = true", 'hold = "yes"')), Scope.LOCAL)
    with pytest.raises(ConfigError, match=r"state\.uri"):
        load_config(write(tmp_path, CONFIG.replace("url = ", "uri = ")), Scope.LOCAL)

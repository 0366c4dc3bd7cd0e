"""[earn] and [redeem]: the documented shape loads; a mistake names its key."""

from __future__ import annotations

import tomllib

import pytest

from connector.core.config import ConfigError, parse_config

BASE = """
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
SECRET = "s" * 40


def _load(extra: str):
    return parse_config(tomllib.loads(BASE + extra))


def test_the_documented_shape_loads():
    config = _load(
        f"""
[earn]
window_days = 14
forum = {{ categories = ["经验分享", "Guides"], per_like_received = 1, accepted_solution = 10, min_likes = 3, daily_cap = 50 }}
[redeem]
secret = "{SECRET}"
options = [{{ points = 500, coupon = {{ amount = "5.00", type = "fixed_cart" }} }}]
approve_over = 2000
"""
    )
    assert config.earn is not None and config.earn.communities["forum"].per_like == 1
    assert config.redeem is not None and config.redeem.option(500) is not None


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("[earn]\nshop2 = { categories = ['x'] }", "earn.shop2"),
        ("[earn]\nforum = { channels = ['123'] }", "earn.forum"),
        ("[earn]\nforum = { per_like_received = 1 }", "earn.forum"),
        ("[earn]\nforum = { categories = ['x'], daily_cap = -1 }", "earn.communities.forum.daily_cap"),
        (f"[redeem]\nsecret = '{SECRET}'\noptions = []", "redeem.options"),
        ("[redeem]\nsecret = 'short'\noptions = [{ points = 5, coupon = { amount = '1' } }]", "redeem.secret"),
        (f"[redeem]\nsecret = '{SECRET}'\noptions = [{{ points = 5, coupon = {{ amount = 'lots' }} }}]", "amount"),
        (
            f"[redeem]\nsecret = '{SECRET}'\noptions = [{{ points = 5, coupon = {{ amount = '1' }} }}]\n"
            "communities = ['nowhere']",
            "redeem.communities.nowhere",
        ),
    ],
)
def test_a_mistake_names_its_key(extra, key):
    with pytest.raises(ConfigError) as error:
        _load(extra)
    assert key in str(error.value)


def test_a_discord_community_named_for_redeeming_needs_its_public_key():
    extra = f"""
[communities.discord]
kind = "discord"
bot_token = "t"
guild_id = "123"
application_id = "456"
[redeem]
secret = "{SECRET}"
options = [{{ points = 5, coupon = {{ amount = "1" }} }}]
communities = ["discord"]
"""
    with pytest.raises(ConfigError) as error:
        _load(extra)
    assert "communities.discord.public_key: is required by [redeem]" in str(error.value)

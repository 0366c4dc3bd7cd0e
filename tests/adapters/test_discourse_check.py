"""``cardbridge check`` for a Discourse forum, against the sandbox forum over loopback: an admin key passes every check
the config needs; a refused key, a moderator's or a user's key, a disabled badge, an automatic group and a missing or
disabled gamification plugin each fail at their line, naming the config key or forum setting to change, never the key."""

from __future__ import annotations

import socket

import pytest

from adapters.checks import Check, CheckContext, SelfCheck
from adapters.communities.discourse import DiscourseCommunity, DiscourseSettings
from connector.core.config import Grant, PointsTarget, ReviewTarget, Rule
from connector.core.settings import validate_table
from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer

KEY = "forum-key-s3cret"
RULES = [
    Rule(name="buyers", grant={"forum": Grant(badge="Verified Buyer", group="buyers")}),
    Rule(name="vip", grant={"forum": Grant(badge="VIP", group="vip")}),
]
EVERYTHING = CheckContext(review=ReviewTarget(category="Reviews"), points=PointsTarget(mode="gamification"))


@pytest.fixture
def forum():
    sandbox = DiscourseSandbox(api_key=KEY)
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url  # type: ignore[attr-defined]
        yield sandbox


def run(
    base_url: str, key: str = KEY, username: str = "system", context: CheckContext | None = EVERYTHING
) -> list[Check]:
    table = {"kind": "discourse", "base_url": base_url, "api_key": key, "api_username": username}
    settings = validate_table(DiscourseSettings, {**table, "max_retry_seconds": 2}, "communities.forum")
    adapter = DiscourseCommunity("forum", settings, rules=RULES)
    assert isinstance(adapter, SelfCheck)
    try:
        checks = list(adapter.check(context) if context is not None else adapter.check())
    finally:
        adapter.close()
    for line in checks:
        assert "s3cret" not in line.what + line.detail + line.fix
    return checks


def lines(checks: list[Check]) -> list[tuple[str, bool]]:
    return [(c.what, c.ok) for c in checks]


def test_an_admin_key_passes_everything_and_nothing_is_written(forum):
    forum.add_badge("Verified Buyer")
    forum.add_category("Reviews")
    checks = run(forum.url)
    assert lines(checks) == [
        ("forum answers", True),
        ("key accepted", True),
        ("key acts as an admin", True),
        ("badge 'VIP'", True),
        ("badge 'Verified Buyer'", True),
        ("group 'buyers'", True),
        ("group 'vip'", True),
        ("gamification plugin", True),
        ("review category 'Reviews'", True),
    ]
    assert "will be created on first use" in checks[3].detail  # VIP does not exist yet
    assert "exists and is enabled" in checks[4].detail
    assert forum.writes() == []
    assert forum.badge("VIP") is None and forum.group("vip") is None


def test_without_reviews_or_points_their_checks_are_not_made(forum):
    whats = [c.what for c in run(forum.url, context=None)]
    assert "gamification plugin" not in whats and not any(w.startswith("review category") for w in whats)
    assert forum.count("GET", r"/admin/plugins") == 0


def test_a_subfolder_forum_is_checked_under_its_subfolder():
    sandbox = DiscourseSandbox(api_key=KEY, base_path="/forum")
    with SandboxServer(sandbox.app) as server:
        assert all(c.ok for c in run(f"{server.url}/forum"))
        root = run(server.url)
    assert lines(root) == [("forum answers", False)]
    assert "communities.forum.base_url" in root[0].fix


def test_a_refused_key_stops_at_the_key_and_names_it(forum):
    checks = run(forum.url, key="wrong-s3cret")
    assert lines(checks) == [("key accepted", False)]
    assert "communities.forum.api_key" in checks[0].fix and "communities.forum.api_username" in checks[0].fix
    assert run(forum.url, username="nobody")[0].what == "key accepted"  # an Api-Username that is no user: 403 too


@pytest.mark.parametrize("moderator", [True, False])
def test_a_moderators_or_users_key_is_not_an_admin_key(forum, moderator):
    forum.add_user("mod", "mod@example.com", moderator=moderator)
    checks = run(forum.url, username="mod")
    assert lines(checks) == [("forum answers", True), ("key accepted", True), ("key acts as an admin", False)]
    assert ("a moderator" if moderator else "without staff rights") in checks[-1].detail
    assert "communities.forum.api_username" in checks[-1].fix


def test_a_disabled_badge_fails_with_where_to_enable_it(forum):
    forum.add_badge("VIP", enabled=False)
    checks = {c.what: c for c in run(forum.url)}
    assert not checks["badge 'VIP'"].ok and "Admin → Badges" in checks["badge 'VIP'"].fix
    assert checks["badge 'Verified Buyer'"].ok


def test_an_automatic_group_cannot_be_used(forum):
    rules = [Rule(name="tl", grant={"forum": Grant(group="trust_level_1")})]
    settings = validate_table(
        DiscourseSettings, {"kind": "discourse", "base_url": forum.url, "api_key": KEY}, "communities.forum"
    )
    adapter = DiscourseCommunity("forum", settings, rules=rules)
    checks = {c.what: c for c in adapter.check()}
    adapter.close()
    assert not checks["group 'trust_level_1'"].ok and "automatic" in checks["group 'trust_level_1'"].detail


@pytest.mark.parametrize("installed", [True, False])
def test_score_events_need_the_gamification_plugin_installed_and_enabled(forum, installed):
    forum.gamification_installed = installed
    forum.gamification_enabled = False
    checks = {c.what: c for c in run(forum.url)}
    plugin = checks["gamification plugin"]
    assert not plugin.ok
    assert ("disabled" if installed else "not installed") in plugin.detail
    user_field = run(forum.url, context=CheckContext(points=PointsTarget(mode="user_field", user_field_id=1)))
    assert "gamification plugin" not in [c.what for c in user_field]


def test_a_forum_that_does_not_answer_is_one_line_naming_the_url_key():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    checks = run(f"http://127.0.0.1:{port}")
    assert lines(checks) == [("forum answers", False)]
    assert "communities.forum.base_url" in checks[0].fix and f"127.0.0.1:{port}" in checks[0].detail


def test_a_granular_key_is_told_apart_from_a_bad_key(forum):
    forum.add_granular_key("scoped-s3cret", "badges:list")
    checks = run(forum.url, key="scoped-s3cret")
    assert lines(checks) == [("key is a global key", False)]
    assert "granular" in checks[0].detail and "Scope: Global" in checks[0].fix
    assert "communities.forum.api_key" in checks[0].fix
    assert run(forum.url, key="unknown-s3cret")[0].what == "key accepted"

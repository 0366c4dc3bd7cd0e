"""Issue 14: `cardbridge check` tests the config, the state store and every remote, writes nothing, prints one line
per check (✓ or ✗ with the fix) and exits 0 only when all pass."""

from __future__ import annotations

import sqlite3

from jsonschema import validate

from connector.cli.output import schema


def lines(stdout: str, mark: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(mark)]


def test_check_passes_on_the_sandboxes_and_writes_nothing(world):
    run = world.cli("check")
    assert run.code == 0, run.output
    assert not lines(run.stdout, "✗"), run.stdout
    assert lines(run.stdout, "✓ shop:") and lines(run.stdout, "✓ forum:"), run.stdout
    assert "All checks passed." in run.stdout
    assert not world.db_path.exists()  # not even created
    assert world.forum.writes() == []
    as_json = world.cli("check", "--json")
    assert as_json.code == 0
    document = as_json.json()
    validate(document, schema("check"))
    assert document["ok"] is True and {c["part"] for c in document["checks"]} >= {"config", "state", "shop", "forum"}


def test_a_refused_forum_key_is_one_failing_line_naming_the_key(world):
    run = world.cli("check", DISCOURSE_API_KEY="not-the-key")
    assert run.code == 1, run.output
    failing = lines(run.stdout, "✗ forum:")
    assert failing and "communities.forum.api_key" in failing[0], run.stdout
    assert "not-the-key" not in run.output
    assert lines(run.stdout, "✓ shop:")  # the other remotes are still tested


def test_a_refused_shop_key_names_the_key_and_shows_no_secret(world):
    run = world.cli("check", WC_CONSUMER_SECRET="cs_wrong0000000000000000000000000000000000")
    assert run.code == 1, run.output
    failing = lines(run.stdout, "✗ shop:")
    assert failing and "shop.consumer_" in " ".join(failing), run.stdout
    assert "cs_wrong" not in run.output


def test_an_unreachable_postgresql_store_names_the_url_without_its_password(world):
    text = world.config_path.read_text()
    world.config_path.write_text(
        text.replace('url = "sqlite:///state.db"', 'url = "postgresql://cb:s3cret-pw@127.0.0.1:1/cardbridge"'),
        encoding="utf-8",
    )
    run = world.cli("check")
    assert run.code == 1, run.output
    failing = lines(run.stdout, "✗ state:")
    assert failing and "127.0.0.1:1/cardbridge" in failing[0] and "[state] url" in failing[0], run.stdout
    assert "s3cret-pw" not in run.output
    assert lines(run.stdout, "✓ shop:")


def test_a_store_from_a_newer_cardbridge_is_refused_and_left_alone(world):
    assert world.cli("sync").code == 0
    with sqlite3.connect(world.db_path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    before = world.db_path.read_bytes()
    run = world.cli("check")
    assert run.code == 1
    assert "newer than this CardBridge knows" in " ".join(lines(run.stdout, "✗ state:")), run.stdout
    assert world.db_path.read_bytes() == before


def test_an_invalid_config_exits_2_naming_the_key(world):
    world.config_path.write_text(world.config_path.read_text().replace("page_size = 100", "page_size = 1000"))
    run = world.cli("check")
    assert run.code == 2
    assert "shop.page_size" in run.stderr


def test_the_rest_of_the_config_reaches_the_community_checks(world):
    """[points] sends score events to the forum: check tests the gamification plugin there (the forum's own table
    does not say so; the CLI passes what [reviews], [points] and [link] ask of each community)."""
    world.write_config(extra='[points]\nper_order = 10\nforum = { mode = "gamification" }\n')
    world.forum.gamification_installed = False
    run = world.cli("check")
    assert run.code == 1, run.output
    failing = lines(run.stdout, "✗ forum:")
    assert failing and "gamification" in failing[0], run.stdout
    world.forum.gamification_installed = True
    world.forum.gamification_enabled = True
    assert world.cli("check").code == 0

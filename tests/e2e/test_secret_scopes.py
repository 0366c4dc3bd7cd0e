"""Issue 14: each command needs only the secrets of the config sections it uses.

``run`` (and ``check``) read everything; a pass (``sync``, ``backfill``, ``reconcile``) everything but the daemon's
``[server]`` secrets; the state store's commands (``status``, ``points show``, ``reviews``, ``outbox``, ``conflicts``)
only ``[state]`` and ``[reviews] hold``.
"""

from __future__ import annotations

import subprocess

from tests.e2e.conftest import Run

#: The daemon's secrets, placed before every other section: a command that resolved the whole file would stop here
#: first, naming a key it never uses.
SERVER = """[server]
listen = "127.0.0.1:0"
woocommerce_webhook_secret = "${WC_WEBHOOK_SECRET}"
discourse_webhook_secret = "${DISCOURSE_WEBHOOK_SECRET}"
operator_token = "${OPERATOR_TOKEN}"
"""
DAEMON_SECRETS = ("WC_WEBHOOK_SECRET", "DISCOURSE_WEBHOOK_SECRET", "OPERATOR_TOKEN")
SHOP_AND_FORUM_SECRETS = ("WC_CONSUMER_KEY", "WC_CONSUMER_SECRET", "DISCOURSE_API_KEY")


def cli_without(world, unset: tuple[str, ...], *args: str, **extra: str) -> Run:  # type: ignore[no-untyped-def]
    """``cardbridge <args>`` with the variables ``unset`` absent from its environment (and ``extra`` set)."""
    env = {k: v for k, v in world.env(**extra).items() if k not in unset}
    done = subprocess.run(world.command(*args), capture_output=True, text=True, env=env, timeout=120)
    return Run(done.returncode, done.stdout, done.stderr)


def with_server_first(world, extra: str = "") -> None:  # type: ignore[no-untyped-def]
    world.write_config(extra=extra)
    world.config_path.write_text(SERVER + world.config_path.read_text(), encoding="utf-8")


def a_buyer(world) -> None:  # type: ignore[no-untyped-def]
    key = world.shop.add_product("Elden Ring Steam Key", "199.00")
    world.shop.add_order(email="alice@example.com", items=[(key, 1)], status="completed")
    world.forum.add_user("alice", "alice@example.com")


def test_a_pass_runs_without_the_daemons_secrets(world):
    with_server_first(world)
    a_buyer(world)
    sync = cli_without(world, DAEMON_SECRETS, "sync")
    assert sync.code == 0, sync.output
    assert world.forum.badges_of("alice") == ["Verified Buyer"]
    for args in (("backfill", "--dry-run"), ("backfill",), ("reconcile",)):
        run = cli_without(world, DAEMON_SECRETS, *args)
        assert run.code == 0, (args, run.output)
        assert "WEBHOOK_SECRET" not in run.output and "OPERATOR_TOKEN" not in run.output


def test_a_pass_with_the_shop_key_unset_names_that_key_not_a_daemon_one(world):
    with_server_first(world)
    run = cli_without(world, (*DAEMON_SECRETS, "WC_CONSUMER_KEY"), "sync")
    assert run.code == 2, run.output
    assert "shop.consumer_key" in run.stderr and "WC_CONSUMER_KEY" in run.stderr
    assert "server." not in run.stderr
    assert world.shop.requests == []  # refused before anything was asked of the shop


def test_the_state_store_commands_need_no_shop_forum_or_daemon_secret(world):
    with_server_first(world, extra='[reviews]\nforum = { category = "Reviews" }\nhold = true\n')
    a_buyer(world)
    assert world.cli("sync", WC_WEBHOOK_SECRET="w", DISCOURSE_WEBHOOK_SECRET="d", OPERATOR_TOKEN="o" * 24).code == 0
    unset = DAEMON_SECRETS + SHOP_AND_FORUM_SECRETS
    status = cli_without(world, unset, "status", "--json")
    assert status.code == 0, status.output
    assert status.json()["totals"]["granted"] == 2, status.stdout  # the badge and the group
    points = cli_without(world, unset, "points", "show", "alice@example.com")
    assert points.code == 0, points.output
    assert "Total: 0" in points.stdout
    held = cli_without(world, unset, "reviews", "held")
    assert held.code == 0 and "0 review(s) held" in held.stdout, held.output
    for args in (("outbox", "list"), ("conflicts",), ("outbox", "retry")):
        run = cli_without(world, unset, *args)
        assert run.code == 0, (args, run.output)


def test_status_works_while_the_shop_section_is_being_fixed(world):
    world.write_config()
    assert world.cli("sync").code == 0
    text = world.config_path.read_text().replace("consumer_key =", "consumer_kye =")
    world.config_path.write_text(text.replace('base_url = "http', 'base_url = "htp', 1), encoding="utf-8")
    status = cli_without(world, SHOP_AND_FORUM_SECRETS, "status", "--json")
    assert status.code == 0, status.output
    sync = world.cli("sync")
    assert sync.code == 2 and "shop.consumer_kye" in sync.stderr, sync.output


def test_a_variable_the_state_store_needs_is_still_required(world):
    world.write_config()
    text = world.config_path.read_text().replace('"sqlite:///state.db"', '"sqlite:///${STATE_DB_NAME}"')
    world.config_path.write_text(text, encoding="utf-8")
    status = cli_without(world, ("STATE_DB_NAME",), "status")
    assert status.code == 2, status.output
    assert "state.url" in status.stderr and "STATE_DB_NAME" in status.stderr
    assert cli_without(world, SHOP_AND_FORUM_SECRETS, "status", STATE_DB_NAME="named.db").code == 0


def test_run_still_needs_the_daemons_secrets(world):
    with_server_first(world)
    run = cli_without(world, ("WC_WEBHOOK_SECRET",), "run", DISCOURSE_WEBHOOK_SECRET="d", OPERATOR_TOKEN="o" * 24)
    assert run.code == 2, run.output
    assert "server.woocommerce_webhook_secret" in run.stderr and "WC_WEBHOOK_SECRET" in run.stderr

"""Issue 14, the CLI's smaller faults: what an operator reads (messages, help, member text) and the exit codes."""

from __future__ import annotations

import subprocess

import pytest

#: Review text that Rich markup would eat, rewrite or crash on.
MARKUP_REVIEW = "Great [/b] key [quote]x[/quote] see [x](https://e.com) [bold]not bold[/bold]"

HELD = """
[reviews]
forum = { category = "Reviews" }
hold = true
"""


def test_an_unknown_log_level_is_refused_naming_the_option_and_the_allowed_values(world):
    run = world.cli("--log-level", "verbose", "status")
    assert run.code == 2, run.output
    assert "--log-level" in run.stderr and "'verbose'" in run.stderr
    assert all(level in run.stderr for level in ("debug", "info", "warning", "error"))
    assert "Traceback" not in run.output and "KeyError" not in run.output


def test_help_and_messages_keep_config_section_names(world):
    reviews = world.cli("reviews", "--help")
    assert reviews.code == 0 and "[reviews] hold = true" in reviews.stdout
    reconcile = world.cli("reconcile", "--help")
    assert reconcile.code == 0 and "[policy]" in reconcile.stdout
    link_url = world.cli("link-url", "--help")
    assert link_url.code == 0 and "[link]" in link_url.stdout
    no_link = world.cli("link-url", "--customer", "1")
    assert no_link.code == 2 and "No [link] section in the config" in no_link.stderr


@pytest.fixture
def markup_world(world):
    world.write_config(extra=HELD)
    key = world.shop.add_product("Elden Ring Steam Key", "199.00")
    world.shop.add_order(email="alice@example.com", items=[(key, 1)], status="completed")
    world.forum.add_user("alice", "alice@example.com")
    world.review = world.shop.add_review(key, "Alice", "alice@example.com", 5, MARKUP_REVIEW)
    return world


def test_reviews_held_prints_member_text_verbatim(markup_world):
    world = markup_world
    assert world.cli("sync").code == 0
    held = world.cli("reviews", "held")
    assert held.code == 0, held.output
    assert "1 review(s) held" in held.stdout
    assert MARKUP_REVIEW in held.stdout  # [/b], [quote]…[/quote], [x](url) and [bold] all shown as written
    assert "MarkupError" not in held.output


def test_reviews_held_lists_nothing_when_reviews_are_not_held(world):
    world.write_config(extra=HELD.replace("hold = true", "hold = false"))
    key = world.shop.add_product("Elden Ring Steam Key", "199.00")
    world.shop.add_order(email="alice@example.com", items=[(key, 1)], status="completed")
    world.forum.add_user("alice", "alice@example.com")
    world.shop.add_review(key, "Alice", "alice@example.com", 5, "Instant delivery, works.")
    assert world.cli("sync").code == 0
    assert any(
        "Instant delivery" in post["raw"]
        for topic in world.forum.topics()
        for post in world.forum.posts_of_topic(topic["id"])
    )
    held = world.cli("reviews", "held")
    assert held.code == 0, held.output
    assert "0 review(s) held" in held.stdout and "hold is off" in held.stdout
    assert "Instant delivery" not in held.stdout  # the review was posted, not held


def test_outbox_retry_of_unknown_ids_says_so_and_fails(world):
    assert world.cli("sync").code == 0
    run = world.cli("outbox", "retry", "99999", "99998")
    assert run.code == 1, run.output
    assert "no such action: 99999, 99998" in run.stderr


def test_a_bad_since_names_the_option_and_the_format(world):
    run = world.cli("backfill", "--since", "last-tuesday")
    assert run.code == 2, run.output
    assert "--since" in run.stderr and "YYYY-MM-DD" in run.stderr and "last-tuesday" in run.stderr


def test_errors_are_not_wrapped_when_output_is_not_a_terminal(world):
    assert world.cli("sync").code == 0
    env = world.env()
    del env["COLUMNS"]  # as under cron: no terminal, no width
    ids = [str(i) for i in range(99900, 99920)]
    done = subprocess.run(world.command("outbox", "retry", *ids), capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    line = next(line for line in done.stderr.splitlines() if "no such action" in line)
    assert len(line) > 80 and ", ".join(ids) in line and line.endswith("(see `cardbridge status`)")


def test_a_quoted_boolean_in_the_config_is_refused_naming_the_key(world):
    world.write_config(extra='[policy]\nrespect_manual_removal = "yes"\n')
    run = world.cli("sync")  # a pass reads [policy] (`status` reads only [state]: test_secret_scopes.py)
    assert run.code == 2, run.output
    assert "respect_manual_removal" in run.stderr and "true or false" in run.stderr
    world.write_config(extra="[policy]\nrespect_manual_removal = false\n")
    assert world.cli("sync").code == 0


def test_orders_read_counts_each_order_once(world):
    world.write_config(page_size=100)
    key = world.shop.add_product("Steam Key", "1.00")
    for i in range(300):  # all modified within a second or two: every page boundary shares a second
        world.shop.add_order(email=f"b{i}@example.com", items=[(key, 1)], status="completed")
    run = world.cli("backfill")
    assert run.code == 0, run.output
    fetched = [r for r in world.shop.requests if r["path"].endswith("/orders") and r["query"].get("status") != "trash"]
    assert len(fetched) > 3  # the walk did re-read a page
    row = next(line for line in run.stdout.splitlines() if line.strip().startswith("orders read"))
    assert row.split()[-1] == "300", row

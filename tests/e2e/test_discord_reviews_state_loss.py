"""Issue 13: after a lost state store, Discord review threads and messages are found again, never doubled.

Threads and messages have no external id: the bot's threads are found by the marker their names end with, among the
guild's active threads and the forum's archived public threads, and a product thread's reviews by the marker line
each message ends with, reading the whole thread.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_discord_reviews import forum_world, messages  # noqa: F401  (a fixture, and its helper)


def lose_state(world) -> None:
    for suffix in ("", "-wal", "-shm"):
        world.db_path.with_name(world.db_path.name + suffix).unlink(missing_ok=True)


def contents(d, forum_id) -> list[tuple[str, str]]:
    return sorted((t["name"], m["content"]) for t in d.threads_of(forum_id) for m in messages(d, t["id"]))


@pytest.mark.parametrize("thread_per", ["product", "review"])
def test_a_lost_state_store_makes_no_second_thread_or_message(forum_world, thread_per):  # noqa: F811
    world = forum_world
    world.setup(thread_per)
    d = world.discord
    for n in range(3):
        world.shop.add_review(world.product, f"Buyer {n}", f"b{n}@example.com", 4, f"Key {n} worked.")
    assert world.cli("sync").code == 0
    before = contents(d, world.forum_id)
    assert len(before) == 3 + (thread_per == "product")  # the product's intro, or none
    d.archive(d.threads_of(world.forum_id)[0]["id"])  # Discord archives quiet threads: those must be found too
    lose_state(world)
    d.reset_log()
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert [r for r in d.writes() if r["method"] == "POST"] == []
    assert contents(d, world.forum_id) == before
    # What was found is stored: a new review goes into the same product thread (or its own), and nothing else moves.
    world.shop.add_review(world.product, "Late", "late@example.com", 5, "Still works.")
    assert world.cli("sync").code == 0
    assert len(contents(d, world.forum_id)) == len(before) + 1
    assert len(d.threads_of(world.forum_id)) == (1 if thread_per == "product" else 4)

"""The whole flow with the state store on PostgreSQL (how several replicas will share work)."""

from __future__ import annotations


def test_grant_refund_and_rerun_with_state_on_postgresql(pg_world):
    world = pg_world
    card = world.shop.add_product("王者荣耀 点券 60元", "60.00")
    order = world.shop.add_order(email="pg@example.com", items=[(card, 1)], status="completed")
    world.forum.add_user("pg", "pg@example.com")
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert world.forum.badges_of("pg") == ["Verified Buyer"]
    world.forum.reset_log()
    assert world.cli("sync").code == 0 and world.forum.writes() == []
    world.shop.set_status(order, "refunded")
    assert world.cli("sync").code == 0
    assert world.forum.badges_of("pg") == []
    assert not world.db_path.exists()  # nothing went to SQLite
    status = world.cli("status", "--json").json()
    assert status["outbox"]["done"] == 4

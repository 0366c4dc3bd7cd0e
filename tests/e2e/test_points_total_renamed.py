"""Issue 13, item 2: a points total kept in a user field reaches a member renamed on the forum after matching.

``PUT /u/{username}.json`` finds the account by name only, so the old name answers 404; the account is found again by
its id (``GET /admin/users/{id}.json``) and the field set under its name now.
"""

from __future__ import annotations

POINTS = """
[points]
per_order = 10
per_currency_unit = 0.1
forum = {{ mode = "user_field", user_field_id = {field_id} }}
"""


def test_a_renamed_member_gets_the_points_total_on_the_renamed_account(world):
    shop, forum = world.shop, world.forum
    field_id = forum.add_user_field("Shop points")
    world.write_config(extra=POINTS.format(field_id=field_id))
    key = shop.add_product("Elden Ring Steam Key", "199.00")
    alice = shop.add_customer("alice@example.com", "Alice", "Liu")
    shop.add_order(customer_id=alice, items=[(key, 1)], status="completed")
    forum.add_user("alice", "alice@example.com")
    assert world.cli("sync").code == 0
    assert str(forum.user("alice")["user_fields"][str(field_id)]) == "29"  # 10 + 199.00 × 0.1
    forum.rename_user("alice", "alice_liu")
    card = shop.add_product("王者荣耀 点券 60元", "60.00")
    shop.add_order(customer_id=alice, items=[(card, 1)], status="completed")
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert str(forum.user("alice_liu")["user_fields"][str(field_id)]) == "45"  # 29 + 10 + 6
    assert "failed 0, dead 0" in world.cli("status").output
    # The new name is stored: the next total goes to it at once, with no 404 first.
    shop.add_order(customer_id=alice, items=[(card, 1)], status="completed")
    forum.reset_log()
    assert world.cli("sync").code == 0
    assert str(forum.user("alice_liu")["user_fields"][str(field_id)]) == "61"
    assert forum.count("PUT", r"^/u/alice\.json") == 0

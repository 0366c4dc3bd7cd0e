"""What a post is worth, and what a member gets of it today."""

from __future__ import annotations

from mappings.earn import EarnRules, counted, delta, post_worth

RULES = EarnRules(per_like=2, accepted_solution=10, min_likes=3, per_post_cap=30, daily_cap=50)


def test_likes_count_only_from_the_minimum_on_and_a_solution_adds_up_to_the_cap():
    assert post_worth(2, False, False, RULES) == 0
    assert post_worth(3, False, False, RULES) == 6
    assert post_worth(3, True, False, RULES) == 16
    assert post_worth(40, True, False, RULES) == 30
    assert post_worth(0, True, False, RULES) == 10


def test_a_removed_post_is_worth_nothing():
    assert post_worth(40, True, True, RULES) == 0


def test_the_author_their_linked_accounts_new_accounts_and_repeats_do_not_count():
    likers = [
        ("1", None, True),  # the author
        ("2", "c:9", True),  # another account of the author's shop customer
        ("3", None, False),  # too new
        ("4", None, True),
        ("4", None, True),  # the same member twice (two reactions)
        ("5", "c:5", True),
    ]
    assert counted(likers, "1", "c:9") == 2


def test_a_rise_waits_for_room_in_the_day_and_a_fall_is_taken_back_at_once():
    assert delta(30, 0, 50) == 30
    assert delta(30, 0, 12) == 12
    assert delta(30, 12, 0) == 0
    assert delta(0, 30, 0) == -30
    assert delta(10, 30, 50) == -20

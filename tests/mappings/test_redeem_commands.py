"""Reading a member's private message: the command, from the title first, in the member's language."""

from __future__ import annotations

from decimal import Decimal

from mappings.redeem import Offer, issued_text, read_command, refused_text


def test_the_command_is_read_from_the_title_because_the_forum_refuses_short_bodies():
    command = read_command("兑换 500", "麻烦帮我兑换一下，谢谢！")
    assert (command.name, command.points, command.language) == ("redeem", 500, "zh")


def test_full_width_digits_and_a_colon_are_read_and_english_is_answered_in_english():
    assert read_command("兑换：５００", "").points == 500
    command = read_command("Redeem 1000 please", "Hello there, thanks a lot")
    assert (command.name, command.points, command.language) == ("redeem", 1000, "en")


def test_balance_questions_and_anything_else():
    assert read_command("积分", "我想查一下积分余额").name == "points"
    assert read_command("my points?", "how many do I have").name == "points"
    assert read_command("hello", "is anyone there").name == "help"


def test_a_command_buried_deep_in_a_long_letter_is_not_one():
    assert read_command("a question", "x" * 300 + " redeem 500").name == "help"


def test_answers_carry_the_code_and_numbers_only_never_member_text():
    offer = Offer(500, Decimal("5.00"), "fixed_cart")
    text = issued_text(500, offer, "CB-ABCDEFGHJKLM", "2026-12-31", 100, zh=True)
    assert "CB-ABCDEFGHJKLM" in text and "2026-12-31" in text and "100" in text
    assert refused_text("balance", 500, 20, [offer], zh=False) == "Not enough points: 500 needed, you have 20."

"""Keyword heat: what is counted from a post, what is never kept, and which terms rise."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from mappings.heat import Tokenizer, count_posts, keepable, rising, week_of

PRODUCTS = {"p1": "原神月卡", "p2": "Netflix Premium", "p3": "Spotify"}


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(PRODUCTS)


def test_a_product_name_stays_one_term_and_counts_as_a_mention(tokenizer: Tokenizer) -> None:
    text = "有人知道原神月卡什么时候补货吗？"
    assert "原神月卡" in tokenizer.terms(text)
    assert "原神" not in tokenizer.terms(text)
    assert tokenizer.mentions(text) == {"p1"}
    assert tokenizer.mentions("求 原神 月卡") == {"p1"}  # spaces anywhere in a Chinese name


def test_english_words_and_a_two_word_product(tokenizer: Tokenizer) -> None:
    text = "Is the NETFLIX premium plan back? The 4K streaming was great."
    terms = tokenizer.terms(text)
    assert {"netflix", "premium", "plan", "4k", "streaming", "great"} <= terms
    assert not {"is", "the", "was"} & terms
    assert tokenizer.mentions(text) == {"p2"}


def test_addresses_links_and_long_numbers_are_never_terms(tokenizer: Tokenizer) -> None:
    text = "订单号 20261130123456 没到，联系 alice@example.com 或看 https://shop.example/o/98765 QQ 1234567"
    terms = tokenizer.terms(text)
    assert not any(char.isdigit() for term in terms for char in term if len(term) >= 6)
    assert not any("@" in t or "example" in t or "http" in t for t in terms)
    assert "订单号" in terms
    assert not keepable("x" * 25)
    assert not keepable("1234567")


def test_a_term_counts_once_per_post() -> None:
    tokenizer = Tokenizer({})
    monday = datetime(2026, 11, 23, 9, tzinfo=UTC)
    counts = count_posts([(monday, "refund refund refund"), (monday + timedelta(days=6), "refund please")], tokenizer)
    assert counts.terms[("refund", date(2026, 11, 23))] == 2
    assert counts.posts == 2
    assert week_of(monday + timedelta(days=7)) == date(2026, 11, 30)
    sunday_night_in_beijing = datetime(2026, 11, 29, 23, tzinfo=timezone(timedelta(hours=8)))
    assert week_of(sunday_night_in_beijing) == date(2026, 11, 23)


def test_a_term_rises_above_its_trailing_average_only_past_the_floor() -> None:
    now = date(2026, 11, 30)
    weeks = [now - timedelta(weeks=n) for n in range(5)]
    counts = {
        "退款": {weeks[0]: 9, weeks[1]: 1, weeks[2]: 2, weeks[3]: 1, weeks[4]: 0},  # rising: 9 vs 1.0
        "月卡": {weeks[0]: 10, weeks[1]: 9, weeks[2]: 11, weeks[3]: 10, weeks[4]: 10},  # always talked about
        "new": {weeks[0]: 2},  # below the floor
        "steam": {weeks[0]: 3},  # new and at the floor: 3 vs a quiet 1
    }
    found = rising(counts, now, weeks=4, floor=3)
    assert [r.term for r in found] == ["退款", "steam"]
    assert found[0].trailing == 1.0 and found[0].ratio == 9.0
    with pytest.raises(ValueError):
        rising(counts, now, weeks=0)

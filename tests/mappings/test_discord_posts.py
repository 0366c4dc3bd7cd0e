"""Discord rendering of shop reviews: markdown and mentions arrive inert, and a message never exceeds 2000 chars."""

from __future__ import annotations

import re

from mappings.discord_posts import (
    MAX_CONTENT,
    escape_discord,
    product_marker,
    product_thread_name,
    render_review,
    thread_name,
)
from mappings.points import tier_role
from mappings.reviews import ReviewView


def view(text: str, rating: int = 5, username: str | None = None, verified: bool = True) -> ReviewView:
    return ReviewView("42", "Steam $20 **card**", rating, text, verified, username)


def test_markdown_and_mentions_are_escaped():
    out = escape_discord("@everyone @HERE <@123> <@&456> <#789> **b** __u__ ~~s~~ ||sp|| `c` > q # h -# sub [l](u)")
    assert "@everyone" not in out and "@\u200beveryone" in out and "@\u200bHERE" in out
    # no mention, channel or emoji token survives unescaped
    assert not re.search(r"(?<!\\)<[@#:]", out)
    bare = re.sub(r"\\.", "", out)  # drop every backslash-escaped character: what is left renders as typed
    for char in "*_~|`[]()<>#":
        assert char not in bare, char
    assert out.count("\\#") == 3 and "\\>" in out


def test_render_fits_2000_characters_even_when_escaping_doubles_the_text():
    content = render_review(view("*" * 3000))
    assert len(content) <= MAX_CONTENT
    assert content.endswith("-# cardbridge review 42") and "…" in content
    short = render_review(view("Fast delivery"))
    assert "> Fast delivery" in short and "…" not in short


def test_reviewer_is_shown_by_mention_only_when_linked():
    assert "<@700000000000000001>" in render_review(view("ok", username="700000000000000001"))
    assert "a shop customer" in render_review(view("ok"))
    assert "no paid order" in render_review(view("ok", verified=False))


def test_thread_names_fit_discord():
    assert thread_name("x" * 300) == ("Reviews: " + "x" * 300)[:100]
    name = thread_name("y" * 300, view("ok", rating=3))
    assert len(name) == 100 and name.startswith("★★★☆☆ ") and name.endswith("· #42")


def test_a_product_thread_name_ends_with_its_product_marker_and_fits():
    assert product_thread_name("Reviews: Game Key", "12") == "Reviews: Game Key · #p12"
    name = product_thread_name(thread_name("z" * 300), "12")
    assert len(name) == 100 and name.endswith(" · #p12")
    assert not product_thread_name("x", "112").endswith(product_marker("12"))  # "#p112" is not "#p12"
    long_id = "k" * 300
    name = product_thread_name("Reviews: Game Key", long_id)
    assert (
        len(name) <= 100 and name.endswith(product_marker(long_id)) and product_marker(long_id) != product_marker("k")
    )


def test_tier_role_is_the_highest_tier_reached():
    tiers = [(500, "gold"), (100, "silver")]
    assert tier_role(99, tiers) is None
    assert tier_role(100, tiers) == "silver"
    assert tier_role(499, tiers) == "silver"
    assert tier_role(10_000, tiers) == "gold"

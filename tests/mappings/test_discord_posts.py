"""Discord rendering of shop reviews: markdown and mentions arrive inert, and a message never exceeds 2000 chars."""

from __future__ import annotations

import re
import time

import pytest

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


#: What Discord or a client could turn into a link or an invite: a scheme, an invite path, a domain, an IPv4 address.
LINKY = re.compile(
    r"(?i)[a-z][a-z0-9+.-]*:/|discord(?:app)?[.。．｡](?:gg|com)|(?:[^\W_][\w-]*[.。．｡])+[^\W\d_]{2,}|\d+\.\d+\.\d+\.\d+"
)
CODE_SPAN = re.compile(r"(?<!\\)`[^`]*`")


def clickable(content: str) -> list[str]:
    """Links in rendered content: outside code spans, anything link-like; inside them, what a detector reading the
    raw text would still find (invites, schemes, domains: a zero-width space after each dot and colon breaks them)."""
    found = LINKY.findall(CODE_SPAN.sub(" ", content))
    return found + [m for span in CODE_SPAN.findall(content) for m in LINKY.findall(span)]


LINKS = [
    "discord.gg/freekeys",
    "https://discord.gg/freekeys",
    "discord.com/invite/abc",
    "discordapp.com/invite/abc",
    "discord。gg/abc",
    "https://evil.example/x?y=1#z",
    "HTTP://EVIL.EXAMPLE",
    "steam://run/730",
    "ftp://files.example.org/a",
    "www.example.com",
    "example.com/path",
    "sub.example.co.uk:8443/x",
    "例子.cn",
    "例子.中国/路径",
    "xn--fiqs8s.xn--fiqz9s",
    "192.168.1.1/admin",
    "buyer@example.com",
]


@pytest.mark.parametrize("link", LINKS)
def test_links_invites_and_bare_domains_are_inert(link):
    for text in (link, f"get keys at {link} now", f"({link}).", f"[x]({link})", f"<{link}>"):
        out = escape_discord(text)
        assert clickable(out) == [], (text, out)
        # still readable: the link is in a code span, only zero-width spaces added
        assert f"`{link}`" in out.replace("\u200b", ""), out


def test_plain_text_with_dots_is_left_alone():
    for text in ("Great key. Fast delivery!", "v1.2.3 works, 3.5 stars", "e.g. this", "ok...", "A.B."):
        assert "`" not in escape_discord(text), text


def test_mentions_inside_a_link_are_inert_too():
    out = escape_discord("https://x.example/@everyone/<@123>")
    assert "@everyone" not in out and clickable(out) == []


def test_escaping_links_takes_linear_time():
    hostile = ["a" * 5000, "a." * 2500, "a-" * 2500, "1." * 2500, "a@" * 2500, "x:/" * 1600, "例" * 5000]
    started = time.perf_counter()
    for text in hostile:
        render_review(view(text))
    assert time.perf_counter() - started < 2.0


def test_render_fits_2000_characters_even_when_escaping_doubles_the_text():
    content = render_review(view("*" * 3000))
    assert len(content) <= MAX_CONTENT
    assert content.endswith("-# cardbridge review 42") and "…" in content
    short = render_review(view("Fast delivery"))
    assert "> Fast delivery" in short and "…" not in short
    links = render_review(view("discord.gg/abc " * 400))  # each link grows by backticks and zero-width spaces
    assert len(links) <= MAX_CONTENT and clickable(links) == [] and links.endswith("-# cardbridge review 42")
    named = render_review(ReviewView("42", "N" * 3000, 5, "ok", True, None))  # a shop's overlong product name
    assert len(named) <= MAX_CONTENT and "> ok" in named


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

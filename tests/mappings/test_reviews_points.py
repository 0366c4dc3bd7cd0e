"""Pure review rendering and points rules."""

from connector.core.config import PointsConfig, ReviewsConfig
from mappings.points import due_events, order_points
from mappings.reviews import ReviewView, escape_discourse, passes_moderation, render_post, review_op


def test_escape_makes_markup_inert():
    escaped = escape_discourse("<b>hi</b> **bold** [quote]x[/quote] [a](http://e.x) @admin #cat `code` 1. item")
    assert "<b>" not in escaped and "&lt;b&gt;" in escaped
    assert "\\*\\*bold\\*\\*" in escaped and "\\[quote\\]" in escaped
    assert "`@admin`" in escaped and "`#cat`" in escaped and "`http://e.x)`" in escaped
    assert "\\`code\\`" in escaped and "1\\. item" in escaped


def test_render_names_the_reviewer_only_when_linked_and_marks_verification():
    linked = render_post(ReviewView("7", "Key", 4, "good", True, "alice"))
    assert "Verified purchase: alice" in linked and "cardbridge review 7" in linked and "★★★★☆" in linked
    anonymous = render_post(ReviewView("8", "Key", 2, "meh", False, None))
    assert "a shop customer" in anonymous and "no paid order" in anonymous


def test_moderation():
    config = ReviewsConfig(min_rating=3, blocklist=["刷单"])
    assert passes_moderation(2, "ok", config) == "rating 2 is below min_rating 3"
    assert passes_moderation(5, "找我刷单", config) == "contains a blocklisted word"
    assert passes_moderation(5, "fine", config) is None


def test_review_op():
    assert review_op(True, "h", None, None) == "create"
    assert review_op(True, "h", "posted", "h") is None
    assert review_op(True, "h2", "posted", "h") == "edit"
    assert review_op(False, None, "posted", "h") == "delete"
    assert review_op(False, None, "deleted", "h") is None
    assert review_op(True, "h", "forum-deleted", "h") is None  # an admin kept the moderator's deletion
    assert review_op(True, "h2", "forum-deleted", "h") == "create"  # …until the review changes in the shop


def test_points_awarded_once_and_reversed_once():
    config = PointsConfig(per_order=10, per_currency_unit=0.5, per_review=3)
    assert order_points("19.99", config) == 19
    first = due_events([("1", True, "19.99")], [("r1", True)], {}, config)
    assert [(e.key, e.points) for e in first] == [("order:1", 19), ("review:r1", 3)]
    recorded = {e.key: e.points for e in first}
    assert due_events([("1", True, "19.99")], [("r1", True)], recorded, config) == []
    refund = due_events([("1", False, "19.99")], [("r1", True)], recorded, config)
    assert [(e.key, e.points) for e in refund] == [("order:1:reversal", -19)]
    recorded["order:1:reversal"] = -19
    assert due_events([("1", False, "19.99")], [("r1", True)], recorded, config) == []

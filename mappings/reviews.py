"""Pure translation of shop reviews into forum posts: moderation, escaping, rendering, and which action is due.

Review text is untrusted member text. It is escaped for Discourse so that HTML, markdown, BBCode, @mentions,
#hashtags and links arrive as inert text: nothing executes, nothing renders as markup, nobody is notified.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from connector.core.config import ReviewsConfig

#: CommonMark treats a backslash before any ASCII punctuation as a literal; BBCode's "[" and HTML's "<" included.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:$/@])")
#: Mentions, hashtags and URLs go into code spans: inside one, nothing is linked, mentioned or rendered, in every
#: markdown renderer, and no invisible character is needed (Discourse strips some of those on save).
_INERT = re.compile(r"(?i)(?:https?|ftp)://[^\s`]+|www\.[^\s`]+|[@#][^\s`]+")

ReviewOp = Literal["create", "edit", "delete"]


def _escape_plain(text: str) -> str:
    # Backslashes first (they would escape the entities), then HTML: "<" and ">" become entities, so no tag, no
    # autolink and no blockquote marker survives; "&" too, so a typed entity shows as typed.
    text = _MARKDOWN.sub(r"\\\1", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_discourse(text: str) -> str:
    """Escape one line of member text for a Discourse post (markdown + HTML + BBCode + mentions + links)."""
    parts: list[str] = []
    position = 0
    for match in _INERT.finditer(text):
        parts.append(_escape_plain(text[position : match.start()]))
        parts.append(f"`{match.group(0)}`")
        position = match.end()
    parts.append(_escape_plain(text[position:]))
    return "".join(parts)


def passes_moderation(rating: int, text: str, config: ReviewsConfig) -> str | None:
    """None when the review may be posted; otherwise why not."""
    if rating < config.min_rating:
        return f"rating {rating} is below min_rating {config.min_rating}"
    lowered = text.lower()
    for word in config.blocklist:
        if word and word.lower() in lowered:
            return "contains a blocklisted word"
    return None


@dataclass(frozen=True)
class ReviewView:
    """What a post shows about a review; everything here is already decided (verified, who) by the planner."""

    review_id: str
    product_name: str
    rating: int
    text: str
    verified: bool
    #: The reviewer's forum username when their account is linked; None = anonymised.
    username: str | None


def marker(review_id: str) -> str:
    """The line that identifies a connector post after a crash (posts have no external id)."""
    return f"cardbridge review {review_id}"


def render_post(view: ReviewView) -> str:
    stars = "★" * view.rating + "☆" * (5 - view.rating)
    lines = [f"**{stars}** {view.rating}/5 · {escape_discourse(view.product_name)}", ""]
    body = [line.rstrip() for line in view.text.splitlines()] or [""]
    lines += [f"> {escape_discourse(line)}" if line else ">" for line in body]
    lines.append("")
    who = escape_discourse(view.username) if view.username else "a shop customer"
    if view.verified:
        lines.append(f"✅ Verified purchase: {who} paid for this product in the shop.")
    else:
        lines.append(f"Reviewed by {who} (no paid order for this product was found).")
    lines += ["", f"<small>{marker(view.review_id)}</small>"]
    return "\n".join(lines)


def topic_title(product_name: str) -> str:
    """Discourse wants at least 15 characters and at most 255."""
    return f"Verified reviews: {product_name}"[:250]


def topic_intro(product_name: str, permalink: str | None) -> str:
    text = (
        f"Reviews of **{escape_discourse(product_name)}** from the shop, posted by CardBridge. Each review shows its "
        "rating and whether the reviewer really bought the product."
    )
    return text + (f"\n\n{permalink}" if permalink else "")


def topic_external_id(prefix: str, product_id: str) -> str:
    """Discourse external ids are ``[A-Za-z0-9_-]+``, at most 50 characters."""
    return re.sub(r"[^\w-]", "-", f"{prefix}-product-{product_id}")[:50]


def content_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def review_op(
    visible: bool, desired_hash: str | None, post_state: str | None, post_hash: str | None
) -> ReviewOp | None:
    """The action that brings the forum in step with the shop for one review (None: in step)."""
    if post_state == "forum-deleted":  # an admin kept a moderator's deletion: post again only if the review changes
        return "create" if visible and desired_hash != post_hash else None
    live = post_state in ("posted", "forum")
    if visible and not live:
        return "create"
    if visible and live and post_hash != desired_hash:
        return "edit"
    if not visible and live:
        return "delete"
    return None

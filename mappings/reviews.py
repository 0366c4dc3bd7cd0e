"""Pure translation of shop reviews into forum posts: moderation, escaping, rendering, and which action is due.

Review text is untrusted member text. It is escaped for Discourse so that HTML, markdown, BBCode, @mentions,
#hashtags and links arrive as inert text: nothing executes, nothing renders as markup, nobody is notified.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
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


#: The marker line as :func:`render_post` writes it, alone on the post's last line. Member text cannot forge it: review
#: text is quoted ("> ") and its "<" escaped, so no line of it starts with "<small>".
_MARKER_LINE = re.compile(r"^<small>(cardbridge review .+)</small>[ \t]*$", re.MULTILINE)


def marker_of(raw: str) -> str | None:
    """The marker (:func:`marker`) a post's raw text carries on a line of its own, or None."""
    found = _MARKER_LINE.findall(raw)
    return str(found[-1]) if found else None


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


#: ``SiteSetting.max_topic_title_length`` and ``title_max_word_length`` defaults (discourse/discourse
#: config/site_settings.yml); a forum may raise them, rarely lowers them.
TITLE_MAX_LENGTH = 255
TITLE_MAX_WORD_LENGTH = 30
#: ``Topic::EXTERNAL_ID_MAX_LENGTH`` (app/models/topic.rb), and the state store's ``topics.external_id`` column.
EXTERNAL_ID_MAX_LENGTH = 50
#: Product ids written as they are in an external id: lowercase ASCII letters, digits and "-" only. The format
#: Discourse accepts is Ruby's ``/\A[\w-]+\z/`` (ASCII only) compared case-insensitively, so an uppercase letter
#: could meet another product's id, and an underscore is kept for the hashed form and the generation suffix.
_READABLE_PRODUCT_ID = re.compile(r"[a-z0-9-]+")
_NOT_EXTERNAL_ID = re.compile(r"[^A-Za-z0-9_-]")
#: Symbols (emoji among them), format and private-use characters: Discourse allows one emoji in a title
#: (``max_emojis_in_title``) and some of these are invisible; a title needs none of them.
_DROPPED_CATEGORIES = frozenset({"So", "Cc", "Cf", "Co", "Cn", "Cs"})


def _break_long_words(text: str, limit: int = TITLE_MAX_WORD_LENGTH) -> str:
    """A space after every ``limit`` letters or digits in a row: ``TextSentinel#seems_unpretentious?`` refuses a run
    of more than ``title_max_word_length`` ``\\p{Alnum}`` characters (CJK letters too) on every forum whose locale
    is not ja, ko, zh_CN or zh_TW, and CardBridge cannot know the forum's locale."""
    out: list[str] = []
    run = 0
    for char in text:
        if char.isalnum():
            if run == limit:
                out.append(" ")
                run = 0
            run += 1
        else:
            run = 0
        out.append(char)
    return "".join(out)


def _clean_title_text(text: str) -> str:
    kept = "".join(" " if unicodedata.category(c) in _DROPPED_CATEGORIES or c.isspace() else c for c in text)
    return " ".join(kept.split())


def topic_title(product_name: str) -> str:
    """The title of a product's review topic, made to pass ``Topic``'s title validations whatever the product is
    called (app/models/topic.rb ``validates :title``; lib/text_sentinel.rb): the English prefix gives it enough
    distinct bytes and a lowercase letter, long words are broken, emoji and invisible characters dropped, and it is
    cut to the maximum length. Uniqueness is met by :func:`unique_topic_title` when the forum says it is taken."""
    name = _break_long_words(_clean_title_text(product_name)) or "product"
    return f"Verified reviews: {name}"[:TITLE_MAX_LENGTH].rstrip()


def unique_topic_title(title: str, product_id: str) -> str:
    """``title`` made unique with the product's id (two products of the same name, or a topic a person wrote):
    ``allow_duplicate_topic_titles`` is false by default and compares titles case-insensitively."""
    shown = _clean_title_text(product_id)
    if not shown or len(shown) > TITLE_MAX_WORD_LENGTH:
        shown = hashlib.sha256(product_id.encode("utf-8")).hexdigest()[:12]
    tag = f" (#{_break_long_words(shown)})"
    return title[: TITLE_MAX_LENGTH - len(tag)].rstrip() + tag


def topic_intro(product_name: str, permalink: str | None) -> str:
    text = (
        f"Reviews of **{escape_discourse(product_name)}** from the shop, posted by CardBridge. Each review shows its "
        "rating and whether the reviewer really bought the product."
    )
    return text + (f"\n\n{permalink}" if permalink else "")


def topic_external_id(prefix: str, product_id: str, generation: int = 1) -> str:
    """The external id of a product's review topic: always valid for Discourse (``[A-Za-z0-9_-]``, at most 50
    characters), the same for the same product on every run, and different for different products even compared
    case-insensitively.

    ``<prefix>-product-<id>`` while the id is lowercase ASCII letters, digits and "-" and the whole fits (the form
    earlier versions wrote, so existing topics are found again); otherwise ``<prefix>_p_<sha256 of the id, 20 hex>``.
    ``generation`` counts topics opened for the product after a moderator deleted one (whose id Discourse keeps taken
    for good): ``_g<n>`` is appended from the second on."""
    base = _NOT_EXTERNAL_ID.sub("-", prefix)[:20] or "shop"
    suffix = f"_g{generation}" if generation > 1 else ""
    readable = f"{base}-product-{product_id}{suffix}"
    if _READABLE_PRODUCT_ID.fullmatch(product_id) and len(readable) <= EXTERNAL_ID_MAX_LENGTH:
        return readable
    digest = hashlib.sha256(product_id.encode("utf-8")).hexdigest()[:20]
    return f"{base}_p_{digest}{suffix}"[:EXTERNAL_ID_MAX_LENGTH]


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

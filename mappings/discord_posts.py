"""Pure translation of shop reviews into Discord forum messages: markdown escaping, rendering within 2000 characters.

Review text is untrusted member text. For Discord it is escaped so that markdown (bold, spoilers, headings, masked
links, block quotes, lists, subtext) arrives as typed, and mentions cannot resolve: ``@everyone`` and ``@here`` get a
zero-width space after the ``@`` (Discord keeps it, unlike Discourse) and ``<@id>``-style tokens lose their ``<``.
The messages are sent with ``allowed_mentions: {"parse": []}`` as well, so even a mention that slipped through would
not ping anyone, and with embeds suppressed, so a link in a review does not unfurl.
"""

from __future__ import annotations

import hashlib
import re

from mappings.reviews import ReviewView, marker

#: Discord's limit for a message's content.
MAX_CONTENT = 2000
#: Discord's limit for a thread's name.
MAX_THREAD_NAME = 100

_MARKDOWN = re.compile(r"([\\*_~`|>#\-\[\]()<:])")
_MASS_MENTION = re.compile(r"@(everyone|here)", re.IGNORECASE)


def escape_discord(text: str) -> str:
    """Escape one line of member text for Discord markdown, with mentions made inert."""
    text = _MARKDOWN.sub(r"\\\1", text)
    # After the backslashes: "<@123>" is now "\<@123>", which Discord shows literally; mass mentions need more.
    return _MASS_MENTION.sub("@\u200b\\1", text)


def _render(view: ReviewView, text: str) -> str:
    stars = "★" * view.rating + "☆" * (5 - view.rating)
    lines = [f"**{stars}** {view.rating}/5 · {escape_discord(view.product_name)}", ""]
    body = [line.rstrip() for line in text.splitlines()] or [""]
    lines += [f"> {escape_discord(line)}" if line else "> \u200b" for line in body]
    lines.append("")
    # A linked member is shown by mention; allowed_mentions {"parse": []} keeps it from pinging them.
    who = f"<@{view.username}>" if view.username and view.username.isdigit() else "a shop customer"
    if view.verified:
        lines.append(f"✅ Verified purchase: {who} paid for this product in the shop.")
    else:
        lines.append(f"Reviewed by {who} (no paid order for this product was found).")
    lines.append(f"-# {marker(view.review_id)}")
    return "\n".join(lines)


def render_review(view: ReviewView) -> str:
    """The review as one Discord message, shortened (with "…") to fit 2000 characters after escaping."""
    text = view.text
    content = _render(view, text)
    while len(content) > MAX_CONTENT and text:
        # Escaping can double a character, so cut the raw text by at least the excess and measure again.
        text = text[: max(0, len(text) - (len(content) - MAX_CONTENT) - 1)].rstrip()
        content = _render(view, text + "…")
    return content


def thread_name(product_name: str, view: ReviewView | None = None) -> str:
    """A thread per product: "Reviews: <product>"; per review: "★★★★☆ <product> · #<review id>" (at most 100)."""
    if view is None:
        return f"Reviews: {product_name}"[:MAX_THREAD_NAME]
    suffix = f" · #{view.review_id}"
    stars = "★" * view.rating + "☆" * (5 - view.rating)
    return f"{stars} {product_name}"[: MAX_THREAD_NAME - len(suffix)] + suffix


def product_marker(product_id: str) -> str:
    """The end of a product thread's name, " · #p<product id>": found again by it after a crash (threads have no
    external id). A long or unprintable id is replaced by a short hash of it, so the marker always fits the name."""
    if len(product_id) > 40 or not product_id.isprintable():
        product_id = "h" + hashlib.sha256(product_id.encode()).hexdigest()[:16]
    return f" · #p{product_id}"


def product_thread_name(title: str, product_id: str) -> str:
    """A product thread's name as created: its title, cut to fit 100 characters, then the product's marker."""
    marker = product_marker(product_id)
    return title[: MAX_THREAD_NAME - len(marker)] + marker


def product_intro(product_name: str, permalink: str | None) -> str:
    text = (
        f"Reviews of **{escape_discord(product_name)}** from the shop, posted by CardBridge. Each review shows its "
        "rating and whether the reviewer really bought the product."
    )
    return text + (f"\n<{permalink}>" if permalink else "")

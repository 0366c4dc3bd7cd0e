"""Pure translation of shop reviews into Discord forum messages: markdown escaping, rendering within 2000 characters.

Review text is untrusted member text. For Discord it is escaped so that markdown (bold, spoilers, headings, masked
links, block quotes, lists, subtext) arrives as typed, and mentions cannot resolve: ``@everyone`` and ``@here`` get a
zero-width space after the ``@`` (Discord keeps it, unlike Discourse) and ``<@id>``-style tokens lose their ``<``.
The messages are sent with ``allowed_mentions: {"parse": []}`` as well, so even a mention that slipped through would
not ping anyone, and with embeds suppressed, so a link in a review does not unfurl.

Links are made inert as on Discourse, and more: ``SUPPRESS_EMBEDS`` only drops the message's ``embeds`` ("do not
include any embeds when serializing this message", discord-api-docs ``developers/resources/message.mdx`` §Message
Flags); the link stays clickable and a client still draws an invite card for ``discord.gg/…`` found in the text. So a
URL of any scheme, an invite, a bare domain (``example.com/path``, ``例子.cn``, an email address) or an IPv4 address
goes into a code span (nothing inside one is linked) with a zero-width space after each dot and after the scheme's
colon, so that no pattern over the raw text (an invite or link detector) finds it either. Plain sentences, version
numbers and decimals are left as typed.
"""

from __future__ import annotations

import hashlib
import re

from mappings.reviews import ReviewView, marker

#: Discord's limit for a message's content.
MAX_CONTENT = 2000
#: Discord's limit for a thread's name.
MAX_THREAD_NAME = 100

#: A product name longer than this is cut in a review's first line (the shop's names are not bounded).
MAX_PRODUCT_NAME = 200

_MARKDOWN = re.compile(r"([\\*_~`|>#\-\[\]()<:])")
_MASS_MENTION = re.compile(r"@(everyone|here)", re.IGNORECASE)
#: Full stops a browser or a link detector may read as the dot of a host name.
_DOT = "[.\u3002\uff0e\uff61]"
#: The rest of a link after its start: anything but whitespace or a backtick, not ending in closing punctuation.
_REST = r"(?:[^\s`]*[^\s`.,;:!?'\")\]}>*_~|\u3002\uff0e\uff61])?"
#: What could become a link or an invite: a URL of any scheme; a host name (labels, dots and a top-level domain of
#: letters or punycode, optionally after "user@") or an IPv4 address, each with an optional port, path or query. It
#: starts only where a word starts, so the scan stays linear on long runs of word characters.
_LINK = re.compile(
    rf"""(?<![\w.+\-@])(?:
        [a-z][a-z0-9+.\-]*:/+{_REST}
      | (?:[\w.+\-]+@)?(?:[^\W_](?:[\w\-]*[^\W_])?{_DOT})+(?:[^\W\d_]{{2,}}|xn--[a-z0-9\-]+)(?![\w\-])
        (?:[/:?\#]{_REST})?
      | \d{{1,3}}(?:{_DOT}\d{{1,3}}){{3}}(?![\w\-])(?:[/:?\#]{_REST})?
    )""",
    re.IGNORECASE | re.VERBOSE,
)
#: Where a zero-width space breaks a link for any detector: after each dot, and after the colon of "scheme:/".
_BREAK = re.compile(rf"{_DOT}|:(?=/)")


def _escape_markdown(text: str) -> str:
    text = _MARKDOWN.sub(r"\\\1", text)
    # After the backslashes: "<@123>" is now "\<@123>", which Discord shows literally; mass mentions need more.
    return _MASS_MENTION.sub("@\u200b\\1", text)


def _inert_link(link: str) -> str:
    """A link as a code span (never linked, markdown inside shown as typed) with zero-width breaks."""
    link = _MASS_MENTION.sub("@\u200b\\1", link)
    return "`" + _BREAK.sub("\\g<0>\u200b", link) + "`"


def escape_discord(text: str) -> str:
    """Escape one line of member text for Discord markdown, with mentions and links made inert."""
    parts: list[str] = []
    position = 0
    for match in _LINK.finditer(text):
        parts.append(_escape_markdown(text[position : match.start()]))
        parts.append(_inert_link(match.group(0)))
        position = match.end()
    parts.append(_escape_markdown(text[position:]))
    return "".join(parts)


def _render(view: ReviewView, text: str) -> str:
    stars = "★" * view.rating + "☆" * (5 - view.rating)
    name = view.product_name
    name = name if len(name) <= MAX_PRODUCT_NAME else name[: MAX_PRODUCT_NAME - 1] + "…"
    lines = [f"**{stars}** {view.rating}/5 · {escape_discord(name)}", ""]
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
    content = _render(view, view.text)
    if len(content) <= MAX_CONTENT:
        return content

    def cut(keep: int) -> str:
        return _render(view, view.text[:keep].rstrip() + "…")

    # Escaping grows text unevenly (a backslash per markdown character, backticks and zero-width spaces per link, and
    # a cut can end a link early), so find the longest raw prefix that fits by bisection: about 12 renders, bounded.
    fits, too_long = 0, len(view.text)
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if len(cut(middle)) <= MAX_CONTENT:
            fits = middle
        else:
            too_long = middle
    return cut(fits)


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

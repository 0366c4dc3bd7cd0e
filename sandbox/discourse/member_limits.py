"""The per-user rate limits members meet when they post, message and like (staff are exempt: ``RateLimiter#
rate_unlimited?`` for a staff user). Each is Discourse's ``RateLimiter``: at most ``max`` actions in ``secs``, a
refused action not recorded, 429 with ``error_type: rate_limit``, ``extras.wait_seconds`` / ``time_left`` and
``Retry-After`` (the ``rescue_from RateLimiter::LimitExceeded`` answer, as the admin-API limiter's; see
:mod:`sandbox.discourse.rate_limit`).

Sources (discourse/discourse):

- ``RateLimiter::OnCreateRecord#default_rate_limiter`` (app/models/concerns, ``rate_limit`` in ``after_create``):
  ``RateLimiter.new(user, "create_#{model}", 1, max_setting)``: one topic per ``rate_limit_create_topic`` seconds
  and one post per ``rate_limit_create_post`` seconds, the ``rate_limit_new_user_*`` values for a ``new_user?``.
  A new topic records its topic limiter before its first post's (a post refused this way still used the topic's).
- app/models/topic.rb ``limit_topics_per_day`` (regular topics) and ``limit_private_messages_per_day`` (PMs):
  ``max_topics_per_day`` / ``max_personal_messages_per_day`` a day.
- lib/post_action_creator.rb / app/models/post_action.rb: likes at most ``max_likes_per_day`` a day, times the
  ``tl2/tl3/tl4_additional_likes_per_day_multiplier`` for those trust levels.
- config/site_settings.yml at 00011e9c (``rate_limits``): 15, 5, 120, 30 seconds; 20 topics, 20 PMs, 50 likes a day;
  multipliers 1.5, 2, 3. Setting a limit to 0 switches it off, as on a real forum.
- ``User#new_user?``: ``(created_at >= 24.hours.ago || trust_level == 0) && trust_level < 2 && !staff?``.

The message is ``rate_limiter.too_many_requests``; the real forum words some limits by type
(``rate_limiter.by_type.*``), which nothing in CardBridge reads.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import UTC, datetime, timedelta

from sandbox.discourse.errors import MSG_TOO_MANY, Answer, error_body
from sandbox.discourse.rails import time_left
from sandbox.discourse.state import ForumState, Row, is_staff

DAY = 24 * 60 * 60
LIKE_MULTIPLIERS = {2: 1.5, 3: 2.0, 4: 3.0}


def new_user(user: Row) -> bool:
    try:
        created = datetime.fromisoformat(str(user["created_at"]))
    except ValueError:
        created = datetime.now(UTC)
    recent = created >= datetime.now(UTC) - timedelta(hours=24)
    return (recent or user["trust_level"] == 0) and user["trust_level"] < 2 and not is_staff(user)


def perform(forum: ForumState, user: Row, key: str, maximum: float, seconds: float) -> None:
    """``RateLimiter#performed!``: record the action, or raise the 429 when ``maximum`` were done in ``seconds``."""
    if is_staff(user) or maximum <= 0 or seconds <= 0:
        return
    now = forum.clock()
    ring = forum.member_limits.setdefault((user["id"], key), deque())
    while ring and now - ring[0] >= seconds:
        ring.popleft()
    if len(ring) >= maximum:
        wait = max(1, math.ceil(seconds - (now - ring[0])))
        left = time_left(wait)
        raise Answer(
            429,
            error_body([MSG_TOO_MANY.format(left)], "rate_limit", {"wait_seconds": wait, "time_left": left}),
            {"Retry-After": str(wait)},
        )
    ring.append(now)


def on_new_topic(forum: ForumState, user: Row, private_message: bool) -> None:
    settings = forum.settings
    fresh = new_user(user)
    perform(forum, user, "create_topic", 1, settings.rate_limit_new_user_create_topic if fresh
            else settings.rate_limit_create_topic)  # fmt: skip
    if private_message:
        perform(forum, user, "pms-per-day", settings.max_personal_messages_per_day, DAY)
    else:
        perform(forum, user, "topics-per-day", settings.max_topics_per_day, DAY)


def on_new_post(forum: ForumState, user: Row) -> None:
    settings = forum.settings
    seconds = settings.rate_limit_new_user_create_post if new_user(user) else settings.rate_limit_create_post
    perform(forum, user, "create_post", 1, seconds)


def on_like(forum: ForumState, user: Row) -> None:
    maximum = forum.settings.max_likes_per_day * LIKE_MULTIPLIERS.get(user["trust_level"], 1.0)
    perform(forum, user, "create_like", math.floor(maximum), DAY)

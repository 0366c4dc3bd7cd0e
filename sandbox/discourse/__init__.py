"""A faithful Discourse sandbox: the admin-API endpoints CardBridge uses, answering what the real forum answers.

Built against ``shared/specs/discourse`` (ENDPOINTS.md, ERRORS_RATE_LIMITS_WEBHOOKS.md, openapi.json) and the Discourse
sources they cite. Behaviour reproduced from source, including the awkward parts:

- auth: ``Api-Key`` + ``Api-Username`` (or ``Api-User-Id``); a bad key or user answers 403 ``invalid_access`` with
  ``invalid_api_credentials``; ``/admin/*`` routes answer 404 to a non-admin acting user (Rails ``AdminConstraint``).
- the site-wide admin-API limiter (sliding window, rejected requests not counted) answering 429 with ``Retry-After``,
  ``Discourse-Rate-Limit-Error-Code`` and ``extras.wait_seconds``/``time_left``; or the per-IP plain-text form.
- ``AdminUserIndexQuery``: the ``email`` filter is exact on the primary address only; the list flag does not filter
  ``active`` (it only orders by last seen), 100 users a page, ``order``/``asc`` as in core, ``system`` included.
- badges: ``BadgeGranter`` (a single-grant badge answers the existing grant; a disabled or unknown badge is 404 since
  the controller looks up ``enabled: true`` badges), revoking clears a title equal to the badge name.
- groups: ``add_members`` (422 ``member_already_exist`` only when *every* user already belongs, 1000-user cap, unknown
  ``emails`` become invitations), ``remove_member`` with ``skipped_usernames``, ``GroupUser`` side effects on title,
  primary and flair group, ``Group#update_title``/``update_primary_group`` on group edits.
- posts/topics: ``NewPostResultSerializer`` errors (422 ``{"action":"create_post","errors":[..],"success":false}``),
  topic validations (title length and uniqueness, category, ``external_id`` format/length/uniqueness), the 120 s
  memoization of identical API post creations, 301 for ``/t/external_id/..``, ``PostRevisor`` versions with the
  5-minute editing grace period, 409 on ``original_text`` mismatch, soft deletes, 20 posts per ``post_stream`` chunk.
- the gamification plugin's ``score_events`` admin endpoints.
- personal messages (``private_messages``, ``pm_access``): PM lengths by locale, the duplicate-body check for members,
  who may send and see a PM, the inbox lists; members' rate limits (``member_limits``); likes and their users
  (``post_actions``, ``likes``); discourse-solved's accept (``solved``); category topic lists (``topic_lists``); the
  ``post_created`` webhook body (``web_hooks``).

State lives in memory behind one lock (the server runs in another thread than the tests). Every request is logged.

Layout, one module per Discourse controller over a shared :class:`~sandbox.discourse.state.ForumState`:
``users``, ``badges``, ``user_badges`` (with ``BadgeGranter``), ``groups`` (with ``membership``, the ``GroupUser``
side effects), ``categories``, ``posts`` (with ``post_revisor``), ``topics``, ``gamification``; each controller lists
its routes and ``app`` strings them into one table behind auth (``app``), the limiter (``rate_limit``) and the
Rails-style error answers (``errors``, ``rails``); ``serializers`` renders the JSON; ``sandbox`` is the
``DiscourseSandbox`` handle with the in-process helpers.
"""

from sandbox.discourse.app import RequestLog
from sandbox.discourse.rails import rails_params
from sandbox.discourse.sandbox import DiscourseSandbox

__all__ = ["DiscourseSandbox", "RequestLog", "rails_params"]

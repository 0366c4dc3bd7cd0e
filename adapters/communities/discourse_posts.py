"""Shop reviews as Discourse posts, and points as gamification score events or a user field.

One topic per product, found again by its ``external_id`` (created in the configured category on first use); one
post per review, written by the API user. A post a moderator edited or deleted is not overwritten: the edit returns a
conflict (the forum's raw text no longer hashes to what CardBridge last wrote); so does a topic a moderator deleted,
for the whole product (``TOPIC_CONFLICT``). Posts have no external id: each ends with a marker line, and before a
review is posted into a topic this process did not open, the topic is read whole once (:meth:`ForumContent._posted`)
so that a review another state store posted, or this one before it was lost or crashed, is adopted instead of
posted twice. Score events are found by :mod:`adapters.communities.discourse_points`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from adapters.base import Action, IdCache, Outcome, RemotePost, settled_payload, wrong_payload
from adapters.communities.discourse_client import POST_IDS_PER_READ, DiscourseClient
from adapters.communities.discourse_grants import renamed
from adapters.communities.discourse_points import ForumPoints
from connector.core.http import RemoteError, describe_body
from connector.core.logs import log
from connector.core.payloads import DiscoursePost, PointsTotal, ScoreEvent
from mappings.reviews import marker_of, unique_topic_title

#: In a conflict's ``data``: the product whose whole topic the conflict is about (deleted, or refused), rather than one
#: review's post.
TOPIC_CONFLICT = "topic_conflict"


#: How long one read of a topic's markers serves later reviews of the same product in this process: a pass posting
#: many reviews reads each topic once, and a long-running daemon reads it again on a later pass.
MARKERS_TTL_SECONDS = 300.0


@dataclass(frozen=True)
class FoundPost:
    """A post of the API user's that carries a review's marker."""

    post_id: int
    raw: str
    version: int
    deleted: bool


class ForumContent:
    """Writes review, points and points-total payloads; remote errors are left to the adapter to judge."""

    def __init__(self, client: DiscourseClient, cache: IdCache, api_username: str) -> None:
        self.client = client
        self.cache = cache
        self.api_username = api_username
        self.points = ForumPoints(client)
        #: topic id -> (read at, marker -> the API user's post that carries it)
        self._markers: dict[int, tuple[float, dict[str, FoundPost]]] = {}

    def apply(self, action: Action) -> Outcome:
        settled = settled_payload(action)
        if settled is not None:
            return settled
        p = action.payload
        if action.kind == "review":
            if not isinstance(p, DiscoursePost):
                return wrong_payload(action, DiscoursePost)
            if action.op == "create":
                return self._create_review(action, p)
            if action.op == "edit":
                return self._edit_review(action, p)
            return self._delete_review(action, p)
        if action.kind == "points":
            if not isinstance(p, ScoreEvent):
                return wrong_payload(action, ScoreEvent)
            return self.points.award(action, p)
        if not isinstance(p, PointsTotal):
            return wrong_payload(action, PointsTotal)
        if p.field_id is None:
            return Outcome(action.id, False, permanent=True, error="no user_field_id for this community's points")
        return self._set_total(action, p.field_id, str(p.total))

    def _set_total(self, action: Action, field_id: int, total: str) -> Outcome:
        """``PUT /u/{username}.json`` finds the account by name only (discourse/discourse app/controllers/
        users_controller.rb at 002c6763, ``update``: ``fetch_user_from_params``): a member renamed on the forum after matching answers 404 under the old name. The
        account is found again by its id, as grants do, and the new name reported for the connector to store."""
        try:
            self.client.set_user_field(action.username, field_id, total)
            return Outcome(action.id, True, ref=total)
        except RemoteError as error:
            if error.status != 404 or not action.user_id:
                raise
            missing = error
        user = self.client.user_by_id(action.user_id)
        if user is None:
            return Outcome(action.id, False, error=f"no forum account {action.username} any more ({missing})")
        self.client.set_user_field(user.username, field_id, total)
        return Outcome(action.id, True, ref=total, data=renamed(action, user.username))

    # ---- reviews -------------------------------------------------------------------------------------------------

    def category_id(self, name: str, color: str, text_color: str) -> int:
        cached = self.cache.get("category", name)
        if cached:
            return int(cached)
        category_id = self.client.category_id(name) or self.client.create_category(name, color, text_color)
        self.cache.set("category", name, str(category_id))
        return category_id

    def _topic_id(self, p: DiscoursePost) -> tuple[int, bool]:
        """The product's topic: the stored id, else the live topic with the external id, else a new topic; and
        whether it was opened just now (a new topic holds no review yet).

        A 422 on creation is retried once with the title made unique by the product id (another topic may hold the
        same title: ``allow_duplicate_topic_titles`` is false); a second 422 is :class:`TopicRefused`. Its likely
        cause is an external id still held by a topic a moderator deleted: Discourse's uniqueness check sees trashed
        topics while the external-id lookup does not (app/models/topic.rb ``validates :external_id``)."""
        if p.topic_id:
            return int(p.topic_id), False
        found = self.client.topic_by_external_id(p.external_id)
        if found is not None:
            return int(found["id"]), False
        category = self.category_id(p.category, p.category_color, p.category_text_color)
        refused: RemoteError | None = None
        for title in (p.topic_title, unique_topic_title(p.topic_title, p.product_id)):
            try:
                created = self.client.create_topic(title, p.topic_intro, category, p.external_id)
            except RemoteError as error:
                if error.status != 422:
                    raise
                refused = error
                continue
            topic_id = int(created["topic_id"])
            self._markers[topic_id] = (time.monotonic(), {})
            return topic_id, True
        raise TopicRefused(p.product_id, p.external_id, refused)

    def _create_review(self, action: Action, p: DiscoursePost) -> Outcome:
        try:
            topic_id, opened = self._topic_id(p)
        except TopicRefused as refused:
            return Outcome(action.id, True, conflict=str(refused), data={TOPIC_CONFLICT: p.product_id})
        if not opened:
            # Another state store (or this one, before it was lost) may have posted the review already: Discourse
            # takes no idempotency key, so the topic is read once for all its markers before anything is written.
            try:
                found = self._posted(topic_id).get(p.marker)
            except RemoteError as error:
                if error.status not in (404, 410):
                    raise
                found = None  # the topic is gone for good: posting into it below finds that out (a conflict)
            if found is not None:
                return self._adopt(action, p, topic_id, found)
        try:
            post = self.client.create_post(topic_id, p.raw)
        except RemoteError as error:
            # A deleted topic takes no reply (PostCreator: ``topic_not_found``, 422); decided by reading it back.
            if error.status in (404, 422) and self.client.topic_gone(topic_id):
                reason = f"the review topic of product {p.product_id} (topic {topic_id}) was deleted on the forum"
                return Outcome(action.id, True, conflict=reason, data={TOPIC_CONFLICT: p.product_id})
            raise
        version = int(post.get("version") or 1)
        cached = self._markers.get(topic_id)
        if cached is not None:
            cached[1][p.marker] = FoundPost(int(post["id"]), p.raw, version, False)
        return Outcome(
            action.id,
            True,
            ref=str(post["id"]),
            data={
                "topic_id": str(topic_id),
                "post_id": str(post["id"]),
                "version": version,
                "content_hash": p.hash,
                "state": "posted",
            },
        )

    def _posted(self, topic_id: int, fresh: bool = False) -> dict[str, FoundPost]:
        """The API user's posts in the topic by the marker they carry, read completely: every post id from the
        topic's stream, then their raw text :data:`POST_IDS_PER_READ` at a time; kept :data:`MARKERS_TTL_SECONDS`.

        Only the API user's posts count (a member may paste a marker line). Of two posts with one marker (left by an
        earlier version), the first live one is the review's."""
        cached = self._markers.get(topic_id)
        now = time.monotonic()
        if cached is not None and not fresh and now - cached[0] < MARKERS_TTL_SECONDS:
            return cached[1]
        found: dict[str, FoundPost] = {}
        post_ids = self.client.topic_post_ids(topic_id)
        if post_ids is None:
            log.warning("topic too long to read its markers; reviews are posted unchecked", topic=topic_id)
            post_ids = []
        me = self.api_username.lower()
        for start in range(0, len(post_ids), POST_IDS_PER_READ):
            for post in self.client.topic_posts(topic_id, post_ids[start : start + POST_IDS_PER_READ]):
                raw = str(post.get("raw") or "")
                mark = marker_of(raw)
                if mark is None or str(post.get("username") or "").lower() != me:
                    continue
                candidate = FoundPost(int(post["id"]), raw, int(post.get("version") or 1), bool(post.get("deleted_at")))
                known = found.get(mark)
                if known is None or (known.deleted and not candidate.deleted):
                    found[mark] = candidate
        self._markers[topic_id] = (now, found)
        return found

    def _adopt(self, action: Action, p: DiscoursePost, topic_id: int, found: FoundPost) -> Outcome:
        """The review's post found on the forum, recorded as this store's own instead of posted again.

        A deleted one stays deleted until the review changes in the shop (as ``resolve --keep forum``). A live one
        never edited (version 1) is CardBridge's own text, maybe older: its hash is the base, so the next pass edits
        it to the shop's text. One edited since may carry a moderator's change: it is taken as in step with the shop
        now, so the next shop edit of the review meets it as a conflict instead of overwriting it."""
        data: dict[str, str | int] = {"topic_id": str(topic_id), "post_id": str(found.post_id)}
        if found.deleted:
            data.update(content_hash=p.hash or "", state="forum-deleted")
        else:
            base = content_hash(found.raw) if found.version <= 1 else p.hash or ""
            data.update(version=found.version, content_hash=base, state="posted")
        log.info("review found on the forum", review=action.target, topic=topic_id, post=found.post_id)
        return Outcome(action.id, True, ref=str(found.post_id), data=data)

    def _edit_review(self, action: Action, p: DiscoursePost) -> Outcome:
        changed_by = _changed_by_someone(self.read_post(str(p.post_id)), p)
        if changed_by:
            return Outcome(action.id, True, conflict=changed_by)
        # A post of a deleted topic still reads as live, and an admin may still edit it, invisibly: ask the topic.
        if p.topic_id and self.client.topic_gone(int(p.topic_id)):
            reason = f"the review topic of product {p.product_id} (topic {p.topic_id}) was deleted on the forum"
            return Outcome(action.id, True, conflict=reason, data={TOPIC_CONFLICT: p.product_id})
        post = self.client.edit_post(int(str(p.post_id)), p.raw, "Updated in the shop")
        return Outcome(
            action.id,
            True,
            ref=str(post["id"]),
            data={"version": int(post.get("version") or 0), "content_hash": p.hash, "state": "posted"},
        )

    def _delete_review(self, action: Action, p: DiscoursePost) -> Outcome:
        try:
            self.client.delete_post(int(str(p.post_id)))
        except RemoteError as error:
            if error.status not in (403, 404):  # already deleted (a moderator did it): the goal holds
                raise
        return Outcome(action.id, True, data={"state": "deleted"})

    def read_post(self, post_id: str) -> RemotePost | None:
        """The post as the forum has it (a deleted post can still be read by an admin: ``deleted``); None if gone."""
        if not post_id.isdigit():
            return None  # not a Discourse post id: there is no such post
        post = self.client.post(int(post_id))
        if post is None:
            return None
        version = post.get("version")
        return RemotePost(
            post_id=post_id,
            raw=str(post.get("raw") or ""),
            version=int(version) if version is not None else None,
            deleted=bool(post.get("deleted_at")),
            last_editor=str(post.get("last_editor_username") or "") or None,
        )

    # ---- after a crash -------------------------------------------------------------------------------------------

    def verify(self, action: Action) -> Outcome | None:
        p = action.payload
        if isinstance(p, DiscoursePost) and action.kind == "review":
            return self._verify_create(action, p) if action.op == "create" else self._verify_change(action, p)
        if isinstance(p, ScoreEvent) and action.kind == "points":
            return self.points.verify(action, p)
        return None  # points_total: setting a field twice is harmless; other payloads write nothing

    def _verify_create(self, action: Action, p: DiscoursePost) -> Outcome | None:
        if p.topic_id:
            topic_id = int(p.topic_id)
        else:
            topic = self.client.topic_by_external_id(p.external_id)
            if topic is None:
                return None
            topic_id = int(topic["id"])
        found = self._posted(topic_id, fresh=True).get(p.marker)
        return self._adopt(action, p, topic_id, found) if found is not None else None

    def _verify_change(self, action: Action, p: DiscoursePost) -> Outcome | None:
        post = self.read_post(str(p.post_id))
        if action.op == "delete" and (post is None or post.deleted):
            return Outcome(action.id, True, data={"state": "deleted"})
        if action.op == "edit" and post and content_hash(post.raw) == p.hash:
            return Outcome(
                action.id, True, data={"version": post.version or 0, "content_hash": p.hash, "state": "posted"}
            )
        return None


class TopicRefused(Exception):
    """The forum refused (422) to open a product's review topic, with both titles tried."""

    def __init__(self, product_id: str, external_id: str, error: RemoteError | None) -> None:
        said = describe_body(error.body)[:300] if error is not None else "422"
        super().__init__(
            f"the forum refused to open the review topic of product {product_id} (external id {external_id}): "
            f"{said}; a deleted topic may hold that external id"
        )


def content_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _changed_by_someone(post: RemotePost | None, payload: DiscoursePost) -> str | None:
    """Why the forum's copy is no longer what the connector wrote (a moderator edited or deleted it), or None."""
    if post is None or post.deleted:
        return "the post was deleted on the forum"
    if content_hash(post.raw) != payload.post_hash:
        return f"the post was edited on the forum by {post.last_editor or 'someone'} (version {post.version})"
    return None

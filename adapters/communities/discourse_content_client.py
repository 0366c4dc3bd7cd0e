"""The Discourse calls for review content: categories, topics (found by external id, on the forum's own origin only)
and posts. A part of :class:`adapters.communities.discourse_client.DiscourseClient`, kept apart because it is its own
subject; each method is one HTTP call (or one call and the redirect it answers)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import httpx

from connector.core.http import RemoteClient, RemoteError


class ContentCalls:
    """Mixed into the client, which sets ``http`` (the forum's :class:`RemoteClient`) and ``base_url``."""

    http: RemoteClient
    base_url: str

    # ---- categories, topics, posts --------------------------------------------------------------------------------

    def category_id(self, name: str) -> int | None:
        categories = self.http.request("GET", "/categories.json").json().get("category_list", {}).get("categories", [])
        return next((int(c["id"]) for c in categories if str(c.get("name", "")).lower() == name.lower()), None)

    def create_category(self, name: str, color: str, text_color: str) -> int:
        response = self.http.request(
            "POST", "/categories.json", json={"name": name, "color": color, "text_color": text_color}
        )
        return int(response.json()["category"]["id"])

    def topic_by_external_id(self, external_id: str) -> dict[str, Any] | None:
        """The live topic with this external id, or None (none, or trashed: ``Topic.find_by`` skips trashed topics,
        discourse/discourse app/controllers/topics_controller.rb:48-53).

        The lookup answers 301 to ``topic.relative_url``, which carries the subfolder of a subfolder install
        (``/forum/t/slug/12.json``); the Location is resolved against the configured ``base_url`` and followed once,
        and only on the forum's own origin: a redirect elsewhere would carry the Api-Key with it."""
        if not re.fullmatch(r"[A-Za-z0-9_-]+", external_id):
            return None  # the route's constraint (``[\w-]+``, ASCII) would answer 404; no such topic can exist
        try:
            response = self.http.request("GET", f"/t/external_id/{external_id}.json", ok=(200, 301, 302))
        except RemoteError as error:
            if error.status == 404:
                return None
            raise
        if response.status_code in (301, 302):
            asked = f"/t/external_id/{external_id}.json"
            target = self._on_forum(asked, response.status_code, response.headers.get("location", ""))
            response = self.http.request("GET", target)
        return dict(response.json())

    def _on_forum(self, asked: str, status: int, location: str) -> str:
        """A redirect's Location as what to request next: resolved against the URL that answered it, kept on the
        forum's origin (scheme, host, port), ``.json`` kept. A Location elsewhere is a :class:`RemoteError`."""
        base = httpx.URL(self.base_url.rstrip("/") + "/")
        target = base.join(asked.lstrip("/")).join(location)
        if not location or self._origin(target) != self._origin(base):
            shown = f"{target.scheme}://{target.host}" if location else "no Location"
            raise RemoteError("discourse", "GET", asked, status, {"errors": [f"redirect refused: {shown}"]})
        path = target.path if target.path.endswith(".json") else target.path + ".json"
        # Under the configured base path: the part after it (the client puts the base back); else the whole URL.
        prefix = base.path.rstrip("/")
        if path.startswith(prefix + "/"):
            return path[len(prefix) :]
        return str(target.copy_with(path=path, query=None, fragment=None))

    @staticmethod
    def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
        """(scheme, host, port), the scheme's default port made explicit."""
        return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)

    def topic(self, topic_id: int) -> dict[str, Any]:
        return dict(self.http.request("GET", f"/t/{topic_id}.json").json())

    def topic_post_ids(self, topic_id: int) -> list[int] | None:
        """Every post id of the topic, deleted ones included, in order; None when the forum does not list them all.

        ``post_stream.stream`` holds the whole ``filtered_post_ids`` of a topic under ``TopicView::
        MEGA_TOPIC_POSTS_COUNT`` (10,000) posts; past it, ``isMegaTopic`` and no stream (discourse/discourse
        app/serializers/post_stream_serializer_mixin.rb ``post_stream``). ``show_deleted`` keeps a moderator's
        deletions in it for staff (lib/topic_view.rb ``setup_filtered_posts``)."""
        body = self.http.request("GET", f"/t/{topic_id}.json", params={"show_deleted": "true"}).json()
        stream = body.get("post_stream", {}).get("stream") if isinstance(body, dict) else None
        if not isinstance(stream, list):
            return None
        return [int(i) for i in stream if isinstance(i, int) or (isinstance(i, str) and i.isdigit())]

    def topic_posts(self, topic_id: int, post_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The topic's posts with these ids, with ``raw`` (``GET /t/{id}/posts.json?post_ids[]=…&include_raw=1``,
        app/controllers/topics_controller.rb ``def posts``; lib/topic_view.rb ``filter_posts_by_ids`` takes every id
        asked). Callers keep a batch to :data:`POST_IDS_PER_READ` so the query string stays short for any proxy."""
        if not post_ids:
            return []
        body = self.http.request(
            "GET",
            f"/t/{topic_id}/posts.json",
            params={"post_ids[]": [str(i) for i in post_ids], "include_raw": "true"},
        ).json()
        posts = body.get("post_stream", {}).get("posts") if isinstance(body, dict) else None
        return [dict(p) for p in posts if isinstance(p, dict)] if isinstance(posts, list) else []

    def topic_gone(self, topic_id: int) -> bool:
        """Whether the topic was deleted (an admin still reads a trashed topic, with ``deleted_at``) or is no more."""
        try:
            body = self.http.request("GET", f"/t/{topic_id}.json").json()
        except RemoteError as error:
            if error.status in (404, 410):
                return True
            raise  # a 403 says nothing about the topic (the key may have lost its rights): never a conflict
        return not isinstance(body, dict) or bool(body.get("deleted_at"))

    def create_topic(self, title: str, raw: str, category_id: int, external_id: str) -> dict[str, Any]:
        """A new topic with its first post; answers the post (``topic_id`` is the new topic)."""
        response = self.http.request(
            "POST",
            "/posts.json",
            json={"title": title, "raw": raw, "category": category_id, "external_id": external_id},
        )
        return dict(response.json())

    def create_post(self, topic_id: int, raw: str) -> dict[str, Any]:
        return dict(self.http.request("POST", "/posts.json", json={"topic_id": topic_id, "raw": raw}).json())

    def post(self, post_id: int) -> dict[str, Any] | None:
        try:
            return dict(self.http.request("GET", f"/posts/{post_id}.json").json())
        except RemoteError as error:
            if error.status == 404:
                return None
            raise

    def edit_post(self, post_id: int, raw: str, reason: str, bypass_bump: bool = False) -> dict[str, Any]:
        """``bypass_bump``: do not bump the topic. An edit that makes a new version bumps the topic only when the post
        is its last one (discourse/discourse lib/post_revisor.rb @ 00fc072 ``bump_topic``: ``return if bypass_bump?
        || !is_last_post?``); a card alone in its topic is. ``PostsController#update`` reads ``bypass_bump`` at the
        top level of the body (or under ``post``), cast to a boolean, for a user who ``can_update_bumped_at?`` (staff
        or TL4: app/controllers/posts_controller.rb @ 002becf, /work/shared/specs/discourse/openapi.yml:5097); the
        API user is an admin."""
        body: dict[str, Any] = {"post": {"raw": raw, "edit_reason": reason}}
        if bypass_bump:
            body["bypass_bump"] = True
        response = self.http.request("PUT", f"/posts/{post_id}.json", json=body)
        return dict(response.json()["post"])

    def delete_post(self, post_id: int) -> None:
        self.http.request("DELETE", f"/posts/{post_id}.json")

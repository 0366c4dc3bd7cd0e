"""Mass badge award: ``POST /admin/badges/award/{badge_id}`` (``Admin::BadgesController#mass_award``), and the
``MassAwardBadge`` jobs it enqueues, run by a delayed queue as Sidekiq would run them.

Upstream (discourse/discourse):

- ``app/services/badge_granter.rb`` ``BadgeGranter.enqueue_mass_grant_for_users`` (lines 25-74 of the version the
  index holds, id 1043244280): entries are downcased; usernames are matched on ``username_lower``, emails with
  ``User.with_email`` (any of the account's emails); an entry nobody has goes to the ``unmatched`` *set*; with
  ``ensure_users_have_badge_once`` (no ``grant_existing_holders``) every matched user counts once, and users who hold
  the badge **when the request arrives** get no job (lines 59-67); the answer is ``unmatched_entries``,
  ``matched_users_count`` (every matched user, holders included) and ``unmatched_entries_count``.
- ``BadgeGranter.mass_grant`` (lines 76-110): ``INSERT`` ``count`` rows with ``seq = COALESCE(MAX(seq) + 1, 0)``,
  granted by the system user, **without** checking for an existing grant: two awards sent before the first one's jobs
  ran give a user two rows of a single-grant badge. It does not touch ``badges.grant_count`` (a scheduled consistency
  job recounts it later).
- ``app/jobs/regular/mass_award_badge.rb`` (newest): ``User.find_by(id:)`` and ``Badge.find_by(enabled: true, id:)``,
  else nothing; a badge disabled after the request grants nothing.
- ``spec/requests/admin/badges_controller_spec.rb`` ``#mass_award`` (the controller's contract): no file or an unknown
  badge id → 400; a file that is not CSV → 400; a disabled badge → 422; ``grant_existing_holders`` on a badge that
  does not allow multiple grants → 422; more than ``MAX_CSV_LINES`` (50,000) entries → 400; a moderator or a non-staff
  user → 404 (``Admin::AdminController``); one CSV may mix emails and usernames (each entry is an email when it has an
  ``@``: "grants the badge to the users in the CSV as many times as they appear in it"). ``replace_badge_owners``
  (``BadgeGranter.revoke_all``, badge_granter.rb ``revoke_all``) deletes every grant of the badge and clears titles equal
  to its name.
- The answer lists at most 100 unmatched entries with the full count beside it (the admin UI shows "and N more" when
  ``unmatched_entries_count`` exceeds the list: admin-badges-award ``unmatchedEntriesTruncated``).
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.discourse.errors import invalid_params, json_error
from sandbox.discourse.rails import UploadedFile, now_iso
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import ForumState, Row

#: ``Admin::BadgesController::MAX_CSV_LINES``.
MAX_CSV_LINES = 50_000
#: Unmatched entries listed in the answer (the count beside it is the full one).
UNMATCHED_LISTED = 100
#: The system user (``Discourse.system_user``) grants what a mass award grants.
SYSTEM_USER_ID = -1


@dataclass
class JobQueue:
    """Sidekiq, in miniature: each enqueued job runs ``delay`` seconds later on a daemon timer, under the forum's lock.

    ``delay`` ``None`` holds every job until :meth:`run_all` (a test decides when the queue drains)."""

    forum: ForumState
    delay: float | None = 0.2
    _pending: list[tuple[threading.Timer | None, Callable[[], None]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enqueue(self, job: Callable[[], None]) -> None:
        entry: list[Any] = []

        def fire() -> None:
            with self._lock:
                if not entry or entry[0] not in self._pending:
                    return
                self._pending.remove(entry[0])
            with self.forum.lock:
                job()

        timer = None
        if self.delay is not None:
            timer = threading.Timer(max(0.0, self.delay), fire)
            timer.daemon = True
        pending = (timer, job)
        entry.append(pending)
        with self._lock:
            self._pending.append(pending)
        if timer is not None:
            timer.start()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def run_all(self) -> int:
        """Run every job now (the caller must not hold the forum lock); returns how many ran."""
        with self._lock:
            jobs, self._pending = list(self._pending), []
        for timer, _ in jobs:
            if timer is not None:
                timer.cancel()
        with self.forum.lock:
            for _, job in jobs:
                job()
        return len(jobs)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while self.pending() and time.monotonic() < end:
            time.sleep(0.02)
        return not self.pending()


def mass_grant(forum: ForumState, badge_id: int, counts: dict[int, int]) -> None:
    """``Jobs::MassAwardBadge#execute`` + ``BadgeGranter.mass_grant`` for each ``user id: count`` of one request:
    ``count`` new rows, each with the next ``seq``, whatever the user holds already; nothing for a user or badge that
    is gone, or a badge disabled meanwhile. (Sidekiq runs one job per user; the sandbox runs a request's jobs
    together, which changes no outcome: each job touches one user's rows.)"""
    badge = forum.badges.get(badge_id)
    if badge is None or not badge["enabled"]:
        return
    last_seq: dict[int, int] = {}
    for ub in forum.user_badges.values():
        if ub["badge_id"] == badge_id and ub["user_id"] in counts:
            last_seq[ub["user_id"]] = max(ub["seq"], last_seq.get(ub["user_id"], -1))
    for user_id, count in counts.items():
        if user_id not in forum.users:
            continue
        for _ in range(count):
            seq = last_seq[user_id] = last_seq.get(user_id, -1) + 1
            grant_id = forum.take_id("user_badge")
            forum.user_badges[grant_id] = {
                "id": grant_id,
                "badge_id": badge_id,
                "user_id": user_id,
                "granted_at": now_iso(),
                "created_at": now_iso(),
                "granted_by_id": SYSTEM_USER_ID,
                "post_id": None,
                "seq": seq,
            }


def revoke_all(forum: ForumState, badge: Row) -> None:
    """``BadgeGranter.revoke_all``: titles equal to the badge's name cleared, every grant of the badge deleted."""
    holders = {ub["user_id"] for ub in forum.user_badges.values() if ub["badge_id"] == badge["id"]}
    for user_id in holders:
        user = forum.users.get(user_id)
        if user is not None and user["title"] == badge["name"]:
            user["title"] = None
    for grant_id in [i for i, ub in forum.user_badges.items() if ub["badge_id"] == badge["id"]]:
        del forum.user_badges[grant_id]


def csv_entries(text: str) -> list[str]:
    """The first cell of each line (``CSV.parse_line(line).first&.strip&.downcase``), blank lines skipped.

    Raises ``csv.Error`` where Ruby's CSV raises ``MalformedCSVError`` (a stray quote, a NUL byte or bytes that are not
    text, as in an image uploaded by mistake)."""
    if "\x00" in text or "\ufffd" in text:
        raise csv.Error("not a CSV file")
    entries: list[str] = []
    for line in text.splitlines():
        cells = next(csv.reader([line], strict=True), [])
        first = (cells[0] if cells else "").strip().lower()
        if first:
            entries.append(first)
    return entries


class MassAward:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [route("POST", rf"/admin/badges/award/(?P<badge_id>[^/.]+){J}", self.mass_award, admin_only=True)]

    def mass_award(self, ctx: Ctx) -> Any:
        forum = self.forum
        p = ctx.params
        upload = p.get("file")
        raw_id = str(ctx.path_params["badge_id"])
        badge = forum.badges.get(int(raw_id)) if raw_id.isdigit() else None
        if not isinstance(upload, UploadedFile) or badge is None:
            raise invalid_params("")  # Discourse::InvalidParameters: no file, or no such badge
        if not badge["enabled"]:
            raise json_error(f"Badge {badge['name']!r} is disabled", 422)
        replace_badge_owners = p.get("replace_badge_owners") == "true"
        ensure_once = p.get("grant_existing_holders") != "true"
        if not ensure_once and not badge["multiple_grant"]:
            raise json_error(f"Badge {badge['name']!r} cannot be granted multiple times", 422)
        try:
            entries = csv_entries(str(upload))
        except csv.Error:
            raise json_error("Invalid CSV", 400) from None
        if len(entries) > MAX_CSV_LINES:
            raise json_error(f"Too many entries in the CSV file (at most {MAX_CSV_LINES})", 400)
        if replace_badge_owners:
            revoke_all(forum, badge)
        result = self._enqueue(badge, entries, ensure_once)
        return result

    def _enqueue(self, badge: Row, entries: list[str], ensure_once: bool) -> dict[str, Any]:
        forum = self.forum
        by_name = {u["username"].lower(): u["id"] for u in forum.users.values()}
        by_email: dict[str, int] = {}
        for user in forum.users.values():
            for email in [user["email"], *user["secondary_emails"]]:
                by_email.setdefault(email, user["id"])
        # usernames first, then emails (``(usernames + emails).each``)
        ordered = [e for e in entries if "@" not in e] + [e for e in entries if "@" in e]
        count_per_user: dict[int, int] = {}
        unmatched: dict[str, None] = {}  # an ordered set
        for entry in ordered:
            user_id = by_email.get(entry) if "@" in entry else by_name.get(entry)
            if user_id is None:
                unmatched[entry] = None
                continue
            count_per_user[user_id] = 1 if ensure_once else count_per_user.get(user_id, 0) + 1
        holders = {ub["user_id"] for ub in forum.user_badges.values() if ub["badge_id"] == badge["id"]}
        # Holders are skipped when the request arrives, not when the jobs run.
        counts = {u: c for u, c in count_per_user.items() if not (ensure_once and u in holders)}
        if counts:
            badge_id: int = badge["id"]
            jobs(forum).enqueue(lambda: mass_grant(forum, badge_id, counts))
        return {
            "unmatched_entries": list(unmatched)[:UNMATCHED_LISTED],
            "matched_users_count": len(count_per_user),
            "unmatched_entries_count": len(unmatched),
        }


def jobs(forum: ForumState) -> JobQueue:
    """The forum's job queue (made on first use, kept on the forum)."""
    queue = getattr(forum, "_mass_award_jobs", None)
    if not isinstance(queue, JobQueue):
        queue = JobQueue(forum)
        setattr(forum, "_mass_award_jobs", queue)  # noqa: B010 - ForumState has no field for it; keep its module small
    return queue

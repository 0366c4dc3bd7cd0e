"""Many grants of one badge in one request: Discourse's mass award, read back before a grant counts as done.

``POST /admin/badges/award/{badge_id}`` (discourse/discourse ``Admin::BadgesController#mass_award``) takes a CSV
``file`` of usernames or emails, up to ``MAX_CSV_LINES`` = 50,000, and answers ``matched_users_count``,
``unmatched_entries`` (at most 100 listed) and ``unmatched_entries_count``. The grants themselves are made later by
one ``MassAwardBadge`` job per user (``BadgeGranter.enqueue_mass_grant_for_users`` and ``BadgeGranter.mass_grant``,
app/services/badge_granter.rb). Two consequences this module is built on:

- The answer says who *will* be granted, not who is: a grant counts only once the badge's holders list shows it.
  ``GET /user_badges.json?badge_id=`` lists the newest grants first, 50 a page (``UserBadgesController#index``,
  ``MAX_INDEX_LIMIT``); the read-back pages only while pages still hold someone it waits for.
- Holders are skipped when the request *arrives*; the job inserts a row whatever the user holds then (``mass_grant``:
  ``INSERT … seq = MAX(seq) + 1``). Two awards sent before the first one's jobs ran grant a single-grant badge twice.
  So a grant not read back within the wait is never re-sent blindly: it is reported *unknown* and verified on a later
  pass like a crash's orphan (:meth:`MassAward.verify`), and re-sent (only the users still missing) once the award
  is older than ``mass_award_settle_seconds``.

Awards name usernames, never emails. The CSV may hold emails, but ``enqueue_mass_grant_for_users`` matches them
with ``User.with_email`` (any address of any account, confirmed or not; badge_granter.rb, the ``emails`` branch), so an
account that signed up with a buyer's address and never confirmed it would be granted. CardBridge grants only to
accounts its match stage found with a confirmed primary email (``activation=activated``).

``replace_badge_owners`` is never sent (``BadgeGranter.revoke_all`` would revoke every grant made by hand or by other
tools) and neither is ``grant_existing_holders`` (multiple-grant badges keep the per-user path).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapters.base import Action, IdCache, Outcome
from connector.core.http import RemoteClient

#: ``Admin::BadgesController::MAX_CSV_LINES``.
MAX_ENTRIES = 50_000
#: ``UserBadgesController::MAX_INDEX_LIMIT``: grants per holders page.
HOLDERS_PAGE = 50
#: Seconds between the read-backs of one award (their sum is the most one award waits in a pass).
POLL_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0)
#: The id cache kind under which the time of a badge's last mass award is kept (epoch seconds).
SENT_KIND = "mass_award_sent"


@dataclass(frozen=True)
class AwardAnswer:
    matched: int
    #: Lower-cased entries the forum found nobody for (at most 100 are listed).
    unmatched: frozenset[str]
    unmatched_count: int


def send_award(http: RemoteClient, badge_id: int, usernames: Sequence[str]) -> AwardAnswer:
    """One mass award of usernames (one a line). A POST: never retried once it may have reached the forum."""
    if len(usernames) > MAX_ENTRIES:
        raise ValueError(f"at most {MAX_ENTRIES} entries per award")
    csv = ("\n".join(usernames) + "\n").encode()
    body = http.request(
        "POST", f"/admin/badges/award/{badge_id}.json", files={"file": ("cardbridge-award.csv", csv, "text/csv")}
    ).json()
    body = body if isinstance(body, dict) else {}
    listed = body.get("unmatched_entries")
    unmatched = frozenset(str(e).lower() for e in listed) if isinstance(listed, list) else frozenset()
    count = body.get("unmatched_entries_count")
    matched = body.get("matched_users_count")
    return AwardAnswer(
        matched=matched if isinstance(matched, int) else 0,
        unmatched=unmatched,
        unmatched_count=count if isinstance(count, int) else len(unmatched),
    )


def _holders_page(http: RemoteClient, badge_id: int, offset: int) -> tuple[dict[str, int], int]:
    """(lower-cased username → UserBadge id, grants on the page) of one page, newest grants first."""
    body = http.request(
        "GET", "/user_badges.json", params={"badge_id": badge_id, "offset": offset, "limit": HOLDERS_PAGE}
    ).json()
    body = body if isinstance(body, dict) else {}
    grants = (body.get("user_badge_info") or {}).get("user_badges") or []
    names = {int(u["id"]): str(u["username"]).lower() for u in body.get("users") or [] if "id" in u}
    found: dict[str, int] = {}
    for grant in grants:
        name = names.get(int(grant.get("user_id", 0)))
        if name is not None:
            found.setdefault(name, int(grant["id"]))
    return found, len(grants)


def newest_holders(http: RemoteClient, badge_id: int, wanted: set[str]) -> dict[str, int]:
    """Those of ``wanted`` among the badge's newest grants: pages are read while the last one held someone wanted
    (or was the first) and someone wanted is still missing, so a read costs about ``len(wanted) / 50`` requests."""
    found: dict[str, int] = {}
    offset = 0
    while True:
        page, size = _holders_page(http, badge_id, offset)
        hits = {name: ref for name, ref in page.items() if name in wanted and name not in found}
        found.update(hits)
        if size < HOLDERS_PAGE or not hits or len(found) == len(wanted):
            return found
        offset += size


def all_holders(http: RemoteClient, badge_id: int) -> dict[str, int]:
    """Every holder of the badge (lower-cased username → UserBadge id), 50 a request."""
    found: dict[str, int] = {}
    offset = 0
    while True:
        page, size = _holders_page(http, badge_id, offset)
        for name, ref in page.items():
            found.setdefault(name, ref)
        if size < HOLDERS_PAGE:
            return found
        offset += size


class MassAward:
    """Sends the mass awards of one forum and reads them back. ``sleep`` waits between read-backs (tests pass their
    own); ``settle_seconds`` is how old an award must be before a grant it did not show is sent again."""

    def __init__(
        self,
        http: RemoteClient,
        cache: IdCache,
        *,
        wait_seconds: float = 30.0,
        settle_seconds: float = 300.0,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.cache = cache
        self.wait_seconds = wait_seconds
        self.settle_seconds = settle_seconds
        self.sleep = sleep or time.sleep
        self.clock = clock

    def grant(self, target: str, badge_id: int, actions: Sequence[Action]) -> list[Outcome]:
        """Grant ``target`` to every action's account, one award per 50,000; each outcome is done (read back),
        failed (the forum matched nobody by that name) or unknown (not read back in time: verify before resending)."""
        outcomes: list[Outcome] = []
        for start in range(0, len(actions), MAX_ENTRIES):
            outcomes.extend(self._award(target, badge_id, actions[start : start + MAX_ENTRIES]))
        return outcomes

    def _award(self, target: str, badge_id: int, actions: Sequence[Action]) -> list[Outcome]:
        names = list(dict.fromkeys(a.username.lower() for a in actions))
        # Remembered before the request: a crash after it must still find the award recent (see ``verify``).
        self.cache.set(SENT_KIND, target, f"{self.clock():.0f}")
        answer = send_award(self.http, badge_id, names)
        expected = set(names) - answer.unmatched
        found: dict[str, int] = {}
        try:
            for delay in self._delays():
                self.sleep(delay)
                found.update(newest_holders(self.http, badge_id, expected - set(found)))
                if len(found) == len(expected):
                    break
        except Exception as error:  # the award went out: a failed read must not send it again
            unread = f"read-back failed: {error}"
        else:
            unread = f"not among the badge's holders {self.wait_seconds:.0f} s after the award"
        outcomes = []
        for action in actions:
            name = action.username.lower()
            if name in found:
                outcomes.append(Outcome(action.id, True, ref=str(found[name])))
            elif name in answer.unmatched:
                outcomes.append(Outcome(action.id, False, error=f"the forum has no account named {action.username!r}"))
            else:
                outcomes.append(Outcome(action.id, False, error=unread, unknown=True))
        return outcomes

    def _delays(self) -> list[float]:
        delays, spent = [], 0.0
        for delay in POLL_DELAYS:
            if spent >= self.wait_seconds:
                break
            delay = min(delay, self.wait_seconds - spent)
            delays.append(delay)
            spent += delay
        return delays or [0.0]

    def recent(self, target: str) -> bool:
        """Whether the last mass award of this badge is younger than ``settle_seconds``."""
        sent = self.cache.get(SENT_KIND, target)
        try:
            return sent is not None and self.clock() - float(sent) < self.settle_seconds
        except ValueError:
            return False

    def verify(self, target: str, badge_id: int, actions: Sequence[Action]) -> dict[int, Outcome | None]:
        """Grants whose outcome is unknown (a crash, a read-back that timed out), read back with one holders read:
        done when shown; still missing, ``None`` (send again) once the last award of this badge is older than
        ``settle_seconds``, else an unknown outcome (its jobs may not have run yet: a resend now could grant twice)."""
        holders = all_holders(self.http, badge_id)
        recent = self.recent(target)
        result: dict[int, Outcome | None] = {}
        for action in actions:
            ref = holders.get(action.username.lower())
            if ref is not None:
                result[action.id] = Outcome(action.id, True, ref=str(ref))
            elif recent:
                result[action.id] = Outcome(
                    action.id, False, unknown=True, error="not a holder yet; the mass award's jobs may still run"
                )
            else:
                result[action.id] = None
        return result

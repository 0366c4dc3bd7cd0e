"""Earn: members' useful posts become points in the same ledger as purchase points (``[earn]``).

A stage of the pass, after the identity match (a post earns only for an author matched to a shop customer, and a
new store or a newly linked member is matched there) and before the second plan (which plans the customers whose
points changed). Each pass reads, per configured community, the posts of the last ``window_days`` in the configured
categories or channels (``ContributionSource``), works out what each is worth (``mappings.earn``) and records the
difference as a point event for the author's shop customer. Only members matched to a shop customer earn (points are
spent as shop coupons); likes by the author, by accounts linked to the same customer and by new accounts do not count.
The customers whose points changed are planned in the pass's second plan, so the points feature shows the new totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from adapters.contributions import Contribution, ContributionSource, OmitsRemoved
from connector.core.clock import utcnow
from connector.core.config import Config
from connector.core.logs import log
from connector.features.base import Run
from connector.state import State
from connector.state.earnings import Earned
from mappings.earn import EarnRules, counted, delta, post_worth

#: Posts read per community and pass at most (the adapter pages within its own limits too).
MAX_POSTS = 5000


class EarnStage:
    name = "earn"

    def __init__(self, state: State, config: Config) -> None:
        self.state, self.config = state, config

    def run(self, run: Run) -> None:
        earn = self.config.earn
        if earn is None or run.dry_run:
            return
        now = utcnow()
        for community, target in earn.communities.items():
            adapter = run.communities.get(community)
            if not isinstance(adapter, ContributionSource) or run.stop.is_set():
                continue
            rules = EarnRules(
                per_like=target.per_like,
                accepted_solution=target.accepted_solution,
                min_likes=target.min_likes,
                per_post_cap=target.per_post_cap,
                daily_cap=target.daily_cap,
            )
            try:
                posts = []
                since = now - timedelta(days=earn.window_days)
                generation = self.state.earnings.generation(community)
                for post in adapter.contributions(target.places, since, generation):
                    posts.append(post)
                    if len(posts) >= MAX_POSTS:
                        break
            except Exception as error:  # one community failing does not stop the pass or the others
                log.warning("earn: posts could not be read", community=community, error=type(error).__name__)
                run.report.errors.append(f"earn {community}: posts could not be read ({type(error).__name__})")
                continue
            young = now - timedelta(days=earn.new_member_days)
            added = self._record(community, posts, rules, young, now, target.verified_buyers_only)
            if isinstance(adapter, OmitsRemoved) and adapter.contributions_complete and len(posts) < MAX_POSTS:
                added += self._take_back_gone(community, adapter, {p.post_id for p in posts}, since)
            if added:
                log.info("earn: points recorded", community=community, events=added, posts=len(posts))

    def _record(
        self,
        community: str,
        posts: Sequence[Contribution],
        rules: EarnRules,
        young: datetime,
        now: datetime,
        buyers_only: bool,
    ) -> int:
        earnings = self.state.earnings
        people = {p.author_id for p in posts} | {liker.user_id for p in posts for liker in p.likers}
        customers = earnings.customers_of(community, people)
        authors = {customers[p.author_id] for p in posts if p.author_id in customers}
        buyers = earnings.buyers(authors) if buyers_only else authors
        recorded = earnings.recorded(community, [p.post_id for p in posts])
        day_start = datetime(now.year, now.month, now.day, tzinfo=UTC)
        today = earnings.earned_since(community, authors, day_start)
        events: list[Earned] = []
        for post in sorted(posts, key=lambda p: (p.created_at, p.post_id)):
            author_key = customers.get(post.author_id)
            total, _count = recorded.get(post.post_id, (0, 0))
            if author_key is None:
                continue  # a member with no shop customer earns nothing (points are spent in the shop)
            likes = counted(
                [
                    (liker.user_id, customers.get(liker.user_id), liker.joined_at is None or liker.joined_at <= young)
                    for liker in post.likers
                ],
                post.author_id,
                author_key,
            )
            worth = post_worth(likes, post.accepted, post.removed or author_key not in buyers, rules)
            change = delta(worth, total, rules.daily_cap - today.get(author_key, 0))
            if change == 0:
                continue
            if change > 0:
                today[author_key] = today.get(author_key, 0) + change
            reason = f"post {post.post_id}: {likes} likes" + (", solution" if post.accepted else "")
            if post.removed:
                reason = f"post {post.post_id} removed"
            events.append(Earned(community, post.post_id, author_key, change, reason))
        earnings.add(events, {post: count for post, (_total, count) in recorded.items()})
        return len(events)

    def _take_back_gone(self, community: str, source: OmitsRemoved, listed: set[str], since: datetime) -> int:
        """A source that leaves deleted posts out read everything: a credited post it no longer lists, made within
        the window, was deleted; its points are taken back (a post older than the window is simply not read)."""
        events = []
        held = self.state.earnings.held(community)
        for post_id, (points, _count, customer) in held.items():
            made = source.posted_at(post_id)
            if post_id in listed or made is None or made < since:
                continue
            events.append(Earned(community, post_id, customer, -points, f"post {post_id} removed"))
        self.state.earnings.add(events, {e.post_id: held[e.post_id][1] for e in events})
        return len(events)

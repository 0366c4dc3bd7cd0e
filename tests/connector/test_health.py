"""What /healthz concludes from the passes (issue 12, item 5; issue 14: healthy, degraded, unhealthy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connector.flow import PassReport
from connector.server.health import Facts, Health, Level, Thresholds, assess, assess_snapshot, record_pass

T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: A pass's requests when it asked the forum (a pass that did not ask it says nothing of it).
ASKED = {"forum": {"requests": 2}}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def health(clock, failed_passes=3):
    return Health(["forum"], timedelta(minutes=15), clock, failed_passes, sync_every=timedelta(minutes=5))


def test_three_crashed_passes_in_a_row_are_unhealthy_and_one_good_pass_heals():
    clock = Clock()
    h = health(clock)
    for _ in range(2):
        h.observe("sync", PassReport(errors=["sync: ValueError: bad record"]))
    report = h.check({})
    assert report.status == 200 and report.level is Level.DEGRADED and report.body["health"] == "degraded"
    assert report.body["failing"] == {}  # a crash is no remote failing
    h.observe("sync", PassReport(errors=["sync: ValueError: bad record"]))
    report = h.check({})
    assert report.status == 503 and report.problems == ["sync: 3 passes failed in a row"]
    assert report.body["health"] == "unhealthy" and report.body["status"] == "failing"
    assert "bad record" not in str(report.body)  # no error text on the public answer
    h.observe("sync", PassReport(orders_read=3))
    assert h.check({}).healthy and h.check({}).body["status"] == "ok"


def test_a_pass_whose_every_record_was_quarantined_failed():
    clock = Clock()
    h = health(clock, failed_passes=1)
    h.observe("sync", PassReport(orders_read=4, quarantined=4))
    assert not h.check({}).healthy
    h.observe("sync", PassReport(orders_read=4, quarantined=1))
    assert h.check({}).healthy


def test_a_shop_unread_for_longer_than_allowed_is_degraded_then_unhealthy():
    clock = Clock()
    h = health(clock, failed_passes=1000)
    h.observe("sync", PassReport())
    clock.now += timedelta(minutes=1)
    h.observe("webhook", PassReport(errors=["shop: HTTP 503"]))
    report = h.check({})
    assert report.status == 200 and report.level is Level.DEGRADED
    assert report.body["failing"] == {"shop": {"kind": "shop", "since": (T0 + timedelta(minutes=1)).isoformat()}}
    clock.now += timedelta(minutes=15, seconds=1)
    assert h.check({}).problems == [f"shop: not read successfully since {(T0 + timedelta(minutes=1)).isoformat()}"]


def test_passes_that_never_finish_leave_the_shop_unread():
    clock = Clock()
    h = health(clock)
    clock.now += timedelta(minutes=20, seconds=1)
    assert h.check({}).problems == [f"shop: no pass has read it since {T0.isoformat()}"]


def test_webhook_and_link_passes_do_not_count_in_a_row_and_a_community_rule_is_kept():
    clock = Clock()
    h = health(clock, failed_passes=1)
    h.observe("sync", PassReport())
    h.observe("link", PassReport(errors=["link: RuntimeError: x"]))
    h.observe("webhook", PassReport(errors=["webhook: RuntimeError: x"]))
    assert h.check({}).healthy
    h.observe("sync", PassReport(errors=["forum: HTTP 401"]))
    assert h.check({}).level is Level.DEGRADED and h.check({}).status == 200
    clock.now += timedelta(minutes=16)
    h.observe("sync", PassReport(errors=["forum: HTTP 401"]))
    assert h.check({}).problems == [f"forum: failing since {T0.isoformat()}"]
    assert h.check({}).level is Level.UNHEALTHY


def test_assess_is_degraded_while_a_remote_fails_and_unhealthy_past_the_limit():
    limits = Thresholds(timedelta(seconds=60))
    calm = assess(Facts(now=T0, started=T0, shop_read=T0), limits)
    assert calm.level is Level.HEALTHY and calm.failing == {} and calm.problems == []
    failing = Facts(now=T0 + timedelta(seconds=60), started=T0, shop_read=T0, communities_failing={"forum": T0})
    verdict = assess(failing, limits)
    assert verdict.level is Level.DEGRADED and verdict.failing == {"forum": T0} and verdict.problems == []
    later = Facts(now=T0 + timedelta(seconds=61), started=T0, shop_read=T0, communities_failing={"forum": T0})
    assert assess(later, limits).level is Level.UNHEALTHY


def test_the_facts_kept_in_the_store_give_status_the_daemons_verdict(store):
    clock = Clock()
    h = Health(["forum"], timedelta(minutes=15), clock, 3, sync_every=timedelta(minutes=5))
    h.keep = lambda facts: store.status.health.save("passes", facts)
    h.observe("sync", PassReport(orders_read=1))
    clock.now += timedelta(minutes=1)
    h.observe("sync", PassReport(errors=["forum: identity look-up failed: HTTP 503"]))
    kept = store.status.health.load("passes")
    assert kept is not None and "503" not in str(kept.facts)  # facts, never an error's text
    for minutes in (2, 17):  # judged at the same time, the store's facts and the daemon's memory agree
        clock.now = T0 + timedelta(minutes=minutes)
        mine = h.check({}).verdict
        theirs = assess_snapshot(kept.facts, clock.now)
        assert (theirs.level, theirs.failing, theirs.problems) == (mine.level, mine.failing, mine.problems)
    assert theirs.level is Level.UNHEALTHY and theirs.failing == {"forum": T0 + timedelta(minutes=1)}
    h.observe("sync", PassReport(orders_read=1, requests=ASKED))  # saved again over the same row
    assert assess_snapshot(store.status.health.load("passes").facts, clock.now).level is Level.HEALTHY


def test_a_pass_outside_the_daemon_adds_to_the_facts_the_store_keeps(store):
    clock = Clock()
    limits = Thresholds(timedelta(minutes=15))
    kept = store.status.health
    record_pass(kept, ["forum"], limits, "sync", PassReport(orders_read=2), clock)
    clock.now += timedelta(minutes=5)
    record_pass(kept, ["forum"], limits, "sync", PassReport(errors=["forum: identity look-up failed: x"]), clock)
    clock.now += timedelta(minutes=5)
    record_pass(kept, ["forum"], limits, "backfill", PassReport(failures=["forum: grant badge 'x' for a: y"]), clock)
    verdict = assess_snapshot(kept.load("passes").facts, clock.now)
    assert verdict.level is Level.DEGRADED and verdict.failing == {"forum": T0 + timedelta(minutes=5)}  # the first
    clock.now += timedelta(minutes=11)
    assert assess_snapshot(kept.load("passes").facts, clock.now).level is Level.UNHEALTHY
    record_pass(kept, ["forum"], limits, "sync", PassReport(orders_read=1, requests=ASKED), clock)
    assert assess_snapshot(kept.load("passes").facts, clock.now).level is Level.HEALTHY


def test_a_pass_that_did_not_ask_a_failing_community_does_not_clear_it():
    clock = Clock()
    h = health(clock, failed_passes=1000)
    h.observe("sync", PassReport(errors=["forum: HTTP 503"], requests={"forum": {"requests": 3}}))
    clock.now += timedelta(minutes=9)
    h.observe("retry", PassReport())  # nothing was due: the forum was not asked
    h.observe("sync", PassReport(orders_read=1, requests={"forum": {"requests": 0}}))
    assert h.check({}).body["failing_since"] == {"forum": T0.isoformat()}
    h.observe("sync", PassReport(errors=["forum: HTTP 503"], requests={"forum": {"requests": 3}}))  # met again
    clock.now += timedelta(minutes=7)
    assert h.check({}).level is Level.UNHEALTHY  # 16 minutes of failure, not reset by the quiet passes
    h.observe("sync", PassReport(orders_read=1, requests={"forum": {"requests": 2}}))
    assert h.check({}).healthy


def test_a_failure_no_pass_meets_again_for_two_sync_intervals_is_forgotten():
    clock = Clock()
    h = health(clock, failed_passes=1000)  # sync_every: 5 minutes
    h.observe("sync", PassReport(failures=["forum: grant badge 'x' for a: 422"], requests={"forum": {"requests": 1}}))
    clock.now += timedelta(minutes=10)
    h.observe("retry", PassReport())  # the action died: nothing asks the forum any more
    assert h.check({}).level is Level.DEGRADED
    clock.now += timedelta(seconds=1)
    h.observe("retry", PassReport())
    assert h.check({}).healthy  # not left failing (and later unhealthy) for want of work


def test_a_follower_replica_answers_by_the_leaders_passes_not_by_its_own_silence(store):
    """Issue 18: a follower runs no scheduled pass; its /healthz must not call the shop unread (and be dropped by the
    load balancer) while the leader's passes read it."""
    clock = Clock()
    leader, follower = health(clock), health(clock)
    leader.attach(store.status.health)
    follower.attach(store.status.health)
    for _ in range(6):  # half an hour of the leader's syncs
        clock.now += timedelta(minutes=5)
        leader.observe("sync", PassReport(orders_read=1))
    assert follower.check({}).level is Level.UNHEALTHY  # its own facts: no pass has read the shop since it started
    follower.refresh()
    assert follower.check({}).healthy
    clock.now += timedelta(minutes=1)
    leader.observe("sync", PassReport(errors=["shop: HTTP 503"]))
    follower.refresh()
    report = follower.check({})
    assert report.level is Level.DEGRADED and "shop" in report.body["failing"]

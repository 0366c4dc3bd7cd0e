"""Webhook events in the state store (issue 12, items 6 and 11), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

from connector.core.clock import utcnow

HOUR = timedelta(hours=1)


def test_the_same_content_within_the_window_is_a_duplicate_whatever_its_delivery_id(store):
    hooks = store.webhooks
    assert hooks.accept("woocommerce", "d1", "order.updated", "7", "h" * 64, HOUR)
    assert not hooks.accept("woocommerce", "d2", "order.updated", "7", "h" * 64, HOUR)  # a replay
    assert not hooks.accept("woocommerce", "d1", "order.updated", "7", "g" * 64, HOUR)  # a sender's retry
    assert hooks.accept("sellix", "d3", "order:paid", "7", "h" * 64, HOUR)  # another source
    assert hooks.accept("woocommerce", "d4", "order.updated", "7", "h" * 64, None)  # no window: ids only
    assert len(hooks.pending()) == 3


def test_a_replay_of_an_event_given_up_is_taken_again(store):
    hooks = store.webhooks
    assert hooks.accept("discourse", "p1", "post_edited", "31", "c" * 64, HOUR)
    [event] = hooks.pending()
    hooks.dead(event.id, "HTTP 403", keep_resource=True)
    assert hooks.accept("discourse", "p2", "post_edited", "31", "c" * 64, HOUR)


def test_failed_tries_back_off_and_dead_events_are_listed(store):
    hooks = store.webhooks
    now = utcnow()
    hooks.accept("discourse", "p1", "post_edited", "31")
    hooks.accept("discourse", "u1", "user_created", "a@example.com")
    post, user = hooks.pending()
    hooks.failed(post.id, "HTTP 403", now + HOUR)
    assert [e.id for e in hooks.due(now)] == [user.id]
    assert [e.id for e in hooks.due(now + 2 * HOUR)] == [post.id, user.id]
    hooks.deferred(user.id, "shop: down", now + HOUR)
    assert hooks.due(now) == []
    assert hooks.counts() == {"pending": 2, "retrying": 1, "dead": 0}
    hooks.dead(post.id, "HTTP 403", keep_resource=True)
    hooks.dead(user.id, "shop: down", keep_resource=False)
    dead = {e.delivery_id: e for e in hooks.dead_events()}
    assert dead["p1"].attempts == 2 and dead["p1"].resource == "31" and dead["p1"].last_error == "HTTP 403"
    assert dead["u1"].resource == ""  # an email is not kept
    assert hooks.counts() == {"pending": 0, "retrying": 0, "dead": 2}


def test_prune_deletes_only_handled_events_older_than_the_cut(store):
    hooks = store.webhooks
    for delivery in ("a", "b", "c"):
        hooks.accept("woocommerce", delivery, "order.updated", "1")
    a, b, _ = hooks.pending()
    hooks.done([a.id], "processed")
    hooks.dead(b.id, "x", keep_resource=True)
    assert hooks.prune(utcnow() - HOUR) == 0  # handled just now: kept
    assert hooks.prune(utcnow() + HOUR) == 2
    assert [e.delivery_id for e in hooks.pending()] == ["c"]  # never an unhandled one


def test_replicas_claiming_at_once_never_get_the_same_event(store):
    """Issue 18: three replicas, eight threads each asking as fast as they can; every event is worked exactly once
    (on PostgreSQL the claims skip each other's locked rows; on SQLite the write lock serialises them)."""
    import threading

    hooks = store.webhooks
    for n in range(120):
        assert hooks.accept("woocommerce", f"d{n}", "order.updated", str(n))
    worked: dict[int, str] = {}
    twice: list[int] = []
    guard = threading.Lock()
    start = threading.Barrier(8)

    def replica(owner: str) -> None:
        start.wait()
        while True:
            got = hooks.claim(owner, utcnow(), timedelta(seconds=30), limit=7)
            if not got:
                if not hooks.pending():
                    return
                continue
            with guard:
                for event in got:
                    if event.id in worked:
                        twice.append(event.id)
                    worked[event.id] = owner
            hooks.done([e.id for e in got], "processed")

    threads = [threading.Thread(target=replica, args=(f"host{n % 3}:{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert twice == []
    assert len(worked) == 120
    assert len(set(worked.values())) > 1  # the work was spread, not taken by one


def test_a_claim_holds_until_it_runs_out_or_is_given_back(store):
    hooks = store.webhooks
    now = utcnow()
    hooks.accept("woocommerce", "d1", "order.updated", "7")
    hooks.accept("woocommerce", "d2", "order.updated", "8")
    [first, second] = hooks.claim("a:1", now, timedelta(seconds=20))
    assert hooks.claim("b:2", now, timedelta(seconds=20)) == []  # a's, while its claim lasts
    # a's heartbeat moves its claims; a replica that died stops moving them and b takes them once they run out.
    assert hooks.extend("a:1", now + timedelta(seconds=40)) == 2
    assert hooks.claim("b:2", now + timedelta(seconds=30), timedelta(seconds=20)) == []
    hooks.done([first.id], "processed")
    taken = hooks.claim("b:2", now + timedelta(seconds=41), timedelta(seconds=20))
    assert [e.id for e in taken] == [second.id]  # the settled one is never taken again
    hooks.release([second.id], "a:1")  # not a's any more: nothing changes
    assert hooks.claim("c:3", now + timedelta(seconds=42), timedelta(seconds=20)) == []
    hooks.release([second.id], "b:2")  # b could not work it (the pass lock was not had): due again at once
    assert [e.id for e in hooks.claim("c:3", now + timedelta(seconds=42), timedelta(seconds=20))] == [second.id]
    hooks.failed(second.id, "HTTP 503", now + timedelta(seconds=100))  # a failed try gives the claim up too
    assert [e.id for e in hooks.claim("a:1", now + timedelta(seconds=101), timedelta(seconds=20))] == [second.id]

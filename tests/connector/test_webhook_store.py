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

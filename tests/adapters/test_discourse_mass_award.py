"""The Discourse adapter's mass award against the sandbox forum over loopback: who is done, failed or unknown."""

from __future__ import annotations

import pytest

from adapters.base import Action, MassGrants
from adapters.communities.discourse import DiscourseCommunity, DiscourseSettings
from sandbox.discourse import DiscourseSandbox
from sandbox.discourse.user_badges import grant
from sandbox.server import SandboxServer

BADGE = "Verified Buyer"


@pytest.fixture
def forum():
    sandbox = DiscourseSandbox(api_key="k", api_username="system")
    sandbox.mass_award_delay = 0.05
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url
        yield sandbox


def adapter(forum, **settings):
    config = DiscourseSettings(
        kind="discourse", base_url=forum.url, api_key="k", requests_per_minute=100_000, **settings
    )
    return DiscourseCommunity("forum", config, sleep=lambda seconds: None if seconds <= 0 else _nap(seconds))


def _nap(seconds):
    import time

    time.sleep(min(seconds, 0.1))  # the sandbox's jobs run after 0.05 s


def grants(names, start=1):
    return [Action(start + i, "badge", BADGE, "grant", name) for i, name in enumerate(names)]


def test_grants_read_back_are_done_with_their_ref_and_unmatched_users_fail_with_the_reason(forum):
    names = [f"buyer{i}" for i in range(80)]
    for name in names:
        forum.add_user(name, f"{name}@example.com")
    community = adapter(forum)
    assert isinstance(community, MassGrants) and community.mass_threshold("badge") == 50

    outcomes = {o.action_id: o for o in community.apply(grants([*names, "gone-away"]))}

    assert forum.count("POST", r"^/admin/badges/award/") == 1 and forum.count("POST", r"^/user_badges") == 0
    done = [o for o in outcomes.values() if o.ok]
    assert len(done) == 80 and all(o.ref and o.ref.isdigit() for o in done)
    missing = outcomes[81]
    assert not missing.ok and not missing.unknown and "gone-away" in (missing.error or "")
    # the read-back pages the newest grants (50 a page) until everyone is found: 2 pages for 80
    assert forum.count("GET", r"^/user_badges\.json$") == 2


def test_an_old_holder_is_unknown_after_the_wait_then_verified_with_one_holders_read(forum):
    names = [f"buyer{i}" for i in range(60)]
    for name in names:
        forum.add_user(name, f"{name}@example.com")
    community = adapter(forum, mass_award_wait_seconds=1, mass_award_settle_seconds=0)
    community.apply(grants(names[:1]))  # buyer0 holds the badge already (a single grant)
    with forum.state.lock:  # 100 newer grants made by hand push it behind pages that hold nobody awaited
        badge = forum.state.badge_by_name(BADGE)
        system = forum.state.find_user("system")
        for i in range(100):
            grant(
                forum.state,
                badge,
                forum.state.make_user(forum.state.take_id("user"), f"o{i}", f"o{i}@x.io"),
                system,
                None,
            )
    forum.reset_log()

    outcomes = {o.action_id: o for o in community.apply(grants(names, start=100))}

    # the forum skipped buyer0 (a holder when the award arrived): not among the newest grants → unknown, not failed
    assert outcomes[100].unknown and not outcomes[100].ok
    assert all(outcomes[100 + i].ok for i in range(1, 60))
    # the read-back stopped at the first page holding nobody awaited (page 3), not at the end of the list (page 4)
    assert forum.count("GET", r"^/user_badges\.json$") == 3
    verified = community.verify_many(grants(names[:1], start=100))
    assert verified[100] is not None and verified[100].ok
    assert forum.badges_of("buyer0") == [BADGE]


def test_a_recent_award_holds_a_missing_grant_instead_of_sending_it_again(forum):
    names = [f"buyer{i}" for i in range(60)]
    for name in names:
        forum.add_user(name, f"{name}@example.com")
    forum.mass_award_delay = None  # the jobs do not run
    community = adapter(forum, mass_award_wait_seconds=0.2)

    outcomes = community.apply(grants(names))
    assert all(o.unknown for o in outcomes)
    assert all(o is not None and o.unknown for o in community.verify_many(grants(names)).values())
    single = community.verify(grants(names[:1])[0])  # the per-user check holds it too
    assert single is not None and single.unknown
    forum.run_jobs()
    assert all(o is not None and o.ok for o in community.verify_many(grants(names)).values())
    assert forum.count("POST", r"^/admin/badges/award/") == 1


def test_a_multiple_grant_badge_keeps_the_per_user_path(forum):
    names = [f"buyer{i}" for i in range(60)]
    for name in names:
        forum.add_user(name, f"{name}@example.com")
    with forum.state.lock:
        from sandbox.discourse.state import new_badge

        forum.state.badges[300] = new_badge(300, BADGE, 3, multiple_grant=True)
    community = adapter(forum)
    outcomes = community.apply(grants(names))
    assert all(o.ok for o in outcomes)
    assert forum.count("POST", r"^/admin/badges/award/") == 0 and forum.count("POST", r"^/user_badges") == 60

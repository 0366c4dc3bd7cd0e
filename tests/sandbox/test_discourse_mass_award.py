# ruff: noqa: F811  (the fixtures are imported from the forum's main test module)
"""``POST /admin/badges/award/{badge_id}`` over real HTTP, as discourse/discourse answers it.

Each test names the upstream behaviour it pins: ``Admin::BadgesController#mass_award`` and its request spec
(spec/requests/admin/badges_controller_spec.rb ``#mass_award``), ``BadgeGranter.enqueue_mass_grant_for_users`` and
``BadgeGranter.mass_grant`` (app/services/badge_granter.rb), ``Jobs::MassAwardBadge`` (app/jobs/regular/mass_award_badge.rb).
"""

from __future__ import annotations

import pytest

from tests.sandbox.test_discourse_sandbox import KEY, _shared_server, api, clock, forum, make_badge, server  # noqa: F401


def award(api, badge_id, lines, **form):
    files = {"file": ("award.csv", "\n".join(lines).encode(), "text/csv")}
    return api.post(f"/admin/badges/award/{badge_id}.json", files=files, data=form)


@pytest.fixture
def held(forum):
    forum.mass_award_delay = None  # the jobs wait for run_jobs()
    return forum


def test_usernames_and_emails_in_one_file_answer_matched_and_unmatched_and_grant_later(api, held):
    forum = held
    forum.add_user("alice", "alice@example.com")
    forum.add_user("bob", "bob@example.com", secondary_emails=["bob.alt@example.com"])
    badge_id = make_badge(api)

    answer = award(api, badge_id, ["Alice", "BOB.ALT@example.com", "nobody", "ghost@example.com", "", "nobody"])

    assert answer.status_code == 200
    # usernames first, then emails; downcased; a set (enqueue_mass_grant_for_users)
    assert answer.json() == {
        "unmatched_entries": ["nobody", "ghost@example.com"],
        "matched_users_count": 2,
        "unmatched_entries_count": 2,
    }
    assert forum.badges_of("alice") == [] and forum.pending_jobs() == 1  # asynchronous: the jobs have not run
    forum.run_jobs()
    assert forum.badges_of("alice") == ["Verified Buyer"] and forum.badges_of("bob") == ["Verified Buyer"]


def test_holders_at_request_time_are_skipped_but_two_awards_before_the_jobs_ran_duplicate_the_grant(api, held):
    forum = held
    forum.add_user("alice", "alice@example.com")
    forum.add_user("carol", "carol@example.com")
    badge_id = make_badge(api)  # single grant
    assert api.post("/user_badges.json", json={"username": "carol", "badge_id": badge_id}).status_code == 200

    first = award(api, badge_id, ["alice", "carol"])
    second = award(api, badge_id, ["alice", "carol"])  # alice holds nothing yet: enqueued again

    assert first.json()["matched_users_count"] == second.json()["matched_users_count"] == 2  # holders counted
    forum.run_jobs()
    assert forum.badges_of("carol") == ["Verified Buyer"]  # a holder when the requests arrived: skipped
    assert forum.badges_of("alice") == ["Verified Buyer", "Verified Buyer"]  # mass_grant inserts with MAX(seq)+1
    listed = api.get("/user_badges.json", params={"badge_id": badge_id, "username": "alice"}).json()
    assert listed["user_badge_info"]["grant_count"] == 2

    award(api, badge_id, ["alice"])  # once the jobs ran, alice is a holder: nothing more
    forum.run_jobs()
    assert forum.badges_of("alice").count("Verified Buyer") == 2


def test_a_disabled_badge_is_422_and_one_disabled_before_the_jobs_ran_grants_nothing(api, held):
    forum = held
    forum.add_user("alice", "alice@example.com")
    badge_id = make_badge(api)
    assert award(api, badge_id, ["alice"]).status_code == 200
    assert api.put(f"/admin/badges/{badge_id}.json", json={"enabled": "false"}).status_code == 200

    forum.run_jobs()  # Badge.find_by(enabled: true, id:) in the job
    assert forum.badges_of("alice") == []
    refused = award(api, badge_id, ["alice"])
    assert refused.status_code == 422 and refused.json()["errors"]


def test_grant_existing_holders_needs_a_multiple_grant_badge_and_then_grants_per_line(api, held):
    forum = held
    forum.add_user("alice", "alice@example.com")
    single = make_badge(api, "Single")
    multiple = make_badge(api, "Multiple", multiple_grant=True)

    assert award(api, single, ["alice"], grant_existing_holders="true").status_code == 422
    ok = award(api, multiple, ["alice", "ALICE", "alice@example.com"], grant_existing_holders="true")
    assert ok.status_code == 200 and ok.json()["matched_users_count"] == 1
    forum.run_jobs()
    assert forum.badges_of("alice").count("Multiple") == 3


def test_no_file_unknown_badge_not_csv_and_more_than_50000_entries_are_400(api, held):
    badge_id = make_badge(api)
    assert api.post(f"/admin/badges/award/{badge_id}.json", data={"file": "alice"}).status_code == 400  # not an upload
    assert award(api, 999, ["alice"]).status_code == 400
    assert award(api, "fake_id", ["alice"]).status_code == 400
    png = {"file": ("cropped.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", "image/png")}
    assert api.post(f"/admin/badges/award/{badge_id}.json", files=png).status_code == 400
    too_many = award(api, badge_id, [f"user{i}" for i in range(50_001)])
    assert too_many.status_code == 400 and too_many.json()["errors"]
    assert award(api, badge_id, [f"user{i}" for i in range(50_000)]).status_code == 200


def test_replace_badge_owners_revokes_every_holder_first(api, held):
    forum = held
    forum.add_user("alice", "alice@example.com")
    forum.add_user("carol", "carol@example.com")
    badge_id = make_badge(api)
    api.post("/user_badges.json", json={"username": "carol", "badge_id": badge_id})

    award(api, badge_id, ["alice"], replace_badge_owners="true")
    forum.run_jobs()
    assert forum.badges_of("carol") == [] and forum.badges_of("alice") == ["Verified Buyer"]


def test_only_admins_see_the_route(api, held):
    forum = held
    forum.add_user("mod", "mod@example.com", moderator=True)
    badge_id = make_badge(api)
    refused = award(
        api.__class__(base_url=api.base_url, headers={"Api-Key": KEY, "Api-Username": "mod"}), badge_id, ["x"]
    )
    assert refused.status_code == 404  # Admin::AdminController: a moderator gets 404


def test_the_jobs_run_by_themselves_after_the_delay(api, forum):
    forum.mass_award_delay = 0.05
    forum.add_user("alice", "alice@example.com")
    badge_id = make_badge(api)
    award(api, badge_id, ["alice"])
    import time

    deadline = time.monotonic() + 5
    while forum.badges_of("alice") == [] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert forum.badges_of("alice") == ["Verified Buyer"]

"""Issue 17, insights: a community seeded week by week (Chinese and English) read through ``cardbridge sync`` (the heat
stage) and shown by ``cardbridge insights`` — a rising term, products talked about, the two cross lists with paid
orders — and ``cardbridge insights demand``: a request matched to its product, one for something the shop does not
sell, and the verified buyers who took part. Real shop and forum over loopback, a real SQLite store, real processes."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect, select, text

from tests.e2e.conftest import ENV
from tests.e2e.test_cli_json import document
from tests.e2e.test_daemon import free_port, wait_for

INSIGHTS = '\n[insights]\nfloor = 3\nweeks = 6\ntrailing_weeks = 4\nforum = { category = "需求", tag = "request" }\n'


def monday(now: datetime) -> datetime:
    start = now - timedelta(days=now.weekday())
    return start.replace(hour=0, minute=0, second=0, microsecond=0)


class Community:
    """Members writing on the sandbox forum through its API, at the times the test gives."""

    def __init__(self, world) -> None:
        self.url = world.forum_server.url

    def post(self, who: str, when: datetime, raw: str, *, title: str | None = None, topic: int | None = None,
             category: str = "General", tags: tuple[str, ...] = ()) -> dict:  # fmt: skip
        body: dict = {"raw": raw, "created_at": when.isoformat()}
        if topic is None:
            body.update(title=title or raw[:40], category=category, tags=list(tags))
        else:
            body["topic_id"] = topic
        headers = {"Api-Key": ENV["DISCOURSE_API_KEY"], "Api-Username": who}
        response = httpx.post(f"{self.url}/posts.json", json=body, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def like(self, who: str, post_id: int) -> None:
        headers = {"Api-Key": ENV["DISCOURSE_API_KEY"], "Api-Username": who}
        response = httpx.post(
            f"{self.url}/post_actions.json", json={"id": post_id, "post_action_type_id": 2}, headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def seeded(world):
    return seed(world)


def seed(world) -> dict[str, str]:
    forum, shop = world.forum, world.shop
    forum.rate_limit_per_minute = None  # the seeding below is an import's worth of requests
    forum.rate_limit_create_topic = forum.rate_limit_create_post = 0
    forum.rate_limit_new_user_create_topic = forum.rate_limit_new_user_create_post = 0
    forum.min_topic_title_length = forum.min_first_post_length = forum.min_post_length = 4
    forum.allow_duplicate_topic_titles = True
    forum.add_category("需求")
    forum.add_category("General")
    for name in ("alice", "bob", "carol", "dave", "erin"):
        forum.add_user(name, f"{name}@example.com", trust_level=1)
    genshin = shop.add_product("原神月卡", "30.00")
    netflix = shop.add_product("Netflix Premium", "45.00")
    spotify = shop.add_product("Spotify Family", "25.00")
    shop.add_order(email="alice@example.com", items=[(genshin, 1)], status="completed")
    shop.add_order(email="bob@example.com", items=[(genshin, 1), (spotify, 1)], status="completed")
    shop.add_order(email="carol@example.com", items=[(spotify, 1)], status="completed")
    shop.add_order(email="dave@example.com", items=[(spotify, 1)], status="completed")
    shop.add_order(email="erin@example.com", items=[(netflix, 1)], status="cancelled")  # never paid
    world.write_config(extra=INSIGHTS)

    now = datetime.now(UTC)
    this_week = monday(now)
    today = this_week + (now - this_week) / 2  # inside this week, never in the future
    community = Community(world)
    general = community.post("dave", this_week - timedelta(weeks=5, days=-1), "每周闲聊：大家最近在玩什么游戏？",
                             title="每周闲聊 Weekly chat")["topic_id"]  # fmt: skip
    history = {  # weeks ago → what members wrote; 原神月卡 steady, 补货 rare, Netflix talked about lately
        4: ["原神月卡 很好用，充值很快", "补货 速度还行", "Spotify works fine for me"],
        3: ["原神月卡 又买了一张", "anyone tried the new racing game"],
        2: ["原神月卡 到账很快", "补货 了吗", "Netflix Premium 有人用过吗"],
        1: ["原神月卡 推荐", "Netflix Premium 画质怎么样", "Netflix Premium works in 4K?"],
    }
    for weeks_ago, lines in history.items():
        day = this_week - timedelta(weeks=weeks_ago) + timedelta(days=2)
        for n, line in enumerate(lines):
            community.post(("alice", "bob", "carol")[n % 3], day + timedelta(hours=n), line, topic=general)
    for n, line in enumerate(["什么时候 补货 啊", "补货 之后通知一下", "求 补货，等了一周", "补货 太慢了 refund"]):
        community.post(
            ("bob", "carol", "dave", "erin")[n], today - timedelta(minutes=10 * (n + 1)), line, topic=general
        )
    community.post("erin", today - timedelta(minutes=5), "Netflix Premium 有货吗", topic=general)

    asked = community.post("dave", today - timedelta(hours=3), "想要 原神 月卡 的大包装，能不能上架？",
                           title="求原神 月卡 大包装", category="需求")  # fmt: skip
    community.post("alice", today - timedelta(hours=2), "同求，我每个月都买", topic=asked["topic_id"])
    community.post("bob", today - timedelta(hours=1), "+1 我也想要", topic=asked["topic_id"])
    for who in ("carol", "erin"):
        community.like(who, asked["id"])
    forum.add_views(asked["topic_id"], 80)
    xbox = community.post("erin", today - timedelta(hours=4), "Would buy Xbox Game Pass codes every month.",
                          title="Please sell Xbox Game Pass", tags=("request",))  # fmt: skip
    forum.add_views(xbox["topic_id"], 12)
    return {"genshin": str(genshin), "netflix": str(netflix), "spotify": str(spotify),
            "asked": str(asked["topic_id"]), "xbox": str(xbox["topic_id"])}  # fmt: skip


def test_rising_terms_products_and_both_cross_lists(world, seeded):
    run = world.cli("sync")
    assert run.code == 0, run.output
    run = world.cli("insights", "--json")
    assert run.code == 0, run.output
    doc = document(run, "insights")

    rising = [r["term"] for r in doc["rising"]]
    assert rising[0] == "补货", doc["rising"]  # 4 posts this week against 0.5 a week before
    assert "原神月卡" not in rising  # talked about every week: never "rising"
    top = doc["rising"][0]
    assert top["this_week"] == 4 and top["trailing_average"] == 0.5 and top["ratio"] == 4.0
    talked = {p["name"]: p for p in doc["most_talked_about"]}
    assert talked["原神月卡"]["mentions"] == 5 and talked["原神月卡"]["paid_orders"] == 2  # "原神 月卡" counts too
    assert talked["Netflix Premium"]["mentions"] == 4
    assert [(p["name"], p["mentions"], p["paid_orders"]) for p in doc["talked_about_not_selling"]] == [
        ("Netflix Premium", 4, 0)
    ]
    assert [(p["name"], p["mentions"], p["paid_orders"]) for p in doc["selling_not_talked_about"]] == [
        ("Spotify Family", 0, 3)
    ]  # "Spotify works fine" names no product: its name is two words
    genshin = next(t for t in doc["products"] if t["name"] == "原神月卡")
    assert genshin["weekly"][-5:] == [1, 1, 1, 1, 1]

    again = world.cli("sync")  # nothing new: the cursor keeps the counts as they are
    assert again.code == 0, again.output
    assert document(world.cli("insights", "--json"), "insights")["most_talked_about"] == doc["most_talked_about"]

    shown = world.cli("insights")
    assert shown.code == 0 and "补货" in shown.stdout and "Talked about but not selling" in shown.stdout

    # Only counts were kept: no table holds what members wrote.
    engine = create_engine(f"sqlite:///{world.db_path}")
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            dump = " ".join(str(row) for row in conn.execute(text(f'SELECT * FROM "{table}"')))
            assert "等了一周" not in dump and "every month" not in dump, table
        assert conn.execute(select(text("count(*)")).select_from(text("insight_terms"))).scalar_one() > 0
    engine.dispose()


def test_cross_lists_with_the_store_on_postgresql(pg_world):
    seed(pg_world)
    pg_world.config_path.write_text(
        pg_world.config_path.read_text().replace('url = "sqlite:///state.db"', f'url = "{pg_world.pg_url}"'),
        encoding="utf-8",
    )
    assert pg_world.cli("sync").code == 0
    doc = document(pg_world.cli("insights", "--json"), "insights")
    assert doc["rising"][0]["term"] == "补货"
    assert [p["name"] for p in doc["talked_about_not_selling"]] == ["Netflix Premium"]
    assert [p["name"] for p in doc["selling_not_talked_about"]] == ["Spotify Family"]
    assert not pg_world.db_path.exists()  # the counts are in PostgreSQL


def test_demand_posts_ranked_and_matched_with_verified_buyers(world, seeded):
    assert world.cli("sync").code == 0
    run = world.cli("insights", "demand", "--json")
    assert run.code == 0, run.output
    doc = document(run, "insights-demand")
    ranked = [(d["topic_id"], d["product"]["name"] if d["product"] else None) for d in doc["demand"]]
    assert ranked == [(seeded["asked"], "原神月卡"), (seeded["xbox"], None)]
    first, second = doc["demand"]
    assert (first["likes"], first["replies"], first["views"]) == (2, 2, 80)
    assert first["verified_buyers"] == 3  # dave asked, alice and bob replied: all three have paid orders
    assert second["tags"] == ["request"] and second["verified_buyers"] == 0
    text_run = world.cli("insights", "demand")
    assert text_run.code == 0 and "no product" in text_run.stdout


def test_insights_without_the_section_exits_2_naming_it(world):
    run = world.cli("insights")
    assert run.code == 2 and "[insights]" in run.stderr


def _browser() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return browser


def _chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"]  # fmt: skip
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=60)


def _pixels_near(shot: Path, rgb: tuple[int, int, int], tolerance: int = 30) -> int:
    import numpy
    from PIL import Image

    with Image.open(shot) as image:
        pixels = numpy.asarray(image.convert("RGB"), dtype=numpy.int16)
    return int((numpy.abs(pixels - numpy.array(rgb, dtype=numpy.int16)) <= tolerance).all(axis=2).sum())


def test_insights_page_on_the_daemon_in_a_real_browser(world, seeded, tmp_path):
    """The operator's /insights page: charts drawn on the server show in Chromium (the demand ranking's green bar for
    a request the shop can serve, red for one it cannot), member text stays text, and the token guards it."""
    browser = _browser()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    hostile = "<img src=x onerror=alert(1)> Steam 礼品卡"
    Community(world).post("erin", datetime.now(UTC) - timedelta(minutes=1), "有人想要 Steam 礼品卡吗", title=hostile,
                          category="需求")  # fmt: skip
    world.write_config(
        extra=INSIGHTS
        + f'[schedule]\nsync_every = 3600\nreconcile_every = 3600\nretry_every = 3600\n[server]\nlisten = "127.0.0.1:{port}"\n'
        + 'operator_token = "op-token-0123456789abcdef"\n'
    )
    process = world.spawn("run")
    try:
        assert wait_for(lambda: _last_pass(base), 30), "the daemon did not finish its first pass"
        assert httpx.get(base + "/insights", timeout=30).status_code == 401
        page = httpx.get(base + "/insights", headers={"Authorization": "Bearer op-token-0123456789abcdef"}, timeout=60)
        assert page.status_code == 200 and page.text.count("<svg") == 3
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text and "<img src=x" not in page.text

        # Chromium cannot send the bearer token from the command line: it reads the same page from a file.
        html = tmp_path / "insights.html"
        html.write_text(page.text, encoding="utf-8")
        dom = _chromium(browser, tmp_path / "profile", "--dump-dom", html.as_uri())
        assert "Talked about but not selling" in dom.stdout and "Netflix Premium" in dom.stdout
        assert "<img src=" not in dom.stdout  # the hostile title is text in the DOM, not an element
        shot = tmp_path / "insights.png"
        _chromium(browser, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2400", html.as_uri())
        assert shot.exists()
        assert _pixels_near(shot, (0x2E, 0x7D, 0x32)) > 500  # a matched request's bar
        assert _pixels_near(shot, (0xC6, 0x28, 0x28)) > 500  # "no product" bars
        assert _pixels_near(shot, (0x1F, 0x77, 0xB4)) > 100  # the first trend line (matplotlib's blue)
        if os.environ.get("CARDBRIDGE_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["CARDBRIDGE_KEEP_SCREENSHOT"])
    finally:
        process.kill()
        process.wait(10)


def test_html_report_file(world, seeded, tmp_path):
    assert world.cli("sync").code == 0
    report = tmp_path / "report.html"
    run = world.cli("insights", "--html", str(report))
    assert run.code == 0, run.output
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3
    assert "补货" in page and "Spotify Family" in page and "no product" in page
    assert "http" not in page.split("<body>")[0]  # nothing fetched: no remote font or stylesheet


def _last_pass(base: str) -> bool:
    try:
        return bool(httpx.get(base + "/healthz", timeout=1).json()["last_pass"])
    except httpx.HTTPError:
        return False

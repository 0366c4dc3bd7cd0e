"""`cardbridge demo`: zero config, ends with the member view and exit 0 (the README's run command)."""

import os
import subprocess
import sys


def test_demo_runs_end_to_end_and_shows_the_member_view():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDBRIDGE_")}
    env["COLUMNS"] = "160"
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", "demo"], capture_output=True, text=True, env=env, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "What forum members see after the backfill" in out and "Verified Buyer" in out
    assert "Review topics on the forum" in out and "Points" in out
    assert "links a Discord account" in out and out.count("“Your Discord account is linked”") == 2
    assert "What Discord members see" in out and "Patron (140 points), Verified Buyer" in out
    assert "verified_buyer=0, order_count=0" in out  # the refunded buyer's Linked Roles metadata
    assert "Review threads in #shop-reviews: 4" in out and "0 pings" in out
    assert "After the refund" in out
    assert "A third pass with nothing new: 0 write requests to the forum, 0 to Discord" in out
    assert "CardBridge status" in out
    # Issue 17: a product card, an announcement, and the insights summary.
    assert "is its product card" in out and "**Price:** 199\\.00" in out
    assert "announced in Shop news: “Price drop: Elden Ring Steam Key”; card edits now: 0" in out
    assert "Rising terms" in out and "补货" in out
    assert "Selling but not talked about" in out and "no product" in out

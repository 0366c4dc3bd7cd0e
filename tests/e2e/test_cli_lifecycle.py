"""Issue 14, the CLI's smaller faults: how commands start, show progress, stop and clean up (Ctrl-C, the demo's folder,
the daemon's listener and its start and stop lines)."""

from __future__ import annotations

import os
import pty
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def wait_for(predicate, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def buyers(world, count: int) -> None:
    key = world.shop.add_product("Steam 钱包充值卡 $20", "145.00")
    for i in range(count):
        world.shop.add_order(email=f"buyer{i}@example.com", items=[(key, 1)], status="completed")
        world.forum.add_user(f"buyer{i}", f"buyer{i}@example.com")


def test_ctrl_c_in_a_backfill_says_so_in_one_line_and_exits_130(world):
    buyers(world, 3)
    world.forum.knobs.add_fault(r".", kind="hang_before", seconds=60)  # the pass is inside a forum call
    process = world.spawn("backfill")
    assert world.forum.knobs.hung.wait(60), process.stderr.read() if process.poll() is not None else "no forum call"
    process.send_signal(signal.SIGINT)
    code = process.wait(30)
    err = process.stderr.read()
    assert code == 130, err
    assert "interrupted:" in err and "the outbox keeps what was not sent" in err
    assert "Traceback" not in err


def _demo_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDBRIDGE_")}
    env["COLUMNS"] = "160"
    env["TMPDIR"] = str(tmp)
    return env


def _interrupted_demo(tmp: Path, *args: str) -> tuple[int, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "demo", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_demo_env(tmp),
    )
    try:
        assert wait_for(lambda: any(tmp.glob("cardbridge-demo-*/cardbridge.toml")) or process.poll() is not None)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        process.send_signal(signal.SIGINT)
        return process.wait(60), process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_the_demo_removes_its_folder_also_on_ctrl_c_unless_kept(tmp_path):
    plain, kept = tmp_path / "plain", tmp_path / "kept"
    plain.mkdir()
    kept.mkdir()
    code, err = _interrupted_demo(plain)
    assert code == 130 and "interrupted:" in err, err
    assert list(plain.glob("cardbridge-demo-*")) == []
    code, err = _interrupted_demo(kept, "--keep")
    assert code == 130, err
    assert len(list(kept.glob("cardbridge-demo-*/cardbridge.toml"))) == 1


def test_a_finished_demo_leaves_no_folder_behind(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", "demo"],
        capture_output=True,
        text=True,
        env=_demo_env(tmp_path),
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Config written to" in done.stdout
    assert list(tmp_path.glob("cardbridge-demo-*")) == []


def run_in_terminal(command: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as its stdout and stderr (as an operator sees it); the text it showed."""
    master, slave = pty.openpty()
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    code = process.wait(timeout)
    os.close(master)
    return code, ANSI.sub("", b"".join(chunks).decode("utf-8", errors="replace"))


def test_backfill_progress_lines_name_their_unit_and_finish(world):
    buyers(world, 3)
    code, shown = run_in_terminal(world.command("backfill"), world.env(TERM="xterm"))
    assert code == 0, shown[-3000:]
    assert re.search(r"✓ reading shop orders.*\b3 orders read", shown), shown[-3000:]
    assert re.search(r"✓ planning.*\b\d+/\d+ customers planned", shown), shown[-3000:]
    assert re.search(r"✓ delivering to the community.*\b\d+/\d+ actions delivered", shown), shown[-3000:]
    assert "/?" not in shown  # no count against an unknown total


@pytest.fixture
def daemon_world(world):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        world.port = probe.getsockname()[1]
    world.write_config(
        extra=f"""
[schedule]
sync_every = 3600
reconcile_every = 3600
retry_every = 3600
[server]
listen = "127.0.0.1:{world.port}"
woocommerce_webhook_secret = "wc-hook-secret"
"""
    )
    return world


def _daemon_log(world, *args: str) -> str:
    """Start ``cardbridge run``, wait for its first pass, SIGTERM it; what it logged."""
    process = world.spawn(*args, "run")
    try:

        def first_pass() -> bool:
            try:
                return bool(httpx.get(f"http://127.0.0.1:{world.port}/healthz", timeout=1).json()["last_pass"])
            except (httpx.HTTPError, ValueError, KeyError):
                return process.poll() is not None

        assert wait_for(first_pass, 60) and process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        return process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_the_daemon_says_running_and_stopped_at_info_not_warning(daemon_world):
    world = daemon_world
    info = _daemon_log(world)  # the harness runs with --log-level info
    assert "cardbridge running" in info and "cardbridge stopped" in info
    quiet = _daemon_log(world, "--log-level", "warning")
    assert "cardbridge running" not in quiet and "cardbridge stopped" not in quiet


def test_a_busy_port_is_one_error_naming_the_key_and_nothing_runs(daemon_world):
    world = daemon_world
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", world.port))
        taken.listen()
        started = time.monotonic()
        run = world.cli("run")
    assert time.monotonic() - started < 60
    assert run.code == 1, run.output
    assert "[server] listen" in run.stderr and f"127.0.0.1:{world.port}" in run.stderr
    assert "running" not in run.output and "Traceback" not in run.output

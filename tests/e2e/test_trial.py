"""Issue 14, "tried as a new user would": the README's way from nothing to a running daemon with `check` green, on the
sandboxes, timed. `cardbridge sandbox --write-config` serves the sandbox shop and forum and writes their config;
`check` passes; the dry run plans; `run` serves /healthz with a finished pass; each is the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def cardbridge(*args: str, cwd, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDBRIDGE_")}
    return subprocess.run(
        [sys.executable, "-m", "connector.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_from_nothing_to_a_running_daemon_with_check_green(tmp_path):
    started = time.monotonic()
    port = free_port()
    command = [sys.executable, "-m", "connector.cli", "sandbox", "--write-config", "trial.toml"]
    sandbox = subprocess.Popen(
        [*command, "--listen-port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    daemon = None
    try:
        assert sandbox.stdout is not None
        facts = json.loads(sandbox.stdout.readline())
        assert facts["config"] == "trial.toml" and (tmp_path / "trial.toml").exists()

        check = cardbridge("--config", "trial.toml", "check", cwd=tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "✗" not in check.stdout and "All checks passed." in check.stdout

        dry = cardbridge("--config", "trial.toml", "backfill", "--dry-run", cwd=tmp_path)
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "Plan:" in dry.stdout and not (tmp_path / "cardbridge-trial.db").exists()

        daemon = subprocess.Popen(
            [sys.executable, "-m", "connector.cli", "--config", "trial.toml", "run"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        health: dict[str, object] = {}
        while time.monotonic() < deadline and not health.get("last_pass"):
            assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else ""
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health.get("last_pass") and health["health"] == "healthy", health
        status = cardbridge("--config", "trial.toml", "status", "--json", cwd=tmp_path)
        assert json.loads(status.stdout)["outbox"]["done"] > 0
        # The whole way takes seconds here; the bar for a person reading the README is ten minutes.
        assert time.monotonic() - started < 120
    finally:
        for process in (daemon, sandbox):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)

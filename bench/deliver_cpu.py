"""Local CPU per delivered single grant: what the connector process itself spends to deliver one action.

    .venv/bin/python bench/deliver_cpu.py                 # 10,000 orders → 1,000 buyers, one badge grant each
    .venv/bin/python bench/deliver_cpu.py --orders 2000   # a quick look

A backfill with per-user grants (``mass_award_threshold`` out of reach, as ``run.py``'s ``PER_USER_GRANTS``) against
the sandbox forum with no rate limit, in a subprocess, as ``cardbridge backfill`` runs. The subprocess wraps
``DeliverStage.run`` so the pass's other stages (pull, plan, match) are left out: the figure is the process CPU time
(user + system, ``time.process_time``) spent inside the deliver stage, divided by the single grants it delivered
(``POST /user_badges.json`` answered by the forum). Waiting on the socket costs no CPU, so the forum's own time is not
in it; the group adds (1,000 members per call) are, which makes the figure a little pessimistic.

A second run, under cProfile enabled only inside the deliver stage, gives the profile by own time (cProfile's overhead
inflates the total; the CPU figure comes from the first, unprofiled run).
"""

from __future__ import annotations

import argparse
import io
import json
import pstats
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from run import CARDBRIDGE, PER_USER_GRANTS, ROOT, Sandbox, write_config

#: Runs in the connector's subprocess: ``DeliverStage.run`` timed (and profiled when asked), then the CLI as usual.
WRAPPER = """
import atexit, cProfile, json, sys, time
from connector.flow import deliver

out, profiled = sys.argv[1], sys.argv[2] == "profile"
profile = cProfile.Profile()
spent = {"cpu": 0.0, "wall": 0.0, "delivered": 0}
original = deliver.DeliverStage.run

def timed(self, run):
    cpu, wall = time.process_time(), time.perf_counter()
    if profiled:
        profile.enable()
    try:
        return original(self, run)
    finally:
        if profiled:
            profile.disable()
        spent["cpu"] += time.process_time() - cpu
        spent["wall"] += time.perf_counter() - wall
        spent["delivered"] += run.report.delivered

def save():
    with open(out + ".json", "w") as f:
        json.dump(spent, f)
    if profiled:
        profile.dump_stats(out + ".prof")

deliver.DeliverStage.run = timed
atexit.register(save)
sys.argv = ["cardbridge", *sys.argv[3:]]
from connector.cli.commands import main
main()
"""


@dataclass
class DeliverCpu:
    orders: int
    grants: int
    delivered: int
    cpu_seconds: float
    wall_seconds: float
    profile: str

    @property
    def ms_per_grant(self) -> float:
        return self.cpu_seconds / max(self.grants, 1) * 1000

    def summary(self) -> str:
        return (
            f"{self.ms_per_grant:.2f} ms of CPU per delivered single grant: deliver stage {self.cpu_seconds:.2f} s CPU "
            f"({self.wall_seconds:.2f} s wall) for {self.grants:,} badge grants (POST /user_badges.json, one per "
            f"buyer) and {self.delivered - self.grants:,} group adds ({self.delivered:,} actions delivered), "
            f"backfill of {self.orders:,} orders, no rate limit"
        )


def _backfill(orders: int, profiled: bool) -> tuple[dict[str, float], int, str]:
    """One backfill with per-user grants; (what the wrapper measured, badge grants the forum saw, the profile)."""
    with Sandbox(orders) as sandbox, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_config(folder, sandbox.info, rpm=10_000_000, forum=PER_USER_GRANTS)
        out = folder / "deliver"
        mode = "profile" if profiled else "time"
        subprocess.run(
            [CARDBRIDGE[0], "-c", WRAPPER, str(out), mode, "--config", str(folder / "cardbridge.toml"), "backfill"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        spent = json.loads(out.with_suffix(".json").read_text())
        grants = sandbox.stats()["by_route"].get("POST /user_badges.json", 0)
        text = ""
        if profiled:
            buffer = io.StringIO()
            pstats.Stats(str(out.with_suffix(".prof")), stream=buffer).sort_stats("tottime").print_stats(15)
            lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
            start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
            text = "\n".join(line.replace(str(ROOT) + "/", "") for line in lines[start : start + 16])
    return spent, grants, text


def bench_deliver_cpu(orders: int = 10_000, profile: bool = True) -> DeliverCpu:
    """The deliver stage's CPU per single grant (unprofiled run) and, with ``profile``, its top 15 by own time."""
    spent, grants, _ = _backfill(orders, profiled=False)
    text = _backfill(orders, profiled=True)[2] if profile else ""
    return DeliverCpu(orders, grants, int(spent["delivered"]), spent["cpu"], spent["wall"], text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000, help="shop orders (one buyer per 10)")
    parser.add_argument("--no-profile", action="store_true", help="only the CPU figure")
    args = parser.parse_args()
    result = bench_deliver_cpu(args.orders, profile=not args.no_profile)
    print(result.summary())
    if result.profile:
        print(f"\ncProfile of the deliver stage only (N = {args.orders:,} orders), by own time:\n")
        print(result.profile)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

"""Who a process is, in claims and heartbeats: ``host:pid:start``, where ``start`` is random per process start.

``host:pid`` alone is not enough: a daemon in a container is PID 1 under a hostname the container keeps, so a daemon
its restart policy started again after a crash was the same ``host:pid`` as the one that crashed. It then took the
dead one's outbox claims for its own (never verified them) and moved its webhook claims with its heartbeat (never
gave them up). With the random part, a claim of an earlier start of this pid on this host is known to be gone.

Claims written before the random part (``host:pid``) are still read: :func:`parse` gives ``start`` as ``""``.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import NamedTuple

_started: dict[int, str] = {}


class ProcessId(NamedTuple):
    host: str
    pid: int
    #: Random per process start; ``""`` in a claim written before it was recorded.
    start: str


def this_process() -> str:
    """This process's name in claims and heartbeats (the same for the life of the process, also after a fork's
    parent goes on: a forked child has another pid, so another name)."""
    pid = os.getpid()
    start = _started.setdefault(pid, secrets.token_hex(4))
    return f"{socket.gethostname()}:{pid}:{start}"


def parse(owner: str) -> ProcessId | None:
    """``host:pid:start`` (or an older ``host:pid``) as its parts; None for anything else."""
    parts = owner.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return ProcessId(parts[0], int(parts[1]), parts[2])
    host, _, pid = owner.rpartition(":")
    if host and pid.isdigit():
        return ProcessId(host, int(pid), "")
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def gone_here(owner: str) -> bool | None:
    """Whether ``owner`` is known to be gone, asked on this host: True when it ran here and its process ended (or this
    pid is another start now), False when it runs; None when it ran on another host (it cannot be asked here)."""
    me = this_process()
    if owner == me:
        return False
    found = parse(owner)
    if found is None:
        return True
    if found.host != socket.gethostname():
        return None
    if found.pid == os.getpid():
        return True  # this pid, an earlier start (a container restarted as PID 1 again)
    return not pid_alive(found.pid)

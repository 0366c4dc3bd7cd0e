"""The ``cardbridge`` command: every command group, registered on the app (``[project.scripts]`` points at ``main``)."""

from __future__ import annotations

import signal
from types import FrameType

from connector.cli import admin, check, insights, link, redemptions, sandbox, sync
from connector.cli.app import app, errors

#: The modules whose commands make up ``cardbridge`` (imported for their registrations).
COMMANDS = (sync, admin, check, link, redemptions, insights, sandbox)

#: Exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


class _Interrupt:
    """Notes that Ctrl-C was pressed, then interrupts as Python does (``KeyboardInterrupt``), so every ``finally``
    runs (stores closed, the demo's folder removed) before the one line is printed. ``cardbridge run`` installs its
    own handler: the daemon stops gently and exits 0."""

    seen = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.seen = True
        signal.default_int_handler(signum, frame)


def main() -> None:
    interrupt = _Interrupt()
    signal.signal(signal.SIGINT, interrupt)
    try:
        app()
    except SystemExit as done:
        # Typer turns KeyboardInterrupt into a silent exit 130; say what happened to what was in flight.
        if interrupt.seen and done.code == INTERRUPTED:
            errors.print("interrupted: stopped before the end (the outbox keeps what was not sent)", style="yellow")
        raise


if __name__ == "__main__":
    main()

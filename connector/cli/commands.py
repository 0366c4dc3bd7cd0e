"""The ``cardbridge`` command: every command group, registered on the app (``[project.scripts]`` points at ``main``)."""

from __future__ import annotations

from connector.cli import admin, link, sandbox, sync
from connector.cli.app import app

#: The modules whose commands make up ``cardbridge`` (imported for their registrations).
COMMANDS = (sync, admin, link, sandbox)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

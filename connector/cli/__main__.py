"""``python -m connector.cli``: the ``cardbridge`` command."""

from connector.cli.commands import main

main()

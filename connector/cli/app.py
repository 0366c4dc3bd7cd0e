"""The Typer app, its global options, and what every command shares: the config, the store, the connector, the
consoles. The commands live in one module per group and register on :data:`app` (see :mod:`connector.cli.commands`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.text import Text

from connector import __version__
from connector.core.config import Config, ConfigError, load_config
from connector.core.logs import configure
from connector.flow import Connector
from connector.state import State

app = typer.Typer(
    help="CardBridge: verified-buyer badges, groups and roles for your shop's community.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help and usage errors as plain text: ``[link]``, ``[policy]`` and ``[reviews]`` are config sections, not markup.
    rich_markup_mode=None,
)


def _console(stream: str) -> Console:
    """A console that never reads markup (config names and shop or forum text are printed as they are; colour is
    given with ``style=``) and, when the output is not a terminal (cron, a pipe), never wraps a line."""
    is_terminal = (sys.stderr if stream == "stderr" else sys.stdout).isatty()
    return Console(stderr=stream == "stderr", markup=False, soft_wrap=not is_terminal)


console = _console("stdout")
errors = _console("stderr")

#: The values ``--log-level`` takes.
LOG_LEVELS = ("debug", "info", "warning", "error")


class _Options:
    config_path: str | None = None


options = _Options()


def _version(value: bool) -> None:
    if value:
        console.print(f"cardbridge {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    config: str | None = typer.Option(
        None, "--config", "-c", help="Config file (TOML). Defaults to $CARDBRIDGE_CONFIG.", show_default=False
    ),
    log_level: str = typer.Option("warning", "--log-level", help="debug, info, warning or error."),
    log_json: bool | None = typer.Option(
        None, "--log-json/--log-console", help="Log format; JSON by default when stderr is not a terminal."
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    options.config_path = config
    if log_level.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"{log_level!r}: use one of {', '.join(LOG_LEVELS)}", param_hint="'--log-level'")
    configure(level=log_level, json=log_json)


def fail(message: str | Text, code: int) -> typer.Exit:
    """Print ``message`` on stderr (as text: never read as markup); the exit to raise (``raise fail(...)``)."""
    errors.print(message, highlight=False)
    return typer.Exit(code)


def config_error(error: ConfigError) -> typer.Exit:
    """One line naming the key (the message may quote the operator's own text: shown as it is)."""
    return fail(Text.assemble(("config error:", "bold red"), f" {error}"), 2)


def load() -> Config:
    """The config; an invalid one exits 2 with one line naming the key."""
    try:
        return load_config(options.config_path)
    except ConfigError as error:
        raise config_error(error) from None


def open_store() -> State:
    """The state store alone: for commands that open no shop or community client."""
    return State.open(load().state_url)


@contextmanager
def open_connector() -> Iterator[Connector]:
    """The configured connector (adapters opened and checked), closed on the way out."""
    config = load()
    try:
        connector = Connector(config)
    except ConfigError as error:
        raise config_error(error) from None
    try:
        yield connector
    finally:
        connector.close()

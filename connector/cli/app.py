"""The Typer app, its global options, and what every command shares: the config, the store, the connector, the
consoles. The commands live in one module per group and register on :data:`app` (see :mod:`connector.cli.commands`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

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
)

console = Console()
errors = Console(stderr=True)


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
    configure(level=log_level, json=log_json)


def fail(message: str, code: int) -> typer.Exit:
    """Print ``message`` on stderr; the exit to raise (``raise fail(...)``)."""
    errors.print(message, highlight=False)
    return typer.Exit(code)


def load() -> Config:
    """The config; an invalid one exits 2 with one line naming the key."""
    try:
        return load_config(options.config_path)
    except ConfigError as error:
        raise fail(f"[bold red]config error:[/] {error}", 2) from None


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
        raise fail(f"[bold red]config error:[/] {error}", 2) from None
    try:
        yield connector
    finally:
        connector.close()

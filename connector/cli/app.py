"""The Typer app, its global options, and what every command shares: the config, the store, the connector, the
consoles. The commands live in one module per group and register on :data:`app` (see :mod:`connector.cli.commands`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import typer
from rich.console import Console
from rich.text import Text

from connector import __version__
from connector.core.config import Config, ConfigError, LocalConfig, Scope, load_config
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


def load(scope: Literal[Scope.ALL, Scope.PASS] = Scope.ALL) -> Config:
    """The config as ``scope`` reads it (:mod:`connector.core.config_scope`; by default every section and secret, as
    ``run`` and ``check`` need it); an invalid one exits 2 with one line naming the key."""
    try:
        return load_config(options.config_path, scope)
    except ConfigError as error:
        raise config_error(error) from None


def load_local() -> LocalConfig:
    """``[state]`` and ``[reviews] hold`` alone: the other sections (and their secrets) are not read, so the state
    store can be inspected while the shop or a community is still being configured."""
    try:
        return load_config(options.config_path, Scope.LOCAL)
    except ConfigError as error:
        raise config_error(error) from None


def open_store() -> State:
    """The state store alone: for commands that open no shop or community client (they read only ``[state]``)."""
    return State.open(load_local().state_url)


@contextmanager
def open_connector(scope: Literal[Scope.ALL, Scope.PASS] = Scope.PASS) -> Iterator[Connector]:
    """The configured connector (adapters opened and checked), closed on the way out. It reads what a pass uses
    (not the daemon's ``[server]`` secrets) unless the caller asks for ``Scope.ALL`` (``run``)."""
    config = load(scope)
    try:
        connector = Connector(config)
    except ConfigError as error:
        raise config_error(error) from None
    try:
        yield connector
    finally:
        connector.close()

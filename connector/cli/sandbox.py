"""The commands that run on loopback sandboxes: ``demo`` (zero config, the whole story) and ``sandbox`` (serve the
fake shop, forum and Discord to try a config by hand). The only CLI commands that load :mod:`sandbox`, and only when
they run."""

from __future__ import annotations

from pathlib import Path

import typer

from connector.cli.app import app, console, fail


@app.command()
def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the demo's folder (its config and state store) at the end."),
) -> None:
    """Zero config: run CardBridge against a sandbox shop and forum on loopback and show the result."""
    from connector.cli.demo import run_demo

    raise typer.Exit(run_demo(console, keep=keep))


def _bucket(text: str) -> tuple[int, float]:
    try:
        count, _, seconds = text.partition("/")
        return int(count), float(seconds or "1")
    except ValueError:
        raise fail("--discord-bucket: use N/SECONDS, e.g. 25/1", 2) from None


@app.command()
def sandbox(
    orders: int = typer.Option(0, help="Generate this many orders (0: the small demo catalogue)."),
    shop_port: int = typer.Option(0, help="Port of the sandbox shop (0: any free port)."),
    forum_port: int = typer.Option(0, help="Port of the sandbox forum (0: any free port)."),
    rate_limit: int | None = typer.Option(None, help="Forum admin-API limit, requests per minute (default: none)."),
    latency: float = typer.Option(0.0, help="Seconds added to every sandbox response."),
    forum_users: bool = typer.Option(True, help="Give every buyer a forum account with the same email."),
    discord_bucket: str | None = typer.Option(
        None,
        help="Also serve a sandbox Discord whose per-route buckets allow N requests per S seconds ('N/S'); "
        "every buyer is a member, with the id member_base + their index.",
    ),
    write_config: Path | None = typer.Option(
        None,
        "--write-config",
        metavar="FILE",
        help="Also write a config for these sandboxes to FILE (try `cardbridge --config FILE check`, then `run`).",
    ),
    listen_port: int = typer.Option(8080, help="With --write-config: the daemon's port in that config."),
) -> None:
    """Serve the sandbox WooCommerce shop and Discourse forum (and Discord) on 127.0.0.1 until interrupted (prints
    one JSON line)."""
    from sandbox.serve import serve

    serve(
        orders=orders,
        shop_port=shop_port,
        forum_port=forum_port,
        rate_limit=rate_limit,
        forum_users=forum_users,
        latency=latency,
        discord_bucket=_bucket(discord_bucket) if discord_bucket is not None else None,
        write_config=write_config,
        listen_port=listen_port,
    )

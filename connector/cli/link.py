"""Linking a customer to a community account by hand: ``link``, ``unlink``, and ``link-url`` (a signed link to the
member link page)."""

from __future__ import annotations

import typer

from adapters.base import UserLookup
from connector.cli.app import app, console, errors, fail, open_connector
from connector.cli.report import print_summary
from connector.flow import Connector, describe_customer
from connector.server.linking import LinkService
from connector.state.identities import Proof


def _community_of(connector: Connector, kind: str, name: str | None) -> str:
    names = [n for n, c in connector.config.communities.items() if c.kind == kind]
    if name:
        if name not in names:
            raise fail(f"No {kind} community named {name!r} (known: {', '.join(names) or 'none'}).", 2)
        return name
    if len(names) != 1:
        raise fail(f"Say which {kind} community with --community ({', '.join(names) or 'none configured'}).", 2)
    return names[0]


def _customer(connector: Connector, text: str) -> str:
    keys = connector.store.identities.find_customers(text)
    if not keys:
        raise fail(f"No customer matches {text!r} (run `cardbridge sync` first?).", 1)
    return keys[0]


@app.command()
def link(
    customer: str = typer.Option(..., "--customer", help="Shop customer id (26 or c:26) or email."),
    discord_user: str | None = typer.Option(None, "--discord-user", help="Discord user id (a number)."),
    forum_user: str | None = typer.Option(None, "--forum-user", help="Discourse username."),
    community: str | None = typer.Option(None, "--community", help="Which community, when there are several."),
) -> None:
    """Link a shop customer to a Discord or Discourse account; a previous account loses the managed grants.

    The admin's link is the strongest proof: it moves any link, and only it moves a link made by a signed link or a
    verified email.
    """
    if bool(discord_user) == bool(forum_user):
        raise fail("Give exactly one of --discord-user or --forum-user.", 2)
    with open_connector() as connector:
        key = _customer(connector, customer)
        if discord_user:
            if not discord_user.isdigit():
                raise fail("--discord-user is the user's id (a number; Developer Mode > Copy User ID).", 2)
            name, user_id, username = _community_of(connector, "discord", community), discord_user, discord_user
        else:
            name = _community_of(connector, "discourse", community)
            adapter = connector.communities[name]
            found = adapter.find_user(forum_user or "") if isinstance(adapter, UserLookup) else None
            if found is None:
                raise fail(f"No user named {forum_user!r} on {name}.", 1)
            user_id, username = found.user_id, found.username
        previous = connector.store.identities.link(name, key, user_id, username, proof=Proof.ADMIN)
        report = connector.run_pass()
    console.print(
        f"{describe_customer(key, None)} linked to {username} on {name}"
        + (f" (was {previous}; its grants are revoked)" if previous else "")
        + "."
    )
    print_summary(console, report, "sync")
    raise typer.Exit(0 if report.ok else 1)


@app.command("link-url")
def link_url(
    customer: str = typer.Option(..., "--customer", help="Shop customer id (26 or c:26) or email."),
) -> None:
    """Print a signed link to the member link page for this customer (for the shop's order email; see [link]).

    The link works once, within link_ttl_hours; it moves a link made with an order number (not one made by a verified
    email or another signed link: that takes `cardbridge link`).
    """
    with open_connector() as connector:
        link = connector.config.link
        if link is None:
            raise fail("No [link] section in the config: the link page is off (see config.example.toml).", 2)
        key = _customer(connector, customer)
        url = LinkService(connector.config, connector.store, connector.communities[link.community]).link_url(key)
    # Printed bare, so a shop's mail template can take it from stdout.
    print(url)
    errors.print(f"Valid for {link.link_ttl_hours} hours, for {describe_customer(key, None)}.")


@app.command()
def unlink(
    customer: str = typer.Option(..., "--customer", help="Shop customer id or email."),
    community: str = typer.Option(..., "--community", help="The community to unlink from."),
) -> None:
    """Unlink a customer from a community account; the account loses the grants CardBridge gave it."""
    with open_connector() as connector:
        keys = connector.store.identities.find_customers(customer)
        if not keys or community not in connector.communities:
            raise fail("Unknown customer or community.", 1)
        previous = connector.store.identities.link(community, keys[0], None, None)
        report = connector.run_pass()
    console.print(f"Unlinked {describe_customer(keys[0], None)} from {previous or 'nothing'} on {community}.")
    raise typer.Exit(0 if report.ok else 1)

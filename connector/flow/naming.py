"""How the face names a customer without showing an email."""

from __future__ import annotations

from connector.core.logs import mask_email


def describe_customer(key: str, email: str | None) -> str:
    """The shop id (``customer #12``), or a masked email for guests."""
    if key.startswith("c:"):
        return f"customer #{key[2:]}"
    return mask_email(email or key[2:])

"""What a community's ``check()`` needs to know beyond its own ``[communities.<name>]`` table.

The adapters are built with their settings and the rules only (``open_community``); whether ``[reviews]`` posts on
this community, whether ``[points]`` sends score events or tier roles there, and whether ``[link]`` sends members
through its OAuth2 application live elsewhere in the config. ``cardbridge check`` passes them as one
:class:`CheckContext` (``adapter.check(CheckContext.of(name, config))``); ``check()`` without it tests only what the
rules need.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.core.config import Config, PointsTarget, ReviewTarget


@dataclass(frozen=True)
class CheckContext:
    """``review``: the ``[reviews.communities.<name>]`` target, when reviews are posted there. ``points``: the
    ``[points.communities.<name>]`` target. ``link_redirect_uri``: ``<public_url>/link/callback`` when ``[link]``
    names this community (the OAuth2 redirect its application must list)."""

    review: ReviewTarget | None = None
    points: PointsTarget | None = None
    link_redirect_uri: str | None = None

    @classmethod
    def of(cls, name: str, config: Config) -> CheckContext:
        review = config.reviews.communities.get(name) if config.reviews else None
        points = config.points.communities.get(name) if config.points else None
        link = config.link if config.link is not None and config.link.community == name else None
        redirect = f"{link.public_url}/link/callback" if link else None  # as connector/server/linking.py sends it
        return cls(review=review, points=points, link_redirect_uri=redirect)

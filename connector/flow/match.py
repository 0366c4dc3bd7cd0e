"""Match: customers waiting for a community account are looked up (Discourse: by email; Discord: links only).

A look-up that fails stops matching on that community for this pass; the customers wait for the next one. Nothing
is recorded for them: ``attempts`` counts look-ups the community answered, so they stay "waiting for a look-up" in
``status``, not "unmatched" (which is what an answer without an account makes them).
"""

from __future__ import annotations

from datetime import timedelta

import httpx

from connector.core.clock import utcnow
from connector.core.http import RemoteError
from connector.core.logs import log
from connector.features.base import Run


class MatchStage:
    name = "match"

    def run(self, run: Run) -> None:
        now = utcnow()
        identities, report = run.state.identities, run.report
        for name, community in run.communities.items():
            due = identities.identities_due(name, now)
            if not due:
                continue
            emails = {key: email for key, email in due if email}
            try:
                matches = community.match_users(emails)
            except (RemoteError, httpx.HTTPError) as error:
                report.errors.append(f"{name}: identity look-up failed: {error}")
                log.error("identity look-up failed", community=name, error=str(error))
                continue
            unmatched = [key for key, _ in due if key not in matches]
            retry = timedelta(seconds=run.config.communities[name].unmatched_retry_seconds)
            identities.record_matches(name, {k: (m.user_id, m.username) for k, m in matches.items()}, unmatched, retry)
            report.matched += len(matches)
            report.unmatched += len(unmatched)
            log.info("identities resolved", community=name, matched=len(matches), unmatched=len(unmatched))

"""Where a match is announced: a Prefect event, the campaign's webhook, an email; once each.

Every match claims a `watch_alerts` row (campaign, target, video) before any channel is tried,
and marks it sent after: a rerun, a new example photo or a second worker never alerts twice for
the same video and target, and a run killed between the claim and the mark alerts again on the
next run (at least once, never zero times). With a daily digest the email waits for
`send_digest`; the event and the webhook still go out at once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from gettok.db import session_scope
from gettok.models.schema import Video, WatchAlert, utcnow
from gettok.retry import retrying
from gettok.tasks.watch.email_alert import EmailAlerts, digest_email, match_email

log = logging.getLogger(__name__)

MATCH_EVENT = "gettok.watch.match"
DUPLICATE = {"event": "duplicate", "webhook": "duplicate", "email": "duplicate"}


class WebhookFailed(Exception):
    def __init__(self, status: int):
        super().__init__(f"HTTP {status}")
        self.status = status


def _webhook_worth_retrying(exc: Exception) -> bool:
    """Network errors, 429 and 5xx: a 4xx other than 429 cannot succeed."""
    if isinstance(exc, WebhookFailed):
        return exc.status == 429 or exc.status >= 500
    return isinstance(exc, httpx.TransportError)


class Alerts:
    """The channels of one campaign's alerts, and the database that remembers what was sent."""

    def __init__(
        self,
        webhook_url: str | None = None,
        *,
        campaign: str = "",
        email: EmailAlerts | None = None,
        database_url: str | None = None,
        digest: bool = False,
        web_url: str = "https://www.tiktok.com",
        timeout_s: float = 10.0,
    ):
        self.webhook_url, self.campaign, self.email = webhook_url, campaign, email
        self.database_url, self.digest, self.timeout_s = database_url, digest, timeout_s
        self.web_url = web_url.rstrip("/")

    def announce(
        self,
        video_id: int,
        target: str,
        details: dict[str, Any],
        picture: bytes | None = None,
    ) -> dict[str, str]:
        """Alert on every channel, unless this video was already announced for this target."""
        if self.database_url:
            details = {"url": self.video_url(video_id), **details}
        if self.database_url and not self._claim(video_id, target, details):
            return dict(DUPLICATE)
        payload = {
            "event": MATCH_EVENT,
            "campaign": self.campaign,
            "video_id": str(video_id),
            "target": target,
            **details,
        }
        outcome = {
            "event": self._emit(video_id, target, payload),
            "webhook": self._post(payload),
            "email": self._mail(payload, picture),
        }
        if self.database_url:
            with session_scope(self.database_url) as session:
                session.execute(
                    update(WatchAlert)
                    .where(*self._row(video_id, target))
                    .values(sent_at=utcnow(), channels=outcome)
                )
        return outcome

    def video_url(self, video_id: int) -> str:
        """The video's page, as a journalist opens it (`@username/video/id`)."""
        with session_scope(self.database_url) as session:
            username = session.scalar(select(Video.username).where(Video.id == video_id))
        return f"{self.web_url}/@{(username or 'user').replace(chr(0), '')}/video/{video_id}"

    def _row(self, video_id: int, target: str) -> tuple:
        return (
            WatchAlert.campaign == self.campaign,
            WatchAlert.target == target,
            WatchAlert.video_id == video_id,
        )

    def _claim(self, video_id: int, target: str, details: dict[str, Any]) -> bool:
        """True when this run should send: a new match, or one a killed run left unsent."""
        row = WatchAlert(
            campaign=self.campaign,
            target=target,
            video_id=video_id,
            timestamp_s=details.get("timestamp_s"),
            score=details.get("score"),
            details=details,
        )
        try:
            with session_scope(self.database_url) as session:
                session.add(row)
            return True
        except IntegrityError:
            with session_scope(self.database_url) as session:
                sent = session.scalar(
                    select(WatchAlert.sent_at).where(*self._row(video_id, target))
                )
            return sent is None

    def _emit(self, video_id: int, target: str, payload: dict[str, Any]) -> str:
        from prefect.context import FlowRunContext, TaskRunContext
        from prefect.events import emit_event

        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            # Outside a run there is no server to tell (and emit_event would start one).
            return "not emitted: outside a Prefect run"
        try:
            event = emit_event(
                event=MATCH_EVENT,
                resource={
                    "prefect.resource.id": f"gettok.video.{video_id}",
                    "prefect.resource.name": f"video {video_id}",
                },
                related=[
                    {
                        "prefect.resource.id": f"gettok.campaign.{self.campaign}",
                        "prefect.resource.role": "campaign",
                    },
                    {
                        "prefect.resource.id": f"gettok.watch-target.{target}",
                        "prefect.resource.role": "watch-target",
                    },
                ],
                payload=payload,
            )
        except Exception as exc:  # an alert channel down must not lose the match itself
            log.warning("could not emit %s for video %s: %s", MATCH_EVENT, video_id, exc)
            return f"failed: {type(exc).__name__}"
        return "emitted" if event is not None else "not emitted: no Prefect events client"

    def _post(self, payload: dict[str, Any]) -> str:
        if not self.webhook_url:
            return "not configured"
        try:
            for attempt in retrying("network", on=_webhook_worth_retrying):
                with attempt:
                    response = httpx.post(self.webhook_url, json=payload, timeout=self.timeout_s)
                    if response.status_code >= 300:
                        raise WebhookFailed(response.status_code)
        except WebhookFailed as exc:
            return f"failed: HTTP {exc.status}"
        except httpx.TransportError as exc:
            return f"failed: {type(exc).__name__}"
        return "ok"

    def _mail(self, payload: dict[str, Any], picture: bytes | None) -> str:
        if self.email is None or not self.email.configured:
            return "not configured"
        if self.digest:
            return "in the daily digest"
        return self.email.send(match_email(payload, picture))


def send_digest(
    url: str, campaign: str, email: EmailAlerts, now: datetime | None = None
) -> dict[str, Any]:
    """One email listing the campaign's sent alerts not yet in a digest; at most one a UTC day."""
    now = now or datetime.now(UTC)
    if not email.configured:
        return {"digest": "not configured", "matches": 0}
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with session_scope(url) as session:
        last = session.scalar(
            select(WatchAlert.digest_sent_at)
            .where(WatchAlert.campaign == campaign, WatchAlert.digest_sent_at.is_not(None))
            .order_by(WatchAlert.digest_sent_at.desc())
            .limit(1)
        )
        if last is not None and last >= midnight and last < midnight + timedelta(days=1):
            return {"digest": "already sent today", "matches": 0}
        rows = session.scalars(
            select(WatchAlert)
            .where(
                WatchAlert.campaign == campaign,
                WatchAlert.sent_at.is_not(None),
                WatchAlert.digest_sent_at.is_(None),
            )
            .order_by(WatchAlert.id)
        ).all()
        matches = [
            {
                "id": a.id,
                "target": a.target,
                "video_id": a.video_id,
                "url": a.details.get("url"),
                "timestamp_s": a.timestamp_s,
                "score": a.score,
            }
            for a in rows
        ]
    if not matches:
        return {"digest": "nothing to send", "matches": 0}
    outcome = email.send(digest_email(campaign, now.date().isoformat(), matches))
    if outcome == "ok":
        with session_scope(url) as session:
            session.execute(
                update(WatchAlert)
                .where(WatchAlert.id.in_([m["id"] for m in matches]))
                .values(digest_sent_at=now)
            )
    return {"digest": outcome, "matches": len(matches)}

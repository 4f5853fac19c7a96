"""Alert emails: one per match (the matching frame attached) or one daily digest, over SMTP.

The server and its credentials come from the settings (`GETTOK_SMTP_*`, the password a
`SecretStr`); recipients from `GETTOK_SMTP_TO`. Dropped connections and 4xx replies are retried
with the "network" policy (`gettok.retry`); a refusal (bad login, unknown recipient) is not, and
comes back as a recorded status. Messages name neither the password nor any other secret.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from gettok.retry import retrying
from gettok.settings import Settings

log = logging.getLogger(__name__)


class EmailAlerts:
    """Where alert emails go: the SMTP server, the sender and the recipients."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.smtp_host and self.settings.smtp_to)

    def send(self, message: EmailMessage) -> str:
        """Deliver `message`: "ok", or "failed: <reason>" once retrying cannot help."""
        s = self.settings
        message["From"] = s.smtp_from
        message["To"] = ", ".join(s.smtp_to)
        try:
            for attempt in retrying("network", on=_worth_retrying):
                with attempt:
                    self._deliver(message)
        except smtplib.SMTPResponseException as exc:
            log.warning("alert email refused: SMTP %s", exc.smtp_code)
            return f"failed: SMTP {exc.smtp_code}"
        except (smtplib.SMTPException, OSError) as exc:
            log.warning("alert email not sent: %s", type(exc).__name__)
            return f"failed: {type(exc).__name__}"
        return "ok"

    def _deliver(self, message: EmailMessage) -> None:
        s = self.settings
        timeout = s.smtp_timeout_s
        if s.smtp_ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=timeout)
        with client:
            if s.smtp_starttls and not s.smtp_ssl:
                client.starttls(context=ssl.create_default_context())
            if s.smtp_username and s.smtp_password:
                client.login(s.smtp_username, s.smtp_password.get_secret_value())
            client.send_message(message)


def _worth_retrying(exc: Exception) -> bool:
    """A dropped or refused connection, or a 4xx ("try again later") reply."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)


def _when(seconds: Any) -> str:
    if seconds is None:
        return "?"
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes)}:{rest:04.1f}"


def match_email(payload: dict[str, Any], picture: bytes | None) -> EmailMessage:
    """One match: who, which video (its URL), when in the video, the score; the frame attached."""
    message = EmailMessage()
    target, video = payload.get("target"), payload.get("video_id")
    message["Subject"] = f"[gettok {payload.get('campaign', '')}] {target} seen in video {video}"
    lines = [
        f"Watch target: {target} ({payload.get('target_kind', '?')})",
        f"Campaign: {payload.get('campaign', '')}",
        f"Video: {payload.get('url') or video}",
        f"Time in the video: {_when(payload.get('timestamp_s'))}",
        f"Score: {payload.get('score', '?')} ({payload.get('score_means', '')})",
    ]
    message.set_content("\n".join(lines) + "\n")
    if picture:
        message.add_attachment(
            picture, maintype="image", subtype="jpeg", filename=f"{target}-{video}.jpg"
        )
    return message


def digest_email(campaign: str, day: str, matches: list[dict[str, Any]]) -> EmailMessage:
    """The day's matches in one message, one line each."""
    message = EmailMessage()
    message["Subject"] = f"[gettok {campaign}] watchlist digest {day}: {len(matches)} matches"
    lines = [f"Watchlist matches for campaign {campaign} not yet in a digest ({day}):", ""]
    for m in matches:
        lines.append(
            f"- {m['target']}: video {m['url'] or m['video_id']} at {_when(m['timestamp_s'])}"
            f" (score {m['score']})"
        )
    message.set_content("\n".join(lines) + "\n")
    return message

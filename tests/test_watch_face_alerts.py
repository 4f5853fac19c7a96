"""Face watch over downloaded videos: the person found with the time in the video, one email per
match (frame attached) at a real local SMTP server, no second alert, the daily digest."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from gettok.db import session_scope
from gettok.models.schema import (
    Annotation,
    Campaign,
    CampaignVideo,
    Download,
    DownloadStatus,
    Video,
    WatchAlert,
)
from gettok.sandbox.faces import FACE_FROM_S, photo_variant, write_variants
from gettok.sandbox.media import make_clip
from gettok.settings import Settings
from gettok.tasks.watch.alerts import Alerts, send_digest
from gettok.tasks.watch.email_alert import EmailAlerts, match_email
from gettok.tasks.watch.face_target import enrol_face_target
from gettok.tasks.watch.face_watch import watch_for_face
from tests.smtp_server import Mailbox, SmtpServer

PERSON, OTHER = "eileen_collins", "grace_hopper"


@pytest.fixture(autouse=True)
def no_retry_waits():
    import stamina

    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@pytest.fixture
def mailbox():
    box = Mailbox()
    server = SmtpServer(box)
    box.settings = Settings(
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_starttls=False,
        smtp_to=["desk@example.org"],
    )
    yield box
    server.stop()


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory):
    root = tmp_path_factory.mktemp("enrol")
    write_variants(PERSON, root / "examples", range(0, 3))
    write_variants(OTHER, root / "negatives", range(0, 2))
    return root


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """4-second clips: another photo of the person from FACE_FROM_S on, someone else, nobody."""
    root = tmp_path_factory.mktemp("clips")
    shown = (FACE_FROM_S, 99.0)
    return {
        "person": make_clip(root / "p.mp4", kind="silent", duration_s=4, seed=1,
                            overlay_image=photo_variant(PERSON, 40), overlay_between=shown),
        "other": make_clip(root / "o.mp4", kind="silent", duration_s=4, seed=2,
                           overlay_image=photo_variant(OTHER, 40), overlay_between=shown),
        "nobody": make_clip(root / "n.mp4", kind="silent", duration_s=4, seed=3),
    }  # fmt: skip


def store_downloads(url: str, media_dir: Path, clips: dict[str, Path]) -> dict[str, int]:
    """Videos of campaign "watched", downloaded as the download stage stores them."""
    base = int(datetime(2024, 1, 2, tzinfo=UTC).timestamp()) << 32
    ids = {name: base | (n + 1) for n, name in enumerate(clips)}
    with session_scope(url) as s:
        row = Campaign(
            name="watched", query={}, query_hash="q", start_date=date(2024, 1, 1), region_codes=[]
        )
        s.add(row)
        s.flush()
        for name, clip in clips.items():
            rel = f"videos/{ids[name]}.mp4"
            (media_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (media_dir / rel).write_bytes(clip.read_bytes())
            s.add(Video(id=ids[name], username=f"user_{name}", raw={}))
            s.flush()
            s.add(CampaignVideo(campaign_id=row.id, video_id=ids[name]))
            s.add(Download(video_id=ids[name], status=DownloadStatus.ok, path=rel))
    return ids


def test_the_person_is_found_and_emailed_once(db_url, tmp_path, mailbox, enrolled, clips):
    media = tmp_path / "media"
    ids = store_downloads(db_url, media, clips)
    person = enrol_face_target("collins", [enrolled / "examples"], [enrolled / "negatives"])
    alerts = Alerts(
        campaign="watched", email=EmailAlerts(mailbox.settings), database_url=db_url,
        web_url="https://www.tiktok.com",
    )  # fmt: skip

    result = watch_for_face(db_url, media, person, alerts)

    assert result.matched == [ids["person"]]
    assert (result.videos_checked, result.not_matched, result.emails_sent) == (3, 2, 1)
    with session_scope(db_url) as s:
        rows = {a.video_id: a for a in s.scalars(select(Annotation))}
    hit = rows[ids["person"]].value
    assert hit["matched"] is True and hit["score"] <= person.threshold
    assert FACE_FROM_S <= hit["timestamp_s"] <= FACE_FROM_S + 1.0  # seen within a second
    assert hit["threshold_from"] == "tuned on 3 examples and 2 negatives"
    assert (media / hit["frame_path"]).is_file() and hit["frame_path"].startswith("frames/")
    assert rows[ids["other"]].value["matched"] is False
    assert rows[ids["other"]].value["best_distance"] > person.threshold
    assert rows[ids["nobody"]].value["faces_seen"] == 0

    [message] = mailbox.messages
    assert message["Subject"] == f"[gettok watched] collins seen in video {ids['person']}"
    body = message.get_body(("plain",)).get_content()
    assert f"https://www.tiktok.com/@user_person/video/{ids['person']}" in body
    assert "Time in the video: 0:01.0" in body and f"Score: {hit['score']}" in body
    [attachment] = list(message.iter_attachments())
    picture = cv2.imdecode(np.frombuffer(attachment.get_content(), np.uint8), cv2.IMREAD_COLOR)
    assert attachment.get_content_type() == "image/jpeg" and picture.shape[:2] == (640, 360)

    again = watch_for_face(db_url, media, person, alerts)
    assert again.videos_checked == 0 and len(mailbox.messages) == 1

    # A new example photo re-checks every video, and finds the person again: no second alert.
    extra = write_variants(PERSON, tmp_path / "extra", [77])
    more = enrol_face_target("collins", [enrolled / "examples", *extra], [enrolled / "negatives"])
    assert more.fingerprint != person.fingerprint
    rechecked = watch_for_face(db_url, media, more, alerts)
    assert rechecked.matched == [ids["person"]] and rechecked.already_alerted == 1
    assert len(mailbox.messages) == 1


def test_an_alert_claimed_by_a_killed_run_is_sent_by_the_next(sqlite_url, tmp_path, mailbox):
    with session_scope(sqlite_url) as s:
        s.add(Video(id=7, username="u", raw={}))
        s.flush()
        # Claimed, never marked sent: the run died between the claim and the email.
        s.add(WatchAlert(campaign="c", target="t", video_id=7, details={}, sent_at=None))
    alerts = Alerts(campaign="c", email=EmailAlerts(mailbox.settings), database_url=sqlite_url)
    assert alerts.announce(7, "t", {"timestamp_s": 3.0})["email"] == "ok"
    assert alerts.announce(7, "t", {"timestamp_s": 3.0})["email"] == "duplicate"
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize(
    ("refuse", "reply", "outcome", "attempts"),
    [
        (2, "451 4.3.0 try again later", "ok", 3),  # a busy server: retried
        (9, "550 5.1.1 no such mailbox", "failed: SMTP 550", 1),  # a refusal: not retried
    ],
)
def test_email_retry_policy(refuse, reply, outcome, attempts):
    box = Mailbox(refuse=refuse, reply=reply)
    server = SmtpServer(box)
    try:
        settings = Settings(
            smtp_host="127.0.0.1", smtp_port=server.port, smtp_starttls=False, smtp_to=["a@b.c"]
        )
        sent = EmailAlerts(settings).send(match_email({"target": "t", "video_id": "1"}, None))
    finally:
        server.stop()
    assert (sent, box.attempts) == (outcome, attempts)


def test_unreachable_smtp_is_a_recorded_failure_and_no_password_leaks(caplog):
    settings = Settings(
        smtp_host="127.0.0.1", smtp_port=1, smtp_to=["a@b.c"], smtp_password="hunter2-secret"
    )
    sent = EmailAlerts(settings).send(match_email({"target": "t", "video_id": "1"}, None))
    assert sent == "failed: ConnectionRefusedError"
    assert "hunter2-secret" not in caplog.text and "hunter2-secret" not in repr(settings)


def test_daily_digest_instead_of_one_email_per_match(sqlite_url, mailbox):
    with session_scope(sqlite_url) as s:
        s.add_all([Video(id=n, username=f"u{n}", raw={}) for n in (1, 2)])
    email = EmailAlerts(mailbox.settings)
    alerts = Alerts(campaign="c", email=email, database_url=sqlite_url, digest=True)
    for video in (1, 2):
        assert alerts.announce(video, "t", {"timestamp_s": 2.0, "score": 0.3})["email"] == (
            "in the daily digest"
        )
    assert mailbox.messages == []

    now = datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert send_digest(sqlite_url, "c", email, now) == {"digest": "ok", "matches": 2}
    [digest] = mailbox.messages
    assert digest["Subject"] == "[gettok c] watchlist digest 2026-11-30: 2 matches"
    assert "/@u2/video/2 at 0:02.0 (score 0.3)" in digest.get_body(("plain",)).get_content()
    later = now + timedelta(hours=3)
    assert send_digest(sqlite_url, "c", email, later)["digest"] == "already sent today"
    tomorrow = now + timedelta(days=1)
    assert send_digest(sqlite_url, "c", email, tomorrow)["digest"] == "nothing to send"
    assert len(mailbox.messages) == 1


def test_photo_posts_are_watched_and_a_broken_file_is_recorded_once(sqlite_url, tmp_path, enrolled):
    media = tmp_path / "media"
    slides = write_variants(OTHER, media / "slides" / "11", [5]) + write_variants(
        PERSON, media / "slides" / "11", [6]
    )
    (media / "videos").mkdir(parents=True)
    (media / "videos" / "12.mp4").write_bytes(b"<html>not a video</html>")
    with session_scope(sqlite_url) as s:
        s.add_all([Video(id=n, username="u", raw={}) for n in (11, 12)])
        s.flush()
        s.add(
            Download(
                video_id=11,
                status=DownloadStatus.slideshow,
                is_slideshow=True,
                image_paths=[p.relative_to(media).as_posix() for p in slides],
            )
        )
        s.add(Download(video_id=12, status=DownloadStatus.ok, path="videos/12.mp4"))
    person = enrol_face_target("collins", [enrolled / "examples"], [enrolled / "negatives"])
    alerts = Alerts(campaign="c", database_url=sqlite_url)

    result = watch_for_face(sqlite_url, media, person, alerts)

    assert result.matched == [11] and result.failed == {"unreadable video": 1}
    with session_scope(sqlite_url) as s:
        rows = {a.video_id: a for a in s.scalars(select(Annotation))}
    assert rows[11].value["frame_index"] == 1 and rows[11].value["timestamp_s"] is None
    assert rows[12].status == "failed" and rows[12].error
    again = watch_for_face(sqlite_url, media, person, alerts)
    assert again.videos_checked == 0 and again.failed == {}  # recorded, not retried every day

"""The watchlist: reference images found in frames and clips, alerts by event and webhook."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from gettok.db import session_scope
from gettok.models.schema import Annotation, AnnotationKind, Campaign, CampaignVideo, Frame, Video
from gettok.sandbox.media import make_clip, make_reference_image, make_reference_image_clip
from gettok.tasks.frames.sampling import sample_frames
from gettok.tasks.watch.description import watch_for_description
from gettok.tasks.watch.image_match import load_reference, match_reference
from gettok.tasks.watch.watchlist import Alerts, watch_for_image

BETWEEN = (1.0, 2.5)  # seconds during which the positive clip shows the reference


class Webhook:
    """A real HTTP endpoint that records what it receives; fails the first `fail` posts."""

    def __init__(self, fail: int = 0, status: int = 500):
        self.posts: list[dict] = []
        self.fail, self.status = fail, status
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append(json.loads(body))
                code = hook.status if len(hook.posts) <= hook.fail else 204
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alert"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture(autouse=True)
def no_retry_waits():
    """Retries without their waits, three tries (the policy's count is gettok.retry's)."""
    import stamina

    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def scene(seed: int, size=(640, 360)) -> np.ndarray:
    """A busy background: gradient, shapes and text, like a video frame."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = np.linspace(rng.integers(0, 255, 3), rng.integers(0, 255, 3), h, dtype=np.float32)
    img = np.repeat(img[:, None, :], w, axis=1).astype(np.uint8)
    for _ in range(12):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.circle(img, (x, y), int(rng.integers(8, 40)), colour, -1)
    cv2.putText(
        img, "caption text here", (20, h - 40), cv2.FONT_HERSHEY_DUPLEX, 0.8, (255, 255, 255), 2
    )
    return img


def paste(
    frame: np.ndarray, picture: np.ndarray, angle: float, scale: float, centre: tuple[int, int]
) -> np.ndarray:
    """`picture` rotated, scaled and placed onto `frame` (as a sticker or a screen would be)."""
    h, w = picture.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += np.array(centre) - np.array([w / 2, h / 2])
    size = (frame.shape[1], frame.shape[0])
    warped = cv2.warpAffine(picture, m, size)
    mask = cv2.warpAffine(np.full((h, w), 255, np.uint8), m, size) > 0
    out = frame.copy()
    out[mask] = warped[mask]
    return out


def test_reference_found_in_frames_and_not_in_others(tmp_path):
    ref0 = make_reference_image(tmp_path / "ref0.jpg", seed=0)
    ref1 = make_reference_image(tmp_path / "ref1.jpg", seed=1)  # same layout, other colours
    target = load_reference(ref0)
    picture0, picture1 = cv2.imread(str(ref0)), cv2.imread(str(ref1))
    for n, (angle, scale) in enumerate([(0, 0.8), (20, 0.6), (-35, 0.5), (90, 0.7)]):
        frame = paste(scene(n), picture0, angle, scale, (180, 300))
        frame = cv2.imdecode(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 70])[1], 1)
        found = match_reference(target, frame)
        assert found.matched, (angle, scale, found)
        # The outline lands where the picture was put.
        centre = np.mean(found.corners, axis=0)
        assert abs(centre[0] - 180) < 15 and abs(centre[1] - 300) < 15
    for n in range(4):
        assert not match_reference(target, scene(100 + n)).matched
        lookalike = paste(scene(200 + n), picture1, 10 * n, 0.7, (180, 300))
        assert not match_reference(target, lookalike).matched


def store_clip_frames(
    url: str, media_dir: Path, campaign_row: int, video_id: int, clip: Path, every: int = 15
) -> list[tuple[int, float]]:
    """Frames as the frames stage stores them: JPEG files, then rows (index, seconds)."""
    kept = []
    with session_scope(url) as s:
        s.add(
            Video(
                id=video_id,
                username="watched",
                raw={},
                created_at=datetime.fromtimestamp(video_id >> 32, UTC),
            )
        )
        s.flush()
        s.add(CampaignVideo(campaign_id=campaign_row, video_id=video_id))
        for index, seconds, image in sample_frames(clip, every, 20, 768):
            rel = f"frames/{video_id}/{index:06d}.jpg"
            (media_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(media_dir / rel), image)
            s.add(
                Frame(
                    video_id=video_id,
                    frame_index=index,
                    timestamp_s=seconds,
                    path=rel,
                    width=image.shape[1],
                    height=image.shape[0],
                )
            )
            kept.append((index, seconds))
    return kept


def watch_dataset(url: str, tmp_path: Path) -> tuple[Path, dict[str, int]]:
    media_dir = tmp_path / "media"
    ref = make_reference_image(tmp_path / "targets" / "logo.jpg", seed=0)
    clips = {
        "with": make_reference_image_clip(
            tmp_path / "with.mp4", ref, between=BETWEEN, kind="silent", duration_s=4, seed=3
        ),
        "without": make_clip(tmp_path / "without.mp4", kind="silent", duration_s=4, seed=4),
        "pruned": make_reference_image_clip(
            tmp_path / "pruned.mp4", ref, between=BETWEEN, kind="silent", duration_s=4, seed=5
        ),
    }
    with session_scope(url) as s:
        row = Campaign(
            name="watched", query={}, query_hash="q", start_date=date(2024, 1, 1), region_codes=[]
        )
        s.add(row)
        s.flush()
        cid = row.id
    base = int(datetime(2024, 1, 2, tzinfo=UTC).timestamp()) << 32
    ids = {name: base | (n + 1) for n, name in enumerate(clips)}
    for name, clip in clips.items():
        store_clip_frames(url, media_dir, cid, ids[name], clip)
    with session_scope(url) as s:
        s.get(Video, ids["pruned"]).pruned_at = datetime.now(UTC)
    return ref, ids


def test_watch_flags_the_clip_with_the_reference(db_url, tmp_path, webhook):
    ref, ids = watch_dataset(db_url, tmp_path)
    media_dir = tmp_path / "media"
    alerts = Alerts(webhook.url, campaign="watched")

    result = watch_for_image(db_url, media_dir, ref, alerts)

    assert result.matched == [ids["with"]]
    assert result.videos_checked == 2 and result.not_matched == 1  # the pruned one is skipped
    assert result.webhook_posted == 1 and result.webhook_failed == 0
    assert [p["video_id"] for p in webhook.posts] == [str(ids["with"])]
    assert webhook.posts[0]["event"] == "gettok.watch.match"
    with session_scope(db_url) as s:
        rows = {
            a.video_id: a
            for a in s.scalars(
                select(Annotation).where(Annotation.kind == AnnotationKind.watch_match)
            )
        }
        assert set(rows) == {ids["with"], ids["without"]}
        hit = rows[ids["with"]]
        assert hit.value["matched"] is True and hit.frame_id is not None
        frame = s.get(Frame, hit.frame_id)
        assert frame.video_id == ids["with"]
        assert BETWEEN[0] - 0.05 <= frame.timestamp_s <= BETWEEN[1]
        assert hit.value["alert"]["webhook"] == "ok"
        miss = rows[ids["without"]]
        assert miss.value["matched"] is False and miss.frame_id is None

    again = watch_for_image(db_url, media_dir, ref, alerts)
    assert again.videos_checked == 0 and not again.matched
    assert len(webhook.posts) == 1


@pytest.mark.parametrize(
    ("fail", "status", "posts", "outcome"),
    [
        (2, 500, 3, "ok"),  # retried through two server errors
        (9, 503, 3, "failed: HTTP 503"),  # gave up: the match is still stored
        (9, 400, 1, "failed: HTTP 400"),  # a client error is not retried
    ],
)
def test_webhook_retry_policy(sqlite_url, tmp_path, fail, status, posts, outcome):
    hook = Webhook(fail=fail, status=status)
    try:
        ref, ids = watch_dataset(sqlite_url, tmp_path)
        alerts = Alerts(hook.url, campaign="watched")
        result = watch_for_image(sqlite_url, tmp_path / "media", ref, alerts)
    finally:
        hook.close()
    assert len(hook.posts) == posts
    assert result.matched == [ids["with"]]
    with session_scope(sqlite_url) as s:
        hit = s.scalars(select(Annotation).where(Annotation.video_id == ids["with"])).one()
        assert hit.value["alert"]["webhook"] == outcome


def test_watch_flow_emits_a_prefect_event(prefect_harness, settings_env, monkeypatch, webhook):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter

    from gettok import db
    from gettok.flows.watch import watch

    tmp_path = settings_env
    url = f"sqlite:///{tmp_path / 'watch.db'}"
    monkeypatch.setenv("GETTOK_DATABASE_URL", url)
    monkeypatch.setenv("GETTOK_MEDIA_DIR", str(tmp_path / "media"))
    db.upgrade(url)
    ref, ids = watch_dataset(url, tmp_path)
    (tmp_path / "watched.toml").write_text(
        'name = "watched"\nstart_date = "2024-01-01"\n[query]\nkeywords = ["logo"]\n'
        f'[watch]\nimages = ["targets/{ref.name}"]\nwebhook_url = "{webhook.url}"\n'
    )

    results = watch(str(tmp_path / "watched.toml"))

    assert [r.matched for r in results] == [[ids["with"]]]
    assert results[0].events_emitted == 1

    async def events():
        async with get_client() as client:
            page = await client.read_events(
                filter=EventFilter(event=EventNameFilter(name=["gettok.watch.match"])), limit=50
            )
            return page.events

    found = []
    for _ in range(20):  # events reach the server asynchronously
        found = asyncio.run(events())
        if found:
            break
        asyncio.run(asyncio.sleep(0.5))
    assert [e.resource.id for e in found] == [f"gettok.video.{ids['with']}"]
    assert found[0].payload["video_id"] == str(ids["with"])
    db.get_engine.cache_clear()


def test_description_target_asks_the_vision_llm(sqlite_url, tmp_path, sandbox_env):
    from gettok.settings import get_settings

    _ref, ids = watch_dataset(sqlite_url, tmp_path)
    settings = get_settings(llm_model="sandbox-vision")
    result = watch_for_description(
        sqlite_url, tmp_path / "media", "a red circle on stripes", Alerts(None), settings
    )
    # The sandbox cannot see a target: it answers "not present", and every answer is recorded.
    assert result.videos_checked == 2 and result.frames_checked > 0
    with session_scope(sqlite_url) as s:
        rows = s.scalars(
            select(Annotation).where(Annotation.prompt_id == "watch-description")
        ).all()
        assert {r.video_id for r in rows} == {ids["with"], ids["without"]}
        assert all(r.is_sandbox and r.model == "sandbox-vision" and r.input_tokens for r in rows)
    again = watch_for_description(
        sqlite_url, tmp_path / "media", "a red circle on stripes", Alerts(None), settings
    )
    assert again.videos_checked == 0


def test_watch_command_checks_the_watchlist_first(settings_env):
    from typer.testing import CliRunner

    from gettok.cli import app

    campaign = settings_env / "c.toml"
    base = 'name = "c"\nstart_date = "2024-01-01"\n[query]\nkeywords = ["x"]\n'
    campaign.write_text(base)
    run = CliRunner().invoke(app, ["watch", "--campaign", str(campaign)])
    assert run.exit_code == 2 and "no [watch] section" in run.output
    campaign.write_text(base + '[watch]\nimages = ["missing.jpg"]\n')
    run = CliRunner().invoke(app, ["watch", "--campaign", str(campaign)])
    assert run.exit_code == 2 and "missing.jpg" in run.output


def test_an_image_target_with_a_folder_of_references(settings_env, monkeypatch, webhook):
    """`[[watch.targets]] kind = "image"`: every picture of the folder, one result per target."""
    from gettok import db
    from gettok.flows.watch import watch_target_task, watch_targets
    from gettok.models.campaign import load_campaign

    url = f"sqlite:///{settings_env / 'watch.db'}"
    monkeypatch.setenv("GETTOK_DATABASE_URL", url)
    monkeypatch.setenv("GETTOK_MEDIA_DIR", str(settings_env / "media"))
    db.upgrade(url)
    ref, ids = watch_dataset(url, settings_env)
    make_reference_image(ref.parent / "other.jpg", seed=7)  # never shown: matches nothing
    (settings_env / "c.toml").write_text(
        'name = "watched"\nstart_date = "2024-01-01"\n[query]\nkeywords = ["logo"]\n'
        f'[watch]\nwebhook_url = "{webhook.url}"\n'
        '[[watch.targets]]\nname = "logos"\nkind = "image"\nexamples = ["targets/"]\n'
    )
    campaign = load_campaign(settings_env / "c.toml")
    [target] = watch_targets(campaign)
    with session_scope(url) as s:
        cid = s.scalar(select(Campaign.id).where(Campaign.name == "watched"))

    result = watch_target_task.fn(campaign, target, cid, None)

    assert result.target == "logos" and result.matched == [ids["with"]]
    assert (result.videos_checked, result.not_matched) == (2, 1)  # two unpruned videos
    assert [p["target"] for p in webhook.posts] == ["logos"]
    db.get_engine.cache_clear()

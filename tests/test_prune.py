"""Compliance pruning against the sandbox's tiktok.com pages: private, removed, and transient."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gettok.db import session_scope
from gettok.models.schema import (
    Campaign,
    Download,
    DownloadStatus,
    Frame,
    PruneRecord,
    TopicFit,
    Video,
    VideoTopic,
)
from gettok.sandbox.config import SandboxConfig
from gettok.tasks.prune import check_page, pending_videos, prune_videos


@pytest.fixture
def sandbox_config(tmp_path) -> SandboxConfig:
    return SandboxConfig(
        seed=31,
        fault_seed=5,
        videos_per_day=40,
        private_share=0.3,
        removed_share=0.3,
        slideshow_share=0.1,
        media_cache_dir=tmp_path / "sandbox-media",
    )


def pick_videos(corpus) -> dict[str, list]:
    """Public videos, a slideshow, every way the site shows private (4), and removed (2, by a
    404: the other way, statusCode 10204, is "not available" and proves nothing alone)."""
    wanted = {
        ("public", 0): 2,
        ("slideshow", 0): 1,
        ("private", 0): 1,
        ("private", 1): 1,
        ("private", 2): 1,
        ("private", 3): 1,
        ("removed", 1): 2,
    }
    picked: dict[str, list] = {}
    day = date(2022, 12, 1)
    while any(wanted.values()):
        for v in corpus.videos_on(day):
            variant = (
                v.id % 4
                if v.web_state == "private"
                else v.id % 2
                if v.web_state == "removed"
                else 0
            )
            if wanted.get((v.web_state, variant), 0) > 0:
                wanted[(v.web_state, variant)] -= 1
                picked.setdefault(v.web_state, []).append(v)
        day += timedelta(days=1)
    return picked


def store(url: str, media_dir: Path, videos) -> dict[int, list[str]]:
    """Rows and files as the download and frames stages leave them; returns each video's files."""
    files: dict[int, list[str]] = {}
    with session_scope(url) as s:
        for v in videos:
            s.add(Video(id=v.id, username=v.username, raw={"id": v.id}))
            s.flush()
            if v.web_state == "slideshow":
                images = [f"slides/{v.id}/{n}.jpg" for n in range(2)]
                audio = f"slides/{v.id}/audio.m4a"
                s.add(
                    Download(
                        video_id=v.id,
                        status=DownloadStatus.slideshow,
                        is_slideshow=True,
                        image_paths=images,
                        audio_path=audio,
                    )
                )
                paths = [*images, audio]
            else:
                paths = [f"videos/{v.id}.mp4"]
                s.add(Download(video_id=v.id, status=DownloadStatus.ok, path=paths[0]))
            for n in range(2):
                frame = f"frames/{v.id}/{n:06d}.jpg"
                s.add(Frame(video_id=v.id, frame_index=n * 300, path=frame, width=9, height=16))
                paths.append(frame)
            files[v.id] = paths
    for paths in files.values():
        for p in paths:
            (media_dir / p).parent.mkdir(parents=True, exist_ok=True)
            (media_dir / p).write_bytes(b"media")
    return files


def test_check_page_reads_each_state(sandbox):
    picked = pick_videos(sandbox.state.corpus)
    for state, videos in picked.items():
        for v in videos:
            verdict = check_page(sandbox.base_url, v.id, v.username, 10).verdict
            expected = "public" if state in ("public", "slideshow") else state
            assert verdict == expected, (state, v.id, verdict)


def test_prune_deletes_private_and_removed_only(db_url, sandbox, tmp_path):
    media_dir = tmp_path / "media"
    picked = pick_videos(sandbox.state.corpus)
    videos = [v for vs in picked.values() for v in vs]
    files = store(db_url, media_dir, videos)
    with session_scope(db_url) as s:  # each video's topic, as a report stores it
        campaign = Campaign(name="c", query={}, query_hash="q", start_date=date(2022, 12, 7),
                            region_codes=[])  # fmt: skip
        s.add(campaign)
        s.flush()
        fit = TopicFit(
            campaign_id=campaign.id, fingerprint="f", provenance={}, members=1, model=b""
        )
        s.add(fit)
        s.flush()
        s.add_all(VideoTopic(fit_id=fit.id, video_id=v.id, topic=0) for v in videos)
    gone = {v.id: v.web_state for v in videos if v.web_state in ("private", "removed")}
    # A run killed after deleting one video's files but before marking its rows.
    half_done, *others = list(gone)
    for p in files[half_done]:
        (media_dir / p).unlink()
    # A frame file the frames stage wrote but never recorded (killed before its row).
    orphan = f"frames/{others[0]}/000600.jpg"
    (media_dir / orphan).write_bytes(b"frame")
    files[others[0]].append(orphan)

    result = prune_videos(db_url, media_dir, sandbox.base_url, pending_videos(db_url))

    assert result.checked == len(videos)
    assert result.transient == 0
    assert sorted(result.pruned_ids) == sorted(gone)
    assert result.pruned == {"private": 4, "removed": 2}
    assert result.public == len(videos) - len(gone)
    assert result.files_removed == sum(len(files[i]) for i in gone) - len(files[half_done])
    for v in videos:
        exists = [(media_dir / p).exists() for p in files[v.id]]
        assert not any(exists) if v.id in gone else all(exists), v.web_state
    with session_scope(db_url) as s:
        records = {r.video_id: r for r in s.scalars(select(PruneRecord))}
        assert set(records) == set(gone)
        for vid, reason in gone.items():
            assert records[vid].reason == reason
            assert sorted(records[vid].removed_paths) == sorted(files[vid])
            video = s.get(Video, vid)
            assert video.pruned_at is not None and video.pruned_reason == reason
            assert s.get(Download, vid).path is None
            assert s.get(Download, vid).status == DownloadStatus(reason)
        frames = dict(
            s.execute(select(Frame.video_id, func.count()).group_by(Frame.video_id)).all()
        )
        assert set(frames) == {v.id for v in videos} - set(gone)
        topics = set(s.scalars(select(VideoTopic.video_id)))
        assert topics == {v.id for v in videos} - set(gone)  # derived from their text

    # A second run checks only what is still stored and records nothing twice.
    again = prune_videos(db_url, media_dir, sandbox.base_url, pending_videos(db_url))
    assert again.checked == len(videos) - len(gone) and not again.pruned_ids
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(PruneRecord)) == len(gone)


@pytest.mark.parametrize("fault", ["throttle", "dropped_connection", "unreachable"])
def test_transient_errors_delete_nothing(sqlite_url, sandbox, tmp_path, fault):
    media_dir = tmp_path / "media"
    picked = pick_videos(sandbox.state.corpus)
    videos = [v for vs in picked.values() for v in vs]
    files = store(sqlite_url, media_dir, videos)
    web_url = sandbox.base_url
    if fault == "unreachable":
        web_url = "http://127.0.0.1:9"  # discard port: connection refused
    else:
        setattr(sandbox.state.config.web, fault, 1.0)

    result = prune_videos(sqlite_url, media_dir, web_url, pending_videos(sqlite_url), timeout_s=5)

    assert result.transient == len(videos) and not result.pruned_ids and result.files_removed == 0
    assert all((media_dir / p).exists() for paths in files.values() for p in paths)
    with session_scope(sqlite_url) as s:
        assert s.scalar(select(func.count()).select_from(PruneRecord)) == 0
        assert s.scalar(select(func.count()).where(Video.pruned_at.is_not(None))) == 0


def test_prune_command_on_one_campaign(prefect_harness, sandbox_env, monkeypatch):
    from typer.testing import CliRunner

    from gettok import db
    from gettok.cli import app
    from gettok.models.schema import Campaign, CampaignVideo

    tmp_path = sandbox_env.state.config.media_cache_dir.parent
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    media_dir = tmp_path / "media"
    monkeypatch.setenv("GETTOK_DATABASE_URL", url)
    monkeypatch.setenv("GETTOK_MEDIA_DIR", str(media_dir))
    db.upgrade(url)
    picked = pick_videos(sandbox_env.state.corpus)
    videos = [v for vs in picked.values() for v in vs]
    files = store(url, media_dir, videos)
    with session_scope(url) as s:
        row = Campaign(
            name="peru", query={}, query_hash="q", start_date=date(2022, 12, 1), region_codes=["PE"]
        )
        s.add(row)
        s.flush()
        # Half the videos belong to the campaign; the rest must not be touched.
        mine = videos[::2]
        s.add_all(CampaignVideo(campaign_id=row.id, video_id=v.id) for v in mine)
    campaign = tmp_path / "peru.toml"
    campaign.write_text('name = "peru"\nstart_date = "2022-12-01"\n[query]\nkeywords = ["x"]\n')

    run = CliRunner().invoke(app, ["prune", "--campaign", str(campaign)])

    assert run.exit_code == 0, run.output
    gone = {v.id for v in mine if v.web_state in ("private", "removed")}
    assert gone and any(v.web_state in ("private", "removed") for v in videos[1::2])
    assert f"{len(mine)} checked" in run.output
    for v in videos:
        assert all((media_dir / p).exists() for p in files[v.id]) == (v.id not in gone), v.web_state
    db.get_engine.cache_clear()

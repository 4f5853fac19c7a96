"""The watch stage's selections page through unchecked videos by id (flat memory, bounded queries)
and skip what a target has already checked or what prune has removed."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from bench.scale_data import FRAMES_PER_VIDEO, build
from gettok import db, keyset
from gettok.models.schema import Campaign, Video, utcnow
from gettok.tasks.watch.store import (
    store_outcome,
    unchecked_downloads,
    unchecked_frames,
    watch_annotation,
)


@pytest.mark.parametrize("id_range", [2, 5000])  # pages across ranges of ids, and in one
def test_unchecked_frames_pages_by_id_and_skips_checked_and_pruned_videos(
    db_url, monkeypatch, id_range
):
    monkeypatch.setattr(keyset, "ID_RANGE", id_range)
    _, ids = build(db_url, 13)  # every 10th video (i % 10 == 0) has no download and no frames
    with_frames = [v for i, v in enumerate(ids) if i % 10]
    every = list(unchecked_frames(db_url, None, "opencv-orb", "target-a", page=4))
    assert [video_id for video_id, _ in every] == with_frames
    with db.session_scope(db_url) as session:
        campaign_id = session.scalar(select(Campaign.id).where(Campaign.name == "scale"))
    in_campaign = list(unchecked_frames(db_url, campaign_id, "opencv-orb", "target-a", page=4))
    assert in_campaign == every
    assert all(len(frames) == FRAMES_PER_VIDEO for _, frames in every)
    assert [f.frame_index for f in every[0][1]] == list(range(FRAMES_PER_VIDEO))
    limited = list(unchecked_frames(db_url, None, "opencv-orb", "target-a", limit=5, page=2))
    assert [video_id for video_id, _ in limited] == with_frames[:5]

    checked, pruned = with_frames[0], with_frames[1]
    store_outcome(
        db_url,
        watch_annotation(
            checked,
            {"matched": False},
            model="opencv-orb",
            prompt_id="watch-image:a",
            prompt_hash="target-a",
            settings={},
        ),
    )
    with db.session_scope(db_url) as session:
        session.execute(update(Video).where(Video.id == pruned).values(pruned_at=utcnow()))
    left = [v for v, _ in unchecked_frames(db_url, None, "opencv-orb", "target-a", page=3)]
    assert left == with_frames[2:]
    # Another target (or the same one with other settings) checks every video again.
    again = [v for v, _ in unchecked_frames(db_url, None, "opencv-orb", "target-b", page=3)]
    assert again == [v for v in with_frames if v != pruned]


@pytest.mark.parametrize("id_range", [3, 5000])
def test_unchecked_downloads_lists_playable_downloads_once_per_target(
    db_url, monkeypatch, id_range
):
    monkeypatch.setattr(keyset, "ID_RANGE", id_range)
    _, ids = build(db_url, 12)
    downloaded = [v for i, v in enumerate(ids) if i % 10]
    rows = list(unchecked_downloads(db_url, None, "dlib", "face-a", page=5))
    assert [video_id for video_id, _, _ in rows] == downloaded
    assert rows[0][1] == f"videos/{downloaded[0]}.mp4" and rows[0][2] == []
    stored = watch_annotation(
        downloaded[0],
        {"matched": True},
        model="dlib",
        prompt_id="watch-face:x" * 20,
        prompt_hash="face-a",
        settings={"threshold": 0.5},
    )
    assert len(stored.prompt_id) == 64 and stored.cost_usd == 0.0
    assert store_outcome(db_url, stored)
    duplicate = watch_annotation(
        downloaded[0],
        {"matched": True},
        model="dlib",
        prompt_id="watch-face:x",
        prompt_hash="face-a",
        settings={},
    )
    assert not store_outcome(db_url, duplicate)  # the unique check: stored once
    assert [v for v, _, _ in unchecked_downloads(db_url, None, "dlib", "face-a")] == downloaded[1:]

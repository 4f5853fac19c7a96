"""Frames: 1 in N, at least one, capped, resized, slideshows, idempotent, bad files recorded."""

from __future__ import annotations

import shutil
import struct
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from sqlalchemy import select

from gettok.db import session_scope
from gettok.models.schema import (
    Download,
    DownloadStatus,
    Frame,
    FrameExtraction,
    FrameStatus,
    Video,
    utcnow,
)
from gettok.sandbox import media
from gettok.settings import get_settings
from gettok.tasks.frames.extract import extract_frames
from gettok.tasks.frames.sampling import (
    fit_within,
    frame_indices,
    naive_sample_frames,
    sample_frames,
)

BASE_ID = 1_670_000_000 << 32


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("frames-clips")
    return {
        # 120 frames, a keyframe every 45: kept frames sit between keyframes
        "short": media.make_clip(
            folder / "short.mp4", kind="silent", duration_s=4, seed=2, keyframe_interval=45
        ),
        "study": media.make_clip(folder / "study.mp4", kind="music", duration_s=25, seed=5),
    }


@pytest.fixture
def media_dir(settings_env) -> Path:
    path = settings_env / "media"
    path.mkdir()
    return path


def settings_for(media_dir: Path, **overrides):
    return get_settings(media_dir=media_dir, **overrides)


def add_video(db_url, media_dir, n, clip=None, *, status=DownloadStatus.ok, path=None, **download):
    video_id = BASE_ID | n
    if clip is not None:
        path = path or f"videos/{video_id}.mp4"
        (media_dir / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, media_dir / path)
    with session_scope(db_url) as session:
        session.add(Video(id=video_id, username="../../evil", raw={}))
        session.flush()
        session.add(Download(video_id=video_id, status=status, path=path, **download))
    return video_id


def frames_of(db_url, video_id) -> list[Frame]:
    with session_scope(db_url) as session:
        query = select(Frame).where(Frame.video_id == video_id).order_by(Frame.frame_index)
        return list(session.scalars(query))


def test_frame_indices():
    assert frame_indices(1000, 300, 20) == [0, 300, 600, 900]
    assert frame_indices(900, 300, 20) == [0, 300, 600]
    assert frame_indices(120, 300, 20) == [0]  # shorter than N: the first frame
    assert frame_indices(0, 300, 20) == [0]
    capped = frame_indices(30_000, 300, 5)  # 100 candidates, spread over the whole video
    assert len(capped) == 5 and capped[0] == 0 and capped[-1] == 29_700
    assert all(i % 300 == 0 for i in capped) and capped == sorted(set(capped))
    assert frame_indices(30_000, 300, 1) == [0]


def test_fit_within():
    assert fit_within(1080, 1920, 768) == (432, 768)
    assert fit_within(1920, 1080, 768) == (768, 432)
    assert fit_within(360, 640, 768) == (360, 640)  # never enlarged


@pytest.mark.parametrize(("every", "cap"), [(30, 20), (7, 5), (300, 20), (1, 3)])
def test_seeking_picks_the_same_frames_as_reading_all(clips, every, cap):
    fast = list(sample_frames(clips["short"], every, cap, 10_000))
    naive = naive_sample_frames(clips["short"], every, cap)
    assert [i for i, _, _ in fast] == [i for i, _ in naive] == frame_indices(120, every, cap)
    for (_, _, image), (_, expected) in zip(fast, naive, strict=True):
        assert np.abs(image.astype(int) - expected.astype(int)).mean() < 1.0


def reencode(source: Path, target: Path, *, vfr=False, offset=0, **options) -> Path:
    """The same pictures as another encoder would store them (B-frames, odd timing)."""
    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30, options=options)
        stream.width, stream.height, stream.pix_fmt, stream.gop_size = 360, 640, "yuv420p", 50
        clock = Fraction(1, 90_000) if vfr else Fraction(1, 30)
        stream.codec_context.time_base = clock
        pts = 0
        for n, frame in enumerate(src.decode(video=0)):
            frame = frame.reformat(format="yuv420p")
            pts = (pts + (3000 if n % 3 else 4500)) if vfr else n + offset
            frame.pts, frame.time_base = pts, clock
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return target


def rotated(source: Path, target: Path, degrees: int) -> Path:
    """The clip flagged as recorded sideways (the track matrix phones write)."""
    data = bytearray(source.read_bytes())
    at = data.find(b"tkhd")
    matrix = at + 8 + (20 if data[at + 4] == 0 else 32) + 16
    turn = {90: (0, 1, -1, 0), 270: (0, -1, 1, 0)}[degrees]
    a, b, c, d = (v * 65536 for v in turn)
    data[matrix : matrix + 36] = struct.pack(">9i", a, b, 0, c, d, 0, 0, 0, 1 << 30)
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("variant", ["bframes", "open-gop", "vfr", "pts-offset", "rot90", "rot270"])
def test_seeking_matches_reading_all_on_other_encodings(clips, tmp_path, variant):
    source, target = clips["short"], tmp_path / f"{variant}.mp4"
    path = {
        "bframes": lambda: reencode(source, target, preset="medium", bf="3"),
        "open-gop": lambda: reencode(
            source, target, preset="fast", **{"x264-params": "open-gop=1"}
        ),
        "vfr": lambda: reencode(source, target, vfr=True, preset="veryfast"),
        "pts-offset": lambda: reencode(source, target, offset=17, preset="veryfast"),
        "rot90": lambda: rotated(source, target, 90),
        "rot270": lambda: rotated(source, target, 270),
    }[variant]()
    fast = list(sample_frames(path, 13, 50, 10_000))
    naive = naive_sample_frames(path, 13, 50)  # OpenCV applies the rotation flag itself
    assert [i for i, _, _ in fast] == [i for i, _ in naive] == list(range(0, 120, 13))
    for (_, _, image), (_, expected) in zip(fast, naive, strict=True):
        assert image.shape == expected.shape
        assert np.abs(image.astype(int) - expected.astype(int)).mean() < 1.0
    if variant.startswith("rot"):
        assert fast[0][2].shape == (360, 640, 3)  # shown upright: landscape


def test_video_frames_on_the_database(db_url, media_dir, clips):
    settings = settings_for(media_dir, frame_every=30, frame_max_side=320)
    video_id = add_video(db_url, media_dir, 1, clips["short"])
    result = extract_frames(db_url, settings)
    assert (result.videos_done, result.frames_written, result.failed) == (1, 4, {})
    rows = frames_of(db_url, video_id)
    assert [r.frame_index for r in rows] == [0, 30, 60, 90]
    assert [r.timestamp_s for r in rows] == [0.0, 1.0, 2.0, 3.0]
    for row in rows:
        assert row.path == f"frames/{video_id}/{row.frame_index}.jpg"  # by id, not username
        image = cv2.imread(str(media_dir / row.path))
        assert image.shape == (320, 180, 3) == (row.height, row.width, 3)
        assert row.source == "video"
        assert row.settings["frame_every"] == 30 and row.settings["frame_max_side"] == 320
    assert not list(media_dir.rglob("*.tmp"))


def test_study_default_one_in_300_and_minimum_one(db_url, media_dir, clips):
    settings = settings_for(media_dir)  # the study's 1 in 300, 768 px
    long_id = add_video(db_url, media_dir, 1, clips["study"])  # 750 frames
    short_id = add_video(db_url, media_dir, 2, clips["short"])  # 120 frames
    result = extract_frames(db_url, settings)
    assert (result.videos_done, result.frames_written) == (2, 4)
    assert [r.frame_index for r in frames_of(db_url, long_id)] == [0, 300, 600]
    assert [r.frame_index for r in frames_of(db_url, short_id)] == [0]
    assert (frames_of(db_url, long_id)[0].width, frames_of(db_url, long_id)[0].height) == (360, 640)


def test_cap_per_video(db_url, media_dir, clips):
    settings = settings_for(media_dir, frame_every=10, frame_max_per_video=3)
    video_id = add_video(db_url, media_dir, 1, clips["short"])
    extract_frames(db_url, settings)
    assert [r.frame_index for r in frames_of(db_url, video_id)] == [0, 60, 110]


def test_slideshow_uses_its_images(db_url, media_dir, tmp_path):
    images = [
        media.make_reference_image(tmp_path / f"{n}.jpg", seed=n, size=1000) for n in range(3)
    ]
    relative = []
    for n, image in enumerate(images):
        target = media_dir / "slideshows" / "9" / f"{n}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, target)
        relative.append(target.relative_to(media_dir).as_posix())
    video_id = add_video(
        db_url,
        media_dir,
        9,
        status=DownloadStatus.slideshow,
        is_slideshow=True,
        image_paths=relative,
    )
    result = extract_frames(db_url, settings_for(media_dir, frame_max_side=500))
    assert (result.videos_done, result.frames_written) == (1, 3)
    rows = frames_of(db_url, video_id)
    assert [(r.frame_index, r.source, r.width, r.height) for r in rows] == [
        (n, "slideshow", 500, 500) for n in range(3)
    ]
    assert all(r.timestamp_s is None for r in rows)


def test_rerun_does_nothing_and_a_killed_run_is_redone(db_url, media_dir, clips):
    settings = settings_for(media_dir, frame_every=30)
    done_id = add_video(db_url, media_dir, 1, clips["short"])
    assert extract_frames(db_url, settings).videos_done == 1
    before = {(r.frame_index, r.created_at) for r in frames_of(db_url, done_id)}
    again = extract_frames(db_url, settings)
    assert (again.videos_done, again.frames_written, again.skipped) == (0, 0, 0)
    assert {(r.frame_index, r.created_at) for r in frames_of(db_url, done_id)} == before

    # A run killed after writing files but before its rows: the files are orphans, redone.
    killed_id = add_video(db_url, media_dir, 2, clips["short"])
    orphan = media_dir / "frames" / str(killed_id) / "45.jpg"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"\xff\xd8half a jpeg")
    result = extract_frames(db_url, settings)
    assert (result.videos_done, result.frames_written) == (1, 4)
    assert not orphan.exists()
    assert sorted(p.name for p in orphan.parent.iterdir()) == [
        "0.jpg",
        "30.jpg",
        "60.jpg",
        "90.jpg",
    ]


def test_bad_files_are_recorded_and_the_batch_goes_on(db_url, media_dir, clips, tmp_path):
    settings = settings_for(media_dir, frame_every=30)
    html = tmp_path / "page.html"
    html.write_bytes(media.html_page())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(media.truncated(clips["short"].read_bytes()))
    html_id = add_video(db_url, media_dir, 1, html)
    good_id = add_video(db_url, media_dir, 2, clips["short"])
    cut_id = add_video(db_url, media_dir, 3, cut)
    gone_id = add_video(db_url, media_dir, 4, path="videos/gone.mp4")
    escape_id = add_video(db_url, media_dir, 5, path="../../../etc/passwd")
    photos_id = add_video(
        db_url, media_dir, 6, status=DownloadStatus.slideshow, is_slideshow=True,
        image_paths=["slideshows/6/missing.jpg"],
    )  # fmt: skip
    result = extract_frames(db_url, settings)
    assert (result.videos_done, result.frames_written) == (1, 4)
    assert result.failed == {
        "not_mp4": 1, "truncated": 1, "missing": 1, "bad_path": 1, "no_images": 1
    }  # fmt: skip
    assert {f.video_id for f in result.failures} == {html_id, cut_id, gone_id, escape_id, photos_id}
    assert len(frames_of(db_url, good_id)) == 4
    reasons = {
        html_id: "not_mp4", cut_id: "truncated", gone_id: "missing", escape_id: "bad_path",
        photos_id: "no_images",
    }  # fmt: skip
    with session_scope(db_url) as session:
        for video_id in (html_id, cut_id, gone_id, escape_id):
            row = session.get(Download, video_id)
            assert row.status == DownloadStatus.invalid  # the download stage may fetch it again
            assert row.last_error is None  # the download stage's own field, left to it
        photos = session.get(Download, photos_id)
        assert photos.status == DownloadStatus.slideshow and photos.last_error is None
        outcomes = {r.video_id: r for r in session.scalars(select(FrameExtraction))}
    assert {i: (r.status, r.reason) for i, r in outcomes.items() if i != good_id} == {
        i: (FrameStatus.failed, reason) for i, reason in reasons.items()
    }
    assert (outcomes[good_id].status, outcomes[good_id].frames) == (FrameStatus.ok, 4)
    rerun = extract_frames(db_url, settings)  # nothing left that can succeed
    assert (rerun.videos_done, rerun.failed) == (0, {})
    # A new file for the slideshow (the download stage fetched it again): tried anew.
    with session_scope(db_url) as session:
        session.get(Download, photos_id).updated_at = utcnow()
    assert extract_frames(db_url, settings).failed == {"no_images": 1}


def test_only_selected_and_unpruned_videos(db_url, media_dir, clips):
    settings = settings_for(media_dir, frame_every=60)
    first = add_video(db_url, media_dir, 1, clips["short"])
    second = add_video(db_url, media_dir, 2, clips["short"])
    pruned = add_video(db_url, media_dir, 3, clips["short"])
    private = add_video(db_url, media_dir, 4, clips["short"], status=DownloadStatus.private)
    with session_scope(db_url) as session:
        session.get(Video, pruned).pruned_at = utcnow()
    assert extract_frames(db_url, settings, video_ids=[second]).videos_done == 1
    assert frames_of(db_url, first) == []
    result = extract_frames(db_url, settings, limit=10)
    assert result.videos_done == 1 and len(frames_of(db_url, first)) == 2
    assert frames_of(db_url, pruned) == [] and frames_of(db_url, private) == []


def test_concurrent_runs_share_the_work(db_url, media_dir, clips):
    settings = settings_for(media_dir, frame_every=30)
    ids = [add_video(db_url, media_dir, n, clips["short"]) for n in range(1, 7)]
    results, errors = [], []

    def run():
        try:
            results.append(extract_frames(db_url, settings))
        except Exception as exc:  # pragma: no cover - reported by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(r.videos_done for r in results) == len(ids)  # each video done exactly once
    for video_id in ids:
        rows = frames_of(db_url, video_id)
        assert [r.frame_index for r in rows] == [0, 30, 60, 90]
        assert all((media_dir / r.path).is_file() for r in rows)

"""What a kill -9 leaves on disk is cleared by the next run: a frame written without its row, and
the temporary file of a frame cut mid-write (the crash trials check the whole media folder, but a
kill lands inside one JPEG write too rarely to rely on them for it)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gettok import db
from gettok.models.schema import Download, DownloadStatus, Frame, Video
from gettok.sandbox import media
from gettok.settings import get_settings
from gettok.tasks.frames.extract import extract_frames

VIDEO_ID = (1670414400 << 32) | 77


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_rerun_clears_what_a_killed_frame_extraction_left(
    db_url, settings_env, monkeypatch, tmp_path
):
    media_dir = tmp_path / "media"
    clip = media.make_clip(media_dir / "videos" / f"{VIDEO_ID}.mp4", kind="silent", seed=5)
    folder = media_dir / "frames" / str(VIDEO_ID)
    folder.mkdir(parents=True)
    (folder / "9999.jpg").write_bytes(b"\xff\xd8 half a frame from the killed run")
    (folder / ".0.1a2b3c4d.tmp").write_bytes(b"\xff\xd8 cut mid-write")
    monkeypatch.setenv("GETTOK_DATABASE_URL", db_url)
    monkeypatch.setenv("GETTOK_MEDIA_DIR", str(media_dir))
    with db.session_scope(db_url) as session:
        session.add(Video(id=VIDEO_ID, raw={"id": VIDEO_ID}))
        session.flush()
        session.add(
            Download(
                video_id=VIDEO_ID,
                status=DownloadStatus.ok,
                path=clip.relative_to(media_dir).as_posix(),
                bytes=clip.stat().st_size,
            )
        )

    result = extract_frames(db_url, get_settings(), [VIDEO_ID])

    with db.session_scope(db_url) as session:
        paths = {f.path for f in session.scalars(select(Frame))}
    on_disk = {p.relative_to(media_dir).as_posix() for p in folder.iterdir()}
    assert result.videos_done == 1 and paths
    assert on_disk == paths  # nothing but the frames the rows point at

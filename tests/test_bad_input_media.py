"""Bad media on disk behind `ok` downloads (a file replaced, truncated or served wrong and kept):
empty, an HTML page, audio only, a video stream with no frame. Each is told apart by the media
check, and transcription and frame extraction record a status with its reason for it while the
good video beside it in the same batch is processed as usual."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from sqlalchemy import select

from gettok import db
from gettok.local_mode import shipped_whisper_model
from gettok.models.schema import (
    Download,
    DownloadStatus,
    Frame,
    FrameExtraction,
    FrameStatus,
    Transcript,
    Video,
)
from gettok.sandbox import media
from gettok.settings import get_settings
from gettok.tasks.download.media import MediaProblem, probe_media
from gettok.tasks.frames.extract import extract_frames
from gettok.tasks.transcribe import transcribe_videos, whisper_options

FIRST_ID = (1670414400 << 32) | 500


def audio_only(path: Path) -> Path:
    """An mp4 with one AAC stream: 2 s of a tone."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        tone = (0.3 * np.sin(np.arange(32000) * 2 * np.pi * 440 / 16000)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], "fltp", "mono")
            frame.rate = 16000
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def zero_length_video(path: Path) -> Path:
    """An mp4 that declares an H.264 stream and holds no frame of it."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        out.start_encoding()  # header and index written, no sample
    return path


@pytest.fixture
def bad_media(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "media" / "videos"
    folder.mkdir(parents=True)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "html.mp4").write_bytes(media.html_page())
    return {
        "good": media.make_clip(folder / "good.mp4", text="hola Perú", language="es", seed=3),
        "empty": folder / "empty.mp4",
        "html": folder / "html.mp4",
        "audio only": audio_only(folder / "audio.mp4"),
        "zero-length video": zero_length_video(folder / "zero.mp4"),
    }


def test_the_media_check_names_each_problem(bad_media):
    assert probe_media(bad_media["good"]).frame_count >= 1
    reasons = {}
    for name in ("empty", "html", "audio only", "zero-length video"):
        with pytest.raises(MediaProblem) as problem:
            probe_media(bad_media[name])
        reasons[name] = problem.value.reason
    assert reasons["audio only"] == "no_video_stream"
    assert len(set(reasons.values())) >= 3, reasons  # told apart, not one catch-all


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_stages_record_bad_media_and_process_the_good_video(
    db_url, settings_env, monkeypatch, bad_media, tmp_path
):
    monkeypatch.setenv("GETTOK_DATABASE_URL", db_url)
    monkeypatch.setenv("GETTOK_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("GETTOK_WHISPER_MODEL", shipped_whisper_model())
    monkeypatch.setenv("GETTOK_WHISPER_BEAM_SIZE", "1")
    settings = get_settings()
    ids = {name: FIRST_ID + n for n, name in enumerate(bad_media)}
    with db.session_scope(db_url) as session:
        for name, path in bad_media.items():
            session.add(Video(id=ids[name], raw={"id": ids[name]}))
            session.flush()
            session.add(
                Download(
                    video_id=ids[name],
                    status=DownloadStatus.ok,
                    path=path.relative_to(tmp_path / "media").as_posix(),
                    bytes=path.stat().st_size,
                )
            )

    result = transcribe_videos(list(ids.values()), settings, whisper_options(settings, "es"))
    frames = extract_frames(db_url, settings, list(ids.values()))

    with db.session_scope(db_url) as session:
        transcripts = {t.video_id: t for t in session.scalars(select(Transcript))}
        framed = set(session.scalars(select(Frame.video_id)))
        downloads = {d.video_id: d for d in session.scalars(select(Download))}
        extractions = {e.video_id: e for e in session.scalars(select(FrameExtraction))}
    # Every video has a transcript row; what cannot be decoded is failed, with why.
    assert set(transcripts) == set(ids.values())
    assert transcripts[ids["good"]].status == "ok"
    assert ids["good"] in result.done + result.empty
    assert transcripts[ids["audio only"]].status == "ok"  # sound is all a transcript needs
    silent = transcripts[ids["zero-length video"]]  # no sound stream: a silent video, flagged
    assert silent.status == "ok" and silent.is_empty and not silent.text
    for name in ("empty", "html"):
        row = transcripts[ids[name]]
        assert row.status == "failed" and row.error.startswith("audio: "), (name, row.error)
    # Frames: only the good video; the others are recorded invalid with the frames stage's reason.
    assert framed == {ids["good"]} and frames.videos_done == 1
    assert sum(frames.failed.values()) == 4, frames.failed
    for name in ("empty", "html", "audio only", "zero-length video"):
        row = downloads[ids[name]]
        assert row.status is DownloadStatus.invalid, (name, row.status)
        assert extractions[ids[name]].status is FrameStatus.failed, name
    assert downloads[ids["good"]].status is DownloadStatus.ok
    assert not list((tmp_path / "media").rglob("*.tmp"))

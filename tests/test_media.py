"""Synthetic sandbox media are real, playable mp4s; validation rejects every broken body."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from gettok.db import session_scope
from gettok.models.schema import MediaInfo as MediaInfoRow
from gettok.models.schema import Video
from gettok.sandbox import media, media_cache
from gettok.sandbox.clip_pictures import default_caption
from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.corpus import Corpus
from gettok.tasks.download.media import (
    EmptyFile,
    NotMp4,
    NoVideoStream,
    TruncatedMedia,
    UndecodableMedia,
    probe_media,
    save_media_info,
    sniff,
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "speech-es": media.make_clip(folder / "es.mp4", kind="speech", language="es", seed=1),
        "speech-en": media.make_clip(
            folder / "en.mp4", kind="speech", language="en", text="Hello from the sandbox."
        ),
        "music": media.make_clip(folder / "music.mp4", kind="music", duration_s=2.5, seed=3),
        "silent": media.make_clip(folder / "silent.mp4", kind="silent", duration_s=2, fps=25),
    }


def audio_rms(path: Path) -> float:
    with av.open(str(path)) as container:
        samples = [f.to_ndarray() for f in container.decode(container.streams.audio[0])]
    return float(np.sqrt(np.mean(np.concatenate(samples, axis=1) ** 2)))


@pytest.mark.parametrize("name", ["speech-es", "speech-en", "music", "silent"])
def test_clips_are_playable_mp4s(clips, name):
    path = clips[name]
    assert path.read_bytes()[4:8] == b"ftyp"
    info = probe_media(path)
    assert (info.width, info.height, info.video_codec) == (360, 640, "h264")
    assert info.has_audio is (name != "silent")  # "silent" means no audio stream at all
    assert info.audio_codec == (None if name == "silent" else "aac")
    # every frame decodes, and the header's count and duration are the truth
    capture = cv2.VideoCapture(str(path))
    decoded = 0
    while capture.read()[0]:
        decoded += 1
    assert decoded == info.frame_count
    assert info.duration_s == pytest.approx(decoded / info.fps, abs=0.05)


def test_clip_lengths_follow_speech_or_duration(clips):
    assert probe_media(clips["music"]).duration_s == pytest.approx(2.5, abs=0.05)
    silent = probe_media(clips["silent"])
    assert (silent.fps, silent.frame_count) == (25.0, 50)
    short, long = probe_media(clips["speech-en"]), probe_media(clips["speech-es"])
    assert 1.0 < short.duration_s < long.duration_s  # four words vs two sentences
    assert long.duration_s > 3


def test_speech_and_music_are_audible(clips):
    assert audio_rms(clips["speech-es"]) > 0.01
    assert audio_rms(clips["music"]) > 0.01


def test_reference_image_shows_only_in_its_window(tmp_path):
    reference = media.make_reference_image(tmp_path / "ref.jpg", seed=4)
    clip = media.make_reference_image_clip(
        tmp_path / "ref.mp4", reference, between=(1.0, 2.0), kind="silent", duration_s=3, fps=10
    )
    capture = cv2.VideoCapture(str(clip))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    ref = cv2.imread(str(reference))
    size = int(min(0.8 * 360 / ref.shape[1], 0.6 * 640 / ref.shape[0]) * ref.shape[0])
    y0, x0 = (640 - size) // 2, (360 - size) // 2

    def distance(frame):
        crop = frame[y0 + 10 : y0 + size - 10, x0 + 10 : x0 + size - 10]
        expected = cv2.resize(ref, (size, size), interpolation=cv2.INTER_AREA)[10:-10, 10:-10]
        return float(np.abs(crop.astype(int) - expected.astype(int)).mean())

    inside = [distance(frames[i]) for i in range(10, 20)]
    outside = [distance(frames[i]) for i in (0, 5, 25, 29)]
    assert max(inside) < 12 < min(outside)


def test_caption_follows_seed(tmp_path):
    def bottom(seed, caption=None):
        path = media.make_clip(
            tmp_path / f"{seed}-{caption}.mp4",
            kind="silent",
            duration_s=0.2,
            seed=seed,
            caption=caption,
        )
        capture = cv2.VideoCapture(str(path))
        return capture.read()[1][540:]

    assert default_caption(3, "hola") == "" and default_caption(2, "hola a todos")
    assert not np.array_equal(bottom(2), bottom(2, ""))  # even seed: a caption is drawn
    assert np.array_equal(bottom(3), bottom(3, ""))  # odd seed: none


@pytest.fixture
def corpus_video():
    corpus = Corpus(SandboxConfig(videos_per_day=30))
    videos = corpus.videos_on(date(2022, 12, 10))
    return next(v for v in videos if v.clip_kind == "speech")


def test_clip_for_caches_once_under_concurrency(tmp_path, corpus_video):
    paths, errors = [], []

    def fetch():
        try:
            paths.append(media_cache.clip_for(corpus_video, tmp_path))
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(paths)) == 1
    files = list((tmp_path / "clips").iterdir())
    assert files == [paths[0]]  # no temp file left behind
    mtime = paths[0].stat().st_mtime_ns
    assert media_cache.clip_for(corpus_video, tmp_path) == paths[0]
    assert paths[0].stat().st_mtime_ns == mtime  # served from the cache
    assert probe_media(paths[0]).has_audio


def test_slideshow_assets(tmp_path, corpus_video):
    images, audio = media_cache.slideshow_assets(corpus_video, tmp_path)
    assert 2 <= len(images) <= 6
    for image in images:
        assert image.read_bytes()[:3] == b"\xff\xd8\xff"
        assert cv2.imread(str(image)).shape == (1280, 720, 3)
    with av.open(str(audio)) as container:
        assert (
            not container.streams.video and container.streams.audio[0].codec_context.name == "aac"
        )
    assert media_cache.slideshow_assets(corpus_video, tmp_path) == (images, audio)


# --- validation -------------------------------------------------------------------------------


def zero_length_mp4(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    return path


@pytest.mark.parametrize(
    ("make", "problem", "reason"),
    [
        (lambda p, clip: p.write_bytes(b""), EmptyFile, "empty"),
        (lambda p, clip: p.write_bytes(media.html_page()), NotMp4, "not_mp4"),
        (lambda p, clip: p.write_bytes(b'{"statusCode": 10204}'), NotMp4, "not_mp4"),
        (lambda p, clip: p.write_bytes(media.truncated(clip.read_bytes())), TruncatedMedia, None),
        (lambda p, clip: p.write_bytes(clip.read_bytes()[:-1]), TruncatedMedia, "truncated"),
        (lambda p, clip: p.write_bytes(clip.read_bytes()[:40]), TruncatedMedia, "truncated"),
        (lambda p, clip: media.make_audio_only_mp4(p, 1.0), NoVideoStream, "no_video_stream"),
        (lambda p, clip: zero_length_mp4(p), UndecodableMedia, "undecodable"),
    ],
    ids=["empty", "html", "json", "half", "one-byte-short", "header-only", "audio-only", "zero"],
)
def test_validation_rejects_broken_media(tmp_path, clips, make, problem, reason):
    path = tmp_path / "video.mp4"
    make(path, clips["music"])
    with pytest.raises(problem) as caught:
        probe_media(path)
    assert caught.value.reason == (reason or problem.reason)


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated_with_index_at_the_end(tmp_path, keep):
    clip = media.make_clip(tmp_path / "late.mp4", kind="music", duration_s=1, faststart=False)
    data = clip.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")  # the index comes last
    assert probe_media(clip).frame_count == 30
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(media.truncated(data, keep))
    with pytest.raises(TruncatedMedia):
        probe_media(cut)


def test_garbage_after_ftyp_is_undecodable(tmp_path, clips):
    data = bytearray(clips["music"].read_bytes())
    moov = data.find(b"moov")
    data[moov + 200 : moov + 1200] = bytes(1000)  # zero the track tables
    path = tmp_path / "broken.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises((UndecodableMedia, NoVideoStream)):
        probe_media(path)


def test_sniff():
    assert sniff(b"") == "empty"
    assert sniff(media.html_page()[:64]) == "html"
    assert sniff(b"\n  <html><body>") == "html"
    assert sniff(b"\x00\x00\x00\x20ftypisom") == "mp4"
    assert sniff(b"ID3\x04") == "unknown"


def test_save_media_info(db_url, clips):
    info = probe_media(clips["speech-es"])
    with session_scope(db_url) as session:
        session.add(Video(id=(1_670_000_000 << 32) | 7, raw={}))
    for _ in range(2):  # an update, not a second row
        with session_scope(db_url) as session:
            save_media_info(session, (1_670_000_000 << 32) | 7, info)
    with session_scope(db_url) as session:
        rows = session.query(MediaInfoRow).all()
        assert len(rows) == 1
        row = rows[0]
        assert (row.frame_count, row.width, row.height, row.has_audio) == (
            info.frame_count,
            360,
            640,
            True,
        )
        assert (row.video_codec, row.audio_codec) == ("h264", "aac")
        assert row.duration_s == pytest.approx(info.duration_s)

"""Corpus videos' media (clips and slideshow assets), generated on first use and cached on disk:
videos that share what decides their media share one file, written once even when requested
concurrently."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from gettok.sandbox.clip_audio import music
from gettok.sandbox.clip_pictures import Scene, write_jpeg
from gettok.sandbox.faces import FACE_FROM_S
from gettok.sandbox.media import MEDIA_VERSION, make_clip, write_audio

if TYPE_CHECKING:
    from gettok.sandbox.corpus import CorpusVideo

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def _atomic(final: Path, write) -> Path:
    """Run `write(temp_path)` once per final path, then rename it into place (concurrency-safe)."""
    if final.exists():
        return final
    with _lock_for(final):
        if final.exists():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(
            f".{final.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{final.suffix}"
        )
        try:
            write(temp)
            os.replace(temp, final)
        finally:
            temp.unlink(missing_ok=True)
    return final


def clip_key(video: CorpusVideo) -> str:
    """What decides a corpus video's clip: videos that share it share one cached file."""
    parts = [
        MEDIA_VERSION,
        video.clip_kind,
        video.language,
        str(video.clip_seed),
        f"{video.duration_s:.2f}",
    ]
    if video.clip_kind == "speech":
        parts.append(video.speech_text or "")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def clip_for(video: CorpusVideo, cache_dir: Path | str, face: Path | None = None) -> Path:
    """The mp4 for a corpus video, generated on first use and cached under `cache_dir`.

    `face`: a photo shown from `faces.FACE_FROM_S` seconds to the end (the watchlist's truth).
    """
    key = clip_key(video)
    if face is not None:
        key += "-" + hashlib.sha256(Path(face).read_bytes()).hexdigest()[:12]
    final = Path(cache_dir) / "clips" / f"{video.clip_kind}-{video.language}-{key}.mp4"
    # Speech sets its own length (the words must fit); other kinds use the corpus duration.
    duration = None if video.clip_kind == "speech" else max(1.0, float(video.duration_s))
    return _atomic(
        final,
        lambda temp: make_clip(
            temp,
            kind=video.clip_kind,
            text=video.speech_text or None,
            language=video.language,
            duration_s=duration,
            seed=video.clip_seed,
            overlay_image=face,
            overlay_between=(FACE_FROM_S, float("inf")) if face is not None else None,
        ),  # fmt: skip
    )


def slideshow_assets(video: CorpusVideo, cache_dir: Path | str) -> tuple[list[Path], Path]:
    """JPEG images (2 to 6) and an .m4a sound for a photo post, cached under `cache_dir`."""
    folder = Path(cache_dir) / "slideshows" / f"{MEDIA_VERSION}-{video.clip_seed}"
    count = 2 + video.clip_seed % 5
    images = []
    for n in range(count):
        scene = Scene(720, 1280, video.clip_seed * 7 + n, f"photo {n + 1} of {count}", None)
        picture = scene.draw(n, n * 0.7, False)
        images.append(
            _atomic(folder / f"image-{n}.jpg", lambda temp, p=picture: write_jpeg(temp, p))
        )
    audio = _atomic(
        folder / "audio.m4a", lambda temp: write_audio(temp, music(6.0, video.clip_seed))
    )
    return images, audio

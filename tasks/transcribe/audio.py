"""Clips' audio for Whisper: decoded to 16 kHz mono straight from the mp4, and cut into the ≤30 s
windows that hold its speech."""

from __future__ import annotations

import gc
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
WINDOW_S = 30.0  # Whisper's receptive field: the batched pipeline truncates longer clips


class AudioError(RuntimeError):
    """The file could not be decoded (corrupt, truncated, not a media file)."""


def decode_clip(path: str | Path) -> np.ndarray:
    """16 kHz mono float32 straight from the mp4 (PyAV); an empty array when it has no audio.

    faster-whisper's `decode_audio` does the same but runs `gc.collect()` after every file
    (0.13 s in a worker with Prefect loaded); `decode_clips` collects once per batch instead.
    """
    import av

    parts = []
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                return np.zeros(0, dtype=np.float32)
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in _valid_frames(container.decode(audio=0)):
                parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise AudioError(f"{type(exc).__name__}: {exc}") from exc
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(parts).astype(np.float32) / 32768.0


def _valid_frames(frames):
    """Skip frames FFmpeg cannot decode, as faster-whisper does, rather than lose the clip."""
    import av

    iterator = iter(frames)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue


def decode_clips(paths: Sequence[str | Path]) -> list[np.ndarray | AudioError]:
    """Decode a batch; a file that cannot be decoded gives its `AudioError` in its place."""
    clips: list[np.ndarray | AudioError] = []
    for path in paths:
        try:
            clips.append(decode_clip(path))
        except AudioError as exc:
            clips.append(exc)
    gc.collect()  # PyAV resamplers hold reference cycles (faster-whisper issue #390)
    return clips


def speech_windows(audio: np.ndarray, vad: bool) -> list[tuple[int, int]]:
    """Sample ranges of at most 30 s that hold the clip's speech (all of it without VAD)."""
    n, limit = audio.shape[0], int(WINDOW_S * SAMPLE_RATE)
    if n == 0:
        return []
    if not vad:
        parts = math.ceil(n / limit)
        bounds = np.linspace(0, n, parts + 1).astype(int)
        return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    # The batched pipeline's own VAD defaults; regions come back ≤ 30 s with padding included.
    regions = get_speech_timestamps(
        audio, VadOptions(max_speech_duration_s=WINDOW_S, min_silence_duration_ms=160)
    )
    windows: list[list[int]] = []
    for region in regions:
        start, end = int(region["start"]), min(int(region["end"]), n)
        if windows and end - windows[-1][0] <= limit:
            windows[-1][1] = end  # keep the pause inside the window: timestamps stay in clip time
        else:
            windows.append([start, min(end, start + limit)])
    return [(a, b) for a, b in windows if b > a]

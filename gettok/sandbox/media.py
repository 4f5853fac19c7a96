"""Synthetic TikTok media for the sandbox: real mp4 clips and broken bodies.

Clips are H.264 (libx264 when the bundled FFmpeg has it, else MPEG-4 Part 2) with AAC audio,
written with PyAV and moov-first (faststart) like the live site's. Pictures are a moving scene with
the frame number printed on it, so a test can read which frame it got; even seeds also show a
caption, so there is on-screen text. Audio by kind: "speech" is espeak-ng reading the text, "music"
is chords with a beat and no words, and "silent" has NO audio stream at all (the case a transcriber
must survive). `clip_audio` and `clip_pictures` make the sound and the pictures; `media_cache`
keeps the corpus videos' media.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

from gettok.sandbox.clip_audio import AUDIO_RATE, default_speech, music, speak
from gettok.sandbox.clip_pictures import Scene, default_caption, load_image, write_jpeg

ClipKind = Literal["speech", "silent", "music"]
# A keyframe every 2 s, as streaming encoders commonly use: it is what makes seeking cheap.
GOP_SECONDS = 2
PADDING_S = 0.6
DEFAULT_SILENT_S = 4.0
MEDIA_VERSION = "1"  # bump when the picture or sound changes, so caches regenerate

# --- clips -----------------------------------------------------------------------------------


def _video_codec() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def make_clip(
    path: Path | str,
    *,
    kind: ClipKind = "speech",
    text: str | None = None,
    language: str = "en",
    duration_s: float | None = None,
    width: int = 360,
    height: int = 640,
    fps: int = 30,
    seed: int = 0,
    caption: str | None = None,
    overlay_image: Path | str | np.ndarray | None = None,
    overlay_between: tuple[float, float] | None = None,
    keyframe_interval: int | None = None,
    faststart: bool = True,
) -> Path:
    """Write a playable mp4 at `path` and return it.

    Length: the speech plus a little padding, or `duration_s` when given (speech is cut to fit).
    `caption=None` follows the seed rule of `default_caption`; `caption=""` shows none.
    `overlay_image` (a path or BGR array) is shown centred while `overlay_between` (seconds,
    default the whole clip) covers the frame time: a clip that contains a reference image, for the
    watchlist. `keyframe_interval` is in frames (default GOP_SECONDS * fps); `faststart=False`
    puts the index (moov) after the media, as many phone and server encoders do.
    """
    if kind not in ("speech", "silent", "music"):
        raise ValueError(f"unknown clip kind {kind!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text, audio, length = _soundtrack(kind, text, language, seed, duration_s)
    n_frames = max(1, round(length * fps))
    length = n_frames / fps
    if audio is not None:  # exactly as long as the pictures
        audio = np.pad(audio, (0, max(0, int(length * AUDIO_RATE) - len(audio))))[
            : int(length * AUDIO_RATE)
        ]
    overlay = load_image(overlay_image) if overlay_image is not None else None
    shown = overlay_between or (0.0, length)
    scene = Scene(
        width, height, seed, default_caption(seed, text) if caption is None else caption, overlay
    )

    def picture(index: int, t: float) -> np.ndarray:
        return scene.draw(index, t, overlay is not None and shown[0] <= t < shown[1])

    muxer_options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=muxer_options) as container:
        gop = keyframe_interval or GOP_SECONDS * fps
        vstream = _video_stream(container, width, height, fps, gop)
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        _mux(container, vstream, picture, n_frames, fps, astream, audio)
    return path


def _soundtrack(
    kind: ClipKind, text: str | None, language: str, seed: int, duration_s: float | None
) -> tuple[str | None, np.ndarray | None, float]:
    """The clip's spoken text (a default one for speech), its audio (None: silent) and length."""
    if kind == "speech":
        text = text if text and text.strip() else default_speech(language, seed)
        audio = speak(text, language, seed)
        length = duration_s if duration_s is not None else len(audio) / AUDIO_RATE + PADDING_S
        return text, audio, length
    length = duration_s if duration_s is not None else DEFAULT_SILENT_S
    return text, music(length, seed) if kind == "music" else None, length


def _video_stream(
    container: av.container.OutputContainer, width: int, height: int, fps: int, gop: int
) -> av.VideoStream:
    """The H.264 (else MPEG-4) stream, a keyframe every `gop` frames."""
    codec = _video_codec()
    options = {"preset": "ultrafast", "tune": "zerolatency"} if codec == "libx264" else {}
    vstream = container.add_stream(codec, rate=fps, options=options)
    vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
    vstream.gop_size = gop
    vstream.codec_context.time_base = Fraction(1, fps)
    return vstream


def _mux(
    container: av.container.OutputContainer,
    vstream: av.VideoStream,
    picture: Callable[[int, float], np.ndarray],
    n_frames: int,
    fps: int,
    astream: av.AudioStream | None,
    audio: np.ndarray | None,
) -> None:
    """Encode every picture, interleaved with the audio up to each frame's end; then flush."""
    audio_pos = 0
    for index in range(n_frames):
        t = index / fps
        yuv = cv2.cvtColor(picture(index, t), cv2.COLOR_BGR2YUV_I420)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = index
        container.mux(vstream.encode(frame))
        # Interleave: audio up to the end of this video frame.
        while astream is not None and audio_pos < min(len(audio), int((t + 1 / fps) * AUDIO_RATE)):
            container.mux(astream.encode(_audio_frame(audio, audio_pos)))
            audio_pos += 1024
    container.mux(vstream.encode(None))
    if astream is not None:
        while audio_pos < len(audio):
            container.mux(astream.encode(_audio_frame(audio, audio_pos)))
            audio_pos += 1024
        container.mux(astream.encode(None))


def _audio_frame(audio: np.ndarray, start: int) -> av.AudioFrame:
    chunk = audio[start : start + 1024]
    frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
    frame.sample_rate = AUDIO_RATE
    frame.pts = start
    frame.time_base = Fraction(1, AUDIO_RATE)
    return frame


def make_reference_image(path: Path | str, seed: int = 0, size: int = 320) -> Path:
    """A distinctive square JPEG (bold stripes, a ring and a label): a watchlist reference image."""
    rng = np.random.default_rng(10_000 + seed)
    img = np.zeros((size, size, 3), np.uint8)
    colours = rng.integers(0, 256, size=(4, 3))
    stripe = size // 4
    for n, colour in enumerate(colours):
        img[:, n * stripe : (n + 1) * stripe] = colour
    cv2.circle(img, (size // 2, size // 2), size // 3, (255, 255, 255), max(4, size // 20))
    cv2.putText(img, f"REF {seed}", (size // 8, size // 2 + size // 16), cv2.FONT_HERSHEY_DUPLEX,
                size / 200, (0, 0, 0), max(2, size // 80), cv2.LINE_AA)  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jpeg(path, img)
    return path


def make_reference_image_clip(
    path: Path | str,
    reference: Path | str | np.ndarray,
    *,
    between: tuple[float, float] | None = None,
    **kwargs,
) -> Path:
    """A clip showing `reference` (centred, large) during `between` seconds: for the watchlist."""
    return make_clip(path, overlay_image=reference, overlay_between=between, **kwargs)


def make_audio_only_mp4(path: Path | str, duration_s: float = 2.0, seed: int = 0) -> Path:
    """An mp4 (ftyp and all) with only an AAC stream: what a broken download can look like."""
    audio = music(duration_s, seed)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        for start in range(0, len(audio), 1024):
            container.mux(stream.encode(_audio_frame(audio, start)))
        container.mux(stream.encode(None))
    return Path(path)


def write_audio(path: Path | str, audio: np.ndarray) -> Path:
    """AAC in an .m4a container (what slideshow posts carry as their sound)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        for start in range(0, len(audio), 1024):
            container.mux(stream.encode(_audio_frame(audio, start)))
        container.mux(stream.encode(None))
    return Path(path)


# --- broken bodies for the web fault injection -----------------------------------------------


def html_page(title: str = "TikTok - Make Your Day", body: str = "Please wait...") -> bytes:
    """An HTML page, as a CDN or a login wall serves where media was expected."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{title}</title></head><body><div id="app">{body}</div></body></html>'
    ).encode()


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first `keep` share of `data` (at least 1 byte short): a dropped or cut-off transfer."""
    cut = min(len(data) - 1, int(len(data) * keep))
    return data[: max(0, cut)]

"""Synthetic TikTok media for the sandbox: real mp4 clips, slideshow assets and broken bodies.

Clips are H.264 (libx264 when the bundled FFmpeg has it, else MPEG-4 Part 2) with AAC audio,
written with PyAV and moov-first (faststart) like the live site's. Pictures are a moving scene with
the frame number printed on it, so a test can read which frame it got; even seeds also show a
caption, so there is on-screen text. Audio by kind: "speech" is espeak-ng reading the text, "music"
is chords with a beat and no words, and "silent" has NO audio stream at all (the case a transcriber
must survive).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import threading
import unicodedata
import uuid
import wave
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import av
import cv2
import numpy as np

from gettok.sandbox.faces import FACE_FROM_S

if TYPE_CHECKING:
    from gettok.sandbox.corpus import CorpusVideo

ClipKind = Literal["speech", "silent", "music"]
AUDIO_RATE = 44_100
# A keyframe every 2 s, as streaming encoders commonly use: it is what makes seeking cheap.
GOP_SECONDS = 2
PADDING_S = 0.6
DEFAULT_SILENT_S = 4.0
MEDIA_VERSION = "1"  # bump when the picture or sound changes, so caches regenerate

_SENTENCES = {
    "es": [
        "Hoy marchamos por la democracia en el centro de Lima.",
        "El congreso debe escuchar al pueblo, no a los de siempre.",
        "Miren lo que pasó esta tarde frente al palacio de gobierno.",
        "No apoyo a nadie, solo quiero que haya paz en mi país.",
        "Compartan este video para que todos sepan la verdad.",
    ],
    "en": [
        "Today we marched for democracy in the city centre.",
        "Congress has to listen to the people, not to the usual few.",
        "Look at what happened this afternoon in front of the palace.",
        "I do not support anyone, I just want peace in my country.",
        "Share this video so that everyone knows the truth.",
    ],
}


def default_speech(language: str, seed: int) -> str:
    """Two sentences in `language`, chosen by `seed`: what a clip says when no text is given."""
    bank = _SENTENCES.get(language, _SENTENCES["en"])
    return f"{bank[seed % len(bank)]} {bank[(seed + 2) % len(bank)]}"


def default_caption(seed: int, text: str | None) -> str:
    """On-screen text for even seeds ("" for odd ones): the first words of the speech, or a tag."""
    if seed % 2:
        return ""
    words = (text or "").split()[:4]
    return " ".join(words) if words else f"#sandbox {seed}"


# --- audio -----------------------------------------------------------------------------------


def speak(text: str, language: str = "en", seed: int = 0) -> np.ndarray:
    """espeak-ng reading `text`, as float32 mono at AUDIO_RATE (resampled by PyAV)."""
    voice = "es" if language == "es" else "en"
    with tempfile.TemporaryDirectory(prefix="gettok-speak-") as tmp:
        wav_path = Path(tmp) / "speech.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(150 + seed % 30), "-p", str(35 + seed % 30),
             "-w", str(wav_path), "--stdin"],
            input=text.encode("utf-8"), check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        with wave.open(str(wav_path), "rb") as wav:
            rate, width = wav.getframerate(), wav.getsampwidth()
            raw = wav.readframes(wav.getnframes())
            channels = wav.getnchannels()
    if width != 2:
        raise RuntimeError(f"espeak-ng wrote {8 * width}-bit audio; expected 16-bit")
    samples = np.frombuffer(raw, dtype=np.int16).reshape(-1, channels)[:, 0].copy()
    return _resample(samples, rate)


def _resample(samples: np.ndarray, rate: int) -> np.ndarray:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)
    parts = [f.to_ndarray() for f in resampler.resample(frame)]
    parts += [f.to_ndarray() for f in resampler.resample(None)]
    return np.concatenate(parts, axis=1)[0].astype(np.float32) if parts else np.zeros(0, np.float32)


def music(duration_s: float, seed: int = 0) -> np.ndarray:
    """Chords with a beat and no words, float32 mono at AUDIO_RATE."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * AUDIO_RATE)) / AUDIO_RATE
    bpm = 90 + int(rng.integers(0, 50))
    beat = 60.0 / bpm
    roots = 220.0 * 2 ** (rng.choice([0, 3, 5, 7, 8, 10], size=4) / 12)
    chord_idx = (t // (4 * beat)).astype(int) % len(roots)
    out = np.zeros_like(t)
    for ratio in (1.0, 1.26, 1.5):  # a major triad on each root
        out += np.sin(2 * np.pi * roots[chord_idx] * ratio * t)
    envelope = np.exp(-6 * (t % beat))  # a pluck on every beat
    kick = np.sin(2 * np.pi * 55 * t) * np.exp(-25 * (t % beat))
    return (0.12 * out * envelope + 0.3 * kick).astype(np.float32)


# --- pictures --------------------------------------------------------------------------------


def ascii_text(text: str) -> str:
    """OpenCV's fonts draw ASCII only: drop accents (é -> e) and anything else."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _wrap(text: str, width_chars: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width_chars:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


def _load_image(image: Path | str | np.ndarray) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    loaded = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if loaded is None:
        raise ValueError(f"cannot read image {image}")
    return loaded


class _Scene:
    """A moving picture: gradient background, bouncing shapes, a frame counter, a caption."""

    def __init__(
        self, width: int, height: int, seed: int, caption: str, overlay: np.ndarray | None
    ):
        rng = np.random.default_rng(seed)
        top, bottom = rng.integers(20, 200, size=3), rng.integers(20, 200, size=3)
        ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        self.background = (top * (1 - ramp) + bottom * ramp).astype(np.uint8).repeat(width, axis=1)
        self.width, self.height = width, height
        self.shapes = [
            (
                rng.uniform(0, 1, 2),
                rng.uniform(-0.4, 0.4, 2),
                tuple(int(c) for c in rng.integers(0, 256, 3)),
            )
            for _ in range(3)
        ]
        self.caption_lines = _wrap(ascii_text(caption), max(8, width // 18))
        self.overlay = None
        if overlay is not None:
            scale = min(0.8 * width / overlay.shape[1], 0.6 * height / overlay.shape[0])
            size = (max(1, int(overlay.shape[1] * scale)), max(1, int(overlay.shape[0] * scale)))
            self.overlay = cv2.resize(overlay, size, interpolation=cv2.INTER_AREA)

    def draw(self, index: int, t: float, show_overlay: bool) -> np.ndarray:
        img = self.background.copy()
        w, h = self.width, self.height
        r = max(6, min(w, h) // 10)
        for n, (start, speed, colour) in enumerate(self.shapes):
            x, y = np.abs(((start + speed * t) % 2.0) - 1.0)  # bounce between the edges
            centre = (int(r + x * (w - 2 * r)), int(r + y * (h - 2 * r)))
            if n % 2:
                cv2.rectangle(
                    img, (centre[0] - r, centre[1] - r), (centre[0] + r, centre[1] + r), colour, -1
                )
            else:
                cv2.circle(img, centre, r, colour, -1)
        if show_overlay and self.overlay is not None:
            oh, ow = self.overlay.shape[:2]
            y0, x0 = (h - oh) // 2, (w - ow) // 2
            img[y0 : y0 + oh, x0 : x0 + ow] = self.overlay
        scale = w / 360
        origin, thickness = (int(10 * scale), int(40 * scale)), max(1, int(2 * scale))
        cv2.putText(img, f"frame {index}", origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    thickness, cv2.LINE_AA)  # fmt: skip
        for n, line in enumerate(self.caption_lines):
            y = int(h - (len(self.caption_lines) - n) * 34 * scale - 20 * scale)
            (tw, th), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_DUPLEX, 0.8 * scale, 2)
            x = max(0, (w - tw) // 2)
            cv2.rectangle(img, (x - 6, y - th - 8), (x + tw + 6, y + 8), (0, 0, 0), -1)
            cv2.putText(
                img,
                line,
                (x, y),
                cv2.FONT_HERSHEY_DUPLEX,
                0.8 * scale,
                (255, 255, 255),
                2,
                cv2.LINE_AA,
            )
        return img


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
    if kind == "speech":
        text = text if text and text.strip() else default_speech(language, seed)
        audio = speak(text, language, seed)
        length = duration_s if duration_s is not None else len(audio) / AUDIO_RATE + PADDING_S
    else:
        length = duration_s if duration_s is not None else DEFAULT_SILENT_S
        audio = music(length, seed) if kind == "music" else None
    n_frames = max(1, round(length * fps))
    length = n_frames / fps
    if audio is not None:
        audio = np.pad(audio, (0, max(0, int(length * AUDIO_RATE) - len(audio))))[
            : int(length * AUDIO_RATE)
        ]
    overlay = _load_image(overlay_image) if overlay_image is not None else None
    shown = overlay_between or (0.0, length)
    scene = _Scene(
        width, height, seed, default_caption(seed, text) if caption is None else caption, overlay
    )

    muxer_options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=muxer_options) as container:
        codec = _video_codec()
        options = {"preset": "ultrafast", "tune": "zerolatency"} if codec == "libx264" else {}
        vstream = container.add_stream(codec, rate=fps, options=options)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        vstream.gop_size = keyframe_interval or GOP_SECONDS * fps
        vstream.codec_context.time_base = Fraction(1, fps)
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        audio_pos = 0
        for index in range(n_frames):
            t = index / fps
            image = scene.draw(index, t, overlay is not None and shown[0] <= t < shown[1])
            yuv = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = index
            container.mux(vstream.encode(frame))
            # Interleave: audio up to the end of this video frame.
            while astream is not None and audio_pos < min(
                len(audio), int((t + 1 / fps) * AUDIO_RATE)
            ):
                container.mux(astream.encode(_audio_frame(audio, audio_pos)))
                audio_pos += 1024
        container.mux(vstream.encode(None))
        if astream is not None:
            while audio_pos < len(audio):
                container.mux(astream.encode(_audio_frame(audio, audio_pos)))
                audio_pos += 1024
            container.mux(astream.encode(None))
    return path


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
    _write_jpeg(path, img)
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


# --- cached media for corpus videos ---------------------------------------------------------

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


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
        raise OSError(f"cannot write {path}")


def slideshow_assets(video: CorpusVideo, cache_dir: Path | str) -> tuple[list[Path], Path]:
    """JPEG images (2 to 6) and an .m4a sound for a photo post, cached under `cache_dir`."""
    folder = Path(cache_dir) / "slideshows" / f"{MEDIA_VERSION}-{video.clip_seed}"
    count = 2 + video.clip_seed % 5
    images = []
    for n in range(count):
        scene = _Scene(720, 1280, video.clip_seed * 7 + n, f"photo {n + 1} of {count}", None)
        picture = scene.draw(n, n * 0.7, False)
        images.append(
            _atomic(folder / f"image-{n}.jpg", lambda temp, p=picture: _write_jpeg(temp, p))
        )
    audio = _atomic(
        folder / "audio.m4a", lambda temp: write_audio(temp, music(6.0, video.clip_seed))
    )
    return images, audio


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

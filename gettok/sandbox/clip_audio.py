"""The sound of sandbox clips: espeak-ng reading a text ("speech"), or chords with a beat and no
words ("music"), as float32 mono at AUDIO_RATE."""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 44_100

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

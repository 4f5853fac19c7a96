"""faster-whisper over many short clips at once: decode, cut into ≤30 s windows, batch, map back.

faster-whisper's `BatchedInferencePipeline` batches the 30 s windows of ONE input. TikTok clips are
15-90 s, so one clip fills a batch poorly. We concatenate the speech windows of many clips into
one array and pass them as `clip_timestamps` (seconds; faster-whisper 1.2.1 truncates any clip over
30 s and skips its own VAD when they are given), then map each segment back to its clip.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from gettok.tasks.transcribe import bundled_base
from gettok.tasks.transcribe.audio import SAMPLE_RATE, WINDOW_S, speech_windows
from gettok.tasks.transcribe.language import LanguageChoice, choose_language, detect_language
from gettok.tasks.transcribe.whisper_model import resolve_model, weights_sha256

log = logging.getLogger(__name__)

# Whisper's own silence rule (openai/whisper transcribe.py): a window the model thinks holds no
# speech AND decodes with low confidence is hallucination-prone; its text is kept out of `text`.
NO_SPEECH_PROB = 0.6
SILENT_LOGPROB = -1.0
# Fewer words than this is "near-empty" (see `is_near_empty`).
MIN_WORDS = 3
EMPTY_RULE = "v1:vad-none|words<3 excl. [tags] (tags) music-symbols|whisper-silence-rule"


class WhisperOptions(BaseModel):
    """What decides a transcript's content; hashed as its provenance (device-independent)."""

    model: str = "tiny.en"
    device: str = "auto"
    compute_type: str = "auto"
    beam_size: int = 5
    vad: bool = True
    language: str | None = None  # the campaign's language: a hint, or forced (below)
    force_language: bool = False  # transcribe every clip in `language`, whatever is detected
    # Detection below this probability is unsure: the hint decides (see `choose_language`).
    hint_below: float = 0.5
    timestamps: bool = False  # segment timestamps inside each window (else one segment per window)
    batch_size: int = 8
    cpu_threads: int = 0  # 0: CTranslate2's default

    @property
    def model_name(self) -> str:
        """The model as provenance names it: its name, or a local directory's own name (never a
        path on one machine)."""
        if self.model in bundled_base.NAMES:
            return "base"  # the joined copy of faster-whisper-base
        if not Path(self.model).is_dir():
            return self.model
        if Path(self.model).resolve() == Path(resolve_model("tiny.en")).resolve():
            return "tiny.en"  # the shipped copy's folder is just called "model"
        return Path(self.model).name

    def language_settings(self) -> dict[str, Any]:
        """How the language is chosen. Forced and no-hint runs keep the keys (and so the hash)
        they had before hints existed: their transcripts stay valid."""
        if self.force_language or not self.language:
            return {"language": self.language}
        return {"language": None, "language_hint": self.language, "hint_below": self.hint_below}

    def provenance(self) -> dict[str, Any]:
        """The settings that change the output: stored with every transcript and hashed. Local
        weights (a directory, the shipped tiny.en) add their content hash: two directories of the
        same name hold different models."""
        weights = weights_sha256(self.model)
        return {
            "engine": "faster-whisper",
            "pipeline": "batched-clip-windows-v1",
            "model": self.model_name,
            **({"weights_sha256": weights} if weights else {}),
            "beam_size": self.beam_size,
            "vad": self.vad,
            **self.language_settings(),
            "timestamps": self.timestamps,
            "window_s": WINDOW_S,
            "empty_rule": EMPTY_RULE,
        }


class SpeechSegment(BaseModel):
    start: float  # seconds from the start of the clip
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    silent: bool = False  # Whisper's silence rule fired: kept here, left out of the text


class ClipTranscript(BaseModel):
    text: str
    language: str | None  # the language it was transcribed in
    language_probability: float | None  # Whisper's probability for `detected_language`
    detected_language: str | None = None  # None: English-only model, or no speech
    language_source: str | None = None  # detected | hint | forced | model (English-only)
    segments: list[SpeechSegment]
    duration_s: float
    speech_s: float  # audio that went to the model (after VAD)
    is_empty: bool
    has_audio: bool = True


# --- text ----------------------------------------------------------------------------------

_TAGS = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|[♪♫♬🎵🎶]")
_WORD = re.compile(r"\w+(?:'\w+)?")


def spoken_words(text: str) -> list[str]:
    """The words of a transcript, without sound tags ([Music], (applause)) or music symbols."""
    return _WORD.findall(_TAGS.sub(" ", text).lower())


def is_near_empty(text: str) -> bool:
    """Fewer than 3 words once tags are gone.

    On silence and music Whisper emits nothing, a sound tag, or a stock hallucination of one or two
    words ("you", "Thank you."); a clip that says anything at all says more than that. Such
    transcripts are kept but flagged, as the Ecuador study flagged music-only videos.
    """
    return len(spoken_words(text)) < MIN_WORDS


# --- transcription -------------------------------------------------------------------------


def transcribe_clips(
    model, clips: Sequence[np.ndarray], options: WhisperOptions
) -> list[ClipTranscript]:
    """Transcribe many decoded clips in shared batches; one `ClipTranscript` per clip, in order."""
    windows = [speech_windows(audio, options.vad) for audio in clips]
    multilingual = bool(model.model.is_multilingual)
    choices = [
        choose_language(
            detect_language(model, audio, clip_windows[0])
            if multilingual and clip_windows
            else None,
            options,
            multilingual,
        )
        for audio, clip_windows in zip(clips, windows, strict=True)
    ]
    languages = [c.language for c in choices]
    if not multilingual and options.language not in (None, "en"):
        log.warning(
            "model %s is English-only: campaign language %r ignored",
            options.model,
            options.language,
        )

    segments: list[list[SpeechSegment]] = [[] for _ in clips]
    # One pipeline call per language: the prompt's language token is shared by the whole call.
    for language in sorted({lang for lang in languages if lang}):
        members = [i for i, lang in enumerate(languages) if lang == language and windows[i]]
        for index, segment in _transcribe_group(model, clips, windows, members, language, options):
            segments[index].append(segment)

    results = []
    for i, audio in enumerate(clips):
        spoken = [s for s in segments[i] if not s.silent]
        text = " ".join(s.text.strip() for s in spoken if s.text.strip())
        choice = choices[i] if windows[i] else LanguageChoice(language=None)
        results.append(
            ClipTranscript(
                text=text,
                language=choice.language,
                language_probability=choice.probability,
                detected_language=choice.detected,
                language_source=choice.source,
                segments=segments[i],
                duration_s=round(audio.shape[0] / SAMPLE_RATE, 3),
                speech_s=round(sum(b - a for a, b in windows[i]) / SAMPLE_RATE, 3),
                is_empty=not windows[i] or is_near_empty(text),
                has_audio=audio.shape[0] > 0,
            )
        )
    return results


def _transcribe_group(model, clips, windows, members, language, options):
    """Yield (clip index, segment) for the clips of one language, batched across clips."""
    from faster_whisper import BatchedInferencePipeline

    if not members:
        return
    pieces, owners, clip_timestamps, offset = [], [], [], 0
    for i in members:
        for a, b in windows[i]:
            pieces.append(clips[i][a:b])
            owners.append((i, a / SAMPLE_RATE))
            clip_timestamps.append(
                {"start": offset / SAMPLE_RATE, "end": (offset + b - a) / SAMPLE_RATE}
            )
            offset += b - a
    starts = np.array([c["start"] for c in clip_timestamps])
    pipeline = BatchedInferencePipeline(model)
    found, _info = pipeline.transcribe(
        np.concatenate(pieces),
        language=language,
        clip_timestamps=clip_timestamps,
        batch_size=options.batch_size,
        beam_size=options.beam_size,
        without_timestamps=not options.timestamps,
        vad_filter=False,
    )
    for seg in found:
        # The midpoint, not the start: faster-whisper rounds window offsets down to a sample.
        w = int(
            np.clip(
                np.searchsorted(starts, (seg.start + seg.end) / 2, side="right") - 1,
                0,
                len(starts) - 1,
            )
        )
        index, clip_start = owners[w]
        shift = clip_start - starts[w]
        yield (
            index,
            SpeechSegment(
                start=round(max(seg.start + shift, 0.0), 3),
                end=round(max(seg.end + shift, 0.0), 3),
                text=seg.text.strip(),
                avg_logprob=float(seg.avg_logprob),
                no_speech_prob=float(seg.no_speech_prob),
                compression_ratio=float(seg.compression_ratio),
                silent=seg.no_speech_prob > NO_SPEECH_PROB and seg.avg_logprob < SILENT_LOGPROB,
            ),
        )

"""Which language a clip is transcribed in: Whisper detects it; the campaign's language is a hint
for unsure detections, or forced when the study asks (`force_language = true`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel

if TYPE_CHECKING:
    from gettok.tasks.transcribe.whisper import WhisperOptions


def detect_language(model, audio: np.ndarray, window: tuple[int, int]) -> tuple[str, float]:
    """Language of a clip from its first speech window (multilingual models only)."""
    language, probability, _ = model.detect_language(audio=audio[window[0] : window[1]])
    return language, float(probability)


class LanguageChoice(BaseModel):
    """The language a clip is transcribed in, what Whisper detected, and what decided."""

    language: str | None
    detected: str | None = None
    probability: float | None = None
    source: str | None = None  # detected | hint | forced | model


def choose_language(
    detected: tuple[str, float] | None, options: WhisperOptions, multilingual: bool
) -> LanguageChoice:
    """Whisper's detection decides, unless the campaign forces its language, or detection is
    unsure (probability below `hint_below`) and the campaign gives a hint.

    0.5 by default: Whisper's top language then outweighs all others together; below it a short
    or noisy clip is as likely to be misheard (the Ecuador study's English and Portuguese clips
    among Spanish ones are confident detections and keep their own language)."""
    if not multilingual:
        return LanguageChoice(language="en", source="model")
    language, probability = detected or (None, None)
    choice = LanguageChoice(language=language, detected=language, probability=probability)
    if options.language and options.force_language:
        return choice.model_copy(update={"language": options.language, "source": "forced"})
    if detected is None:
        return choice
    if options.language and probability < options.hint_below:
        return choice.model_copy(update={"language": options.language, "source": "hint"})
    return choice.model_copy(update={"source": "detected"})

"""The rules that turn Whisper's text into figures: word error rate and the near-empty flag."""

from __future__ import annotations

import pytest

from gettok.tasks.transcribe.wer import edit_distance, normalise_words, word_error_rate
from gettok.tasks.transcribe.whisper import is_near_empty, spoken_words


def test_wer_counts_substitutions_deletions_and_insertions():
    assert word_error_rate(["the cat sat"], ["the cat sat"]) == 0.0
    assert word_error_rate(["the cat sat"], ["the dog sat"]) == pytest.approx(1 / 3)
    assert word_error_rate(["the cat sat"], ["the sat"]) == pytest.approx(1 / 3)
    assert word_error_rate(["the cat sat"], ["the cat sat down here"]) == pytest.approx(2 / 3)
    assert word_error_rate(["the cat sat"], [""]) == 1.0
    # Corpus WER weighs clips by their length: 1 edit over 2 + 4 words, not a mean of rates.
    assert word_error_rate(["a b", "c d e f"], ["a x", "c d e f"]) == pytest.approx(1 / 6)


def test_wer_ignores_case_punctuation_and_accents():
    assert normalise_words("¡Perú, PERÚ! it's") == ["peru", "peru", "it's"]
    assert word_error_rate(["Hoy marchamos por Perú."], ["hoy marchamos, por peru"]) == 0.0
    assert edit_distance(["a", "b", "c"], ["c", "b", "a"]) == 2


@pytest.mark.parametrize(
    ("text", "empty"),
    [
        ("", True),
        ("[Music]", True),
        ("(upbeat music) ♪ ♪", True),
        ("Thank you.", True),  # Whisper's stock hallucination on silence
        ("♪ la la ♪", True),
        ("[BLANK_AUDIO] you", True),
        ("Share this video now.", False),
        ("[Music] Congress has to listen to the people.", False),
    ],
)
def test_near_empty_rule(text, empty):
    assert is_near_empty(text) is empty


def test_spoken_words_drop_tags():
    assert spoken_words("[Music] Hola (risas) a todos ♪") == ["hola", "a", "todos"]

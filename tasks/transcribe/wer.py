"""Word error rate: how far a transcript is from the words actually spoken."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"\w+(?:'\w+)?")


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation or accents' combining marks, for a fair comparison."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _WORD.findall(text)


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Substitutions + deletions + insertions (Levenshtein over words)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
            )
        previous = current
    return previous[-1]


def word_error_rate(references: Iterable[str], hypotheses: Iterable[str]) -> float:
    """Corpus WER: total edits over total reference words (not a mean of per-clip rates)."""
    edits = words = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref = normalise_words(reference)
        edits += edit_distance(ref, normalise_words(hypothesis))
        words += len(ref)
    return edits / words if words else 0.0

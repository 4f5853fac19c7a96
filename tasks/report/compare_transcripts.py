"""Whisper's transcripts against TikTok's own, as the GET-Tok study compared them.

On videos with both: Pearson r and R^2 of the word counts, the mean Jaccard similarity of the word
sets, the mean cosine of the two transcripts' sentence embeddings (any sentence-transformers
model; the study used BETO), and the word-level differences counted by kind (capitalisation,
punctuation, spelling). Each pair is compared once and stored (`transcript_comparisons`, see
comparisons.py); `from_totals` turns the stored rows' sums into the study's figures.
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from collections.abc import Iterable

from pydantic import BaseModel

# Two aligned words closer than this (difflib ratio, accents kept) count as a spelling variant.
SPELLING_RATIO = 0.75


class PairDifferences(BaseModel):
    """Word-level differences between two transcripts of one video, aligned in order."""

    capitalisation: int = 0  # same word, different case ("Castillo" / "castillo")
    punctuation: int = 0  # same word, different attached punctuation ("Perú," / "Perú")
    spelling: int = 0  # close variants: accents, typos ("qué" / "que", "presidnte" / "presidente")
    substituted: int = 0  # different words in the same place
    only_in_whisper: int = 0
    only_in_tiktok: int = 0


class TranscriptComparison(BaseModel):
    """The study's figures for one set of video pairs."""

    videos: int
    pearson_r: float | None  # None when fewer than two pairs or a constant word count
    r_squared: float | None
    mean_jaccard: float | None
    mean_cosine: float | None = None  # None: no embedding model, or no pairs
    embedding_model: str | None = None
    whisper_words: int
    tiktok_words: int
    differences: PairDifferences


def words(text: str | None) -> list[str]:
    """The words of a transcript as written (whitespace-separated, NUL bytes dropped)."""
    return (text or "").replace("\x00", "").split()


def _strip_punctuation(word: str) -> str:
    return "".join(ch for ch in word if not unicodedata.category(ch).startswith("P"))


def normalised(word: str) -> str:
    """The word as compared for sets: case-folded, punctuation removed (accents kept)."""
    return _strip_punctuation(word).casefold()


def word_set(text: str | None) -> set[str]:
    return {w for w in (normalised(w) for w in words(text)) if w}


def jaccard(a: str | None, b: str | None) -> float:
    """Jaccard similarity of the two word sets; two empty transcripts are identical (1.0)."""
    sa, sb = word_set(a), word_set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def pearson(xs: list[float], ys: list[float]) -> float | None:
    """Pearson's r, or None when it is undefined (fewer than two points, no variance)."""
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def _without_accents(word: str) -> str:
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch)
    )


def _punctuation_of(word: str) -> list[str]:
    return [ch for ch in word if unicodedata.category(ch).startswith("P")]


def _kind_of_difference(a: str, b: str) -> list[str]:
    """What separates two aligned words (a pair can differ in case and punctuation at once)."""
    if a == b:
        return []
    bare_a, bare_b = _strip_punctuation(a), _strip_punctuation(b)
    if bare_a.casefold() == bare_b.casefold():
        kinds = ["capitalisation"] if bare_a != bare_b else []
        if _punctuation_of(a) != _punctuation_of(b):
            kinds.append("punctuation")
        return kinds
    fa, fb = bare_a.casefold(), bare_b.casefold()
    if _without_accents(fa) == _without_accents(fb):
        return ["spelling"]
    if difflib.SequenceMatcher(None, fa, fb).ratio() >= SPELLING_RATIO:
        return ["spelling"]
    return ["substituted"]


def differences(whisper: str | None, tiktok: str | None) -> PairDifferences:
    """Align the two word sequences on their normalised forms and count what differs."""
    a, b = words(whisper), words(tiktok)
    counts = PairDifferences()
    matcher = difflib.SequenceMatcher(
        None, [normalised(w) for w in a], [normalised(w) for w in b], autojunk=False
    )
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("equal", "replace"):
            for wa, wb in zip(a[i1:i2], b[j1:j2], strict=False):
                for kind in _kind_of_difference(wa, wb):
                    setattr(counts, kind, getattr(counts, kind) + 1)
            extra_a, extra_b = (i2 - i1) - (j2 - j1), (j2 - j1) - (i2 - i1)
            counts.only_in_whisper += max(extra_a, 0)
            counts.only_in_tiktok += max(extra_b, 0)
        elif op == "delete":
            counts.only_in_whisper += i2 - i1
        elif op == "insert":
            counts.only_in_tiktok += j2 - j1
    return counts


def compare_transcripts(pairs: Iterable[tuple[str | None, str | None]]) -> TranscriptComparison:
    """The study's comparison over (whisper, tiktok) transcript pairs of the same videos."""
    pairs = list(pairs)
    wc_whisper = [len(words(w)) for w, _ in pairs]
    wc_tiktok = [len(words(t)) for _, t in pairs]
    r = pearson([float(x) for x in wc_whisper], [float(y) for y in wc_tiktok])
    total = PairDifferences()
    for w, t in pairs:
        for field, value in differences(w, t):
            setattr(total, field, getattr(total, field) + value)
    return TranscriptComparison(
        videos=len(pairs),
        pearson_r=r,
        r_squared=None if r is None else r * r,
        mean_jaccard=(sum(jaccard(w, t) for w, t in pairs) / len(pairs)) if pairs else None,
        whisper_words=sum(wc_whisper),
        tiktok_words=sum(wc_tiktok),
        differences=total,
    )


class Totals(BaseModel):
    """Sums over compared pairs: enough for r, the means and the differences at any scale."""

    n: int = 0
    sum_x: float = 0.0  # Whisper word counts
    sum_y: float = 0.0  # TikTok word counts
    sum_xx: float = 0.0
    sum_yy: float = 0.0
    sum_xy: float = 0.0
    sum_jaccard: float = 0.0
    n_cosine: int = 0
    sum_cosine: float = 0.0


def pearson_from_totals(t: Totals) -> float | None:
    if t.n < 2:
        return None
    sxx = t.sum_xx - t.sum_x**2 / t.n
    syy = t.sum_yy - t.sum_y**2 / t.n
    if sxx <= 0 or syy <= 0:
        return None
    return (t.sum_xy - t.sum_x * t.sum_y / t.n) / math.sqrt(sxx * syy)


def from_totals(
    t: Totals, differences: PairDifferences, embedding_model: str | None
) -> TranscriptComparison:
    """The study's comparison from stored per-pair rows' sums (see comparisons.py)."""
    r = pearson_from_totals(t)
    return TranscriptComparison(
        videos=t.n,
        pearson_r=r,
        r_squared=None if r is None else r * r,
        mean_jaccard=t.sum_jaccard / t.n if t.n else None,
        mean_cosine=t.sum_cosine / t.n_cosine if t.n_cosine else None,
        embedding_model=embedding_model,
        whisper_words=round(t.sum_x),
        tiktok_words=round(t.sum_y),
        differences=differences,
    )

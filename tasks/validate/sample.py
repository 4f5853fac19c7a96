"""Draw a seeded random sample of annotated videos, optionally stratified by label or day.

Stratified samples take the same number from every stratum (what is left of a small stratum goes
to the others), so that rare labels get enough codes for their F1; the stratum of each video is
recorded, and the order is shuffled so that the sheet does not reveal it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal

from gettok.tasks.validate.kinds import model_label
from gettok.tasks.validate.store import AnnotatedVideo

Stratify = Literal["label", "day"]


class SampleError(ValueError):
    """The sample cannot be drawn as asked (too few annotated videos, bad size)."""


def stratum_of(kind: str, stratify: Stratify | None) -> Callable[[AnnotatedVideo], str | None]:
    if stratify is None:
        return lambda _video: None
    if stratify == "label":
        return lambda video: model_label(kind, video.value) or "(none)"
    if stratify == "day":
        return lambda video: video.posted.date().isoformat() if video.posted else "(unknown)"
    raise SampleError(f"--stratify must be label or day, not {stratify!r}")


def draw_sample(
    videos: list[AnnotatedVideo],
    kind: str,
    n: int,
    seed: int,
    stratify: Stratify | None = None,
) -> list[tuple[AnnotatedVideo, str | None]]:
    """`n` videos and their strata, in a shuffled order; the same seed draws the same sample."""
    if n < 1:
        raise SampleError(f"--n must be at least 1, not {n}")
    if n > len(videos):
        raise SampleError(
            f"only {len(videos)} videos of the campaign have a {kind} annotation: cannot sample {n}"
        )
    rng = random.Random(seed)
    key = stratum_of(kind, stratify)
    strata: dict[str | None, list[AnnotatedVideo]] = {}
    for video in sorted(videos, key=lambda v: v.video_id):  # independent of query order
        strata.setdefault(key(video), []).append(video)
    quotas = _equal_quotas({k: len(v) for k, v in strata.items()}, n)
    drawn = [
        (video, stratum)
        for stratum in sorted(strata, key=str)
        for video in rng.sample(strata[stratum], quotas[stratum])
    ]
    rng.shuffle(drawn)
    return drawn


def _equal_quotas(sizes: dict[str | None, int], n: int) -> dict[str | None, int]:
    """The same number from each stratum, one at a time, skipping strata that ran out."""
    quotas = dict.fromkeys(sizes, 0)
    order = sorted(sizes, key=str)
    while n:
        for stratum in order:
            if n and quotas[stratum] < sizes[stratum]:
                quotas[stratum] += 1
                n -= 1
    return quotas

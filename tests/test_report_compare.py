"""Transcript comparison (GET-Tok's method) on hand-worked examples."""

from __future__ import annotations

import pytest

from gettok.tasks.report.compare_transcripts import compare_transcripts, differences, jaccard


def test_differences_are_counted_by_kind():
    d = differences(
        "Hola, presidente Castillo qué pasa hoy en Lima",
        "hola Presidente castillo que pasa ayer en lima amigos",
    )
    # "Hola,"/"hola": case and comma; "presidente", "Castillo", "Lima": case; "qué"/"que": spelling;
    # "hoy"/"ayer": another word; "amigos": only TikTok's.
    assert (d.capitalisation, d.punctuation, d.spelling, d.substituted) == (4, 1, 1, 1)
    assert (d.only_in_whisper, d.only_in_tiktok) == (0, 1)
    typo = differences("el presidente dijo", "el presidnte dijo")
    assert typo.spelling == 1 and typo.substituted == 0


def test_jaccard_ignores_case_and_punctuation():
    assert jaccard("Hola, mundo.", "hola mundo") == 1.0
    assert jaccard("a b c", "b c d") == pytest.approx(2 / 4)
    assert jaccard("", "") == 1.0 and jaccard("a", "") == 0.0


def test_comparison_figures():
    pairs = [("a b c d", "a b c"), ("a b", "A b"), ("x y z w v u", "x y z w v u t"), ("q", None)]
    c = compare_transcripts(pairs)
    # word counts (4,3), (2,2), (6,7), (1,0): Pearson r worked by hand below.
    xs, ys = [4, 2, 6, 1], [3, 2, 7, 0]
    mx, my = sum(xs) / 4, sum(ys) / 4
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    assert c.pearson_r == pytest.approx(sxy / (sxx * syy) ** 0.5)
    assert c.r_squared == pytest.approx(c.pearson_r**2)
    assert c.mean_jaccard == pytest.approx((3 / 4 + 1 + 6 / 7 + 0) / 4)
    assert (c.whisper_words, c.tiktok_words) == (13, 12)
    assert c.differences.capitalisation == 1
    assert compare_transcripts([("a", "a")]).pearson_r is None  # one pair: undefined

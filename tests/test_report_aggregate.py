"""The report's figures summed page by page equal the metrics of the whole table built the way
the export was built before streaming (tests/export_reference.py), on both backends."""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bench.scale_data import build
from gettok.tasks.export import table
from gettok.tasks.report import languages, metrics
from gettok.tasks.report.aggregate import campaign_figures
from gettok.tasks.report.compare_transcripts import words
from gettok.tasks.report.comparisons import (
    campaign_comparison,
    compare_campaign,
    word_count_points,
)
from tests import export_reference
from tests.dataset_for_outputs import build_dataset

NO_MODEL = "none"  # no sentence embeddings: the word counts do not need them


@pytest.fixture(params=["outputs", "bench"])
def campaign(request, db_url) -> tuple[str, str]:
    if request.param == "bench":
        build(db_url, 300, name="big")
        return db_url, "big"
    return db_url, build_dataset(db_url, days=6, per_day=10, seed=3).campaign


def _same(a: pl.DataFrame, b: pl.DataFrame) -> None:
    """Equal values (sums of counts may be wider integers than the whole table's counts)."""
    assert_frame_equal(a, b, check_dtypes=False)


def test_paged_figures_equal_the_whole_tables(campaign, monkeypatch):
    url, name = campaign
    records = export_reference.campaign_records(url, name, with_raw=False)
    whole = export_reference.export_frame(records)[0]
    monkeypatch.setattr(table, "PAGE", 7)  # many pages, each with a few days and tags
    f = campaign_figures(url, name)

    assert f.summary == metrics.dataset_summary(whole)
    assert f.by_count == metrics.top_hashtags(whole, "count")
    assert f.by_views == metrics.top_hashtags(whole, "views")
    assert f.languages == languages.language_distribution(whole)
    _same(f.disagreements, languages.disagreements(whole))
    assert f.downloads == metrics.download_status_counts(whole)
    assert f.synthetic == whole["is_sandbox"].sum()
    _same(f.daily.select(metrics.daily_volume(whole).columns), metrics.daily_volume(whole))
    coverage = metrics.transcript_coverage(whole)
    _same(f.coverage.select(coverage.columns), coverage)
    for label in ("stance", "sentiment"):
        expected = metrics.labels_over_time(whole, label)
        _same(getattr(f, label).select(expected.columns), expected)


def _transcript_pairs(whole: pl.DataFrame) -> list[tuple[str, str]]:
    """The (Whisper, TikTok) texts the word-count figure was drawn from before it read the
    stored comparisons: videos with both, non-empty, from the whole export table."""
    both = whole.filter(
        (pl.col("whisper_status") == "ok")
        & ~pl.col("whisper_is_empty").fill_null(False)
        & (pl.col("whisper_transcript").str.strip_chars().str.len_chars() > 0)
        & (pl.col("tiktok_transcript").str.strip_chars().str.len_chars() > 0)
    )
    return list(zip(both["whisper_transcript"], both["tiktok_transcript"], strict=True))


def test_word_count_points_are_the_pairs_word_counts(campaign):
    """The figure's points, from the stored comparisons, equal the word counts of the pairs it
    was drawn from before (each distinct pair of counts once, with its number of videos)."""
    url, name = campaign
    records = export_reference.campaign_records(url, name, with_raw=False)
    pairs = _transcript_pairs(export_reference.export_frame(records)[0])
    assert len(pairs) > 10
    compare_campaign(url, name, NO_MODEL)
    points = word_count_points(url, name, NO_MODEL)
    expected = Counter((len(words(w)), len(words(t))) for w, t in pairs)
    assert points == sorted((x, y, n) for (x, y), n in expected.items())
    assert sum(n for *_, n in points) == campaign_comparison(url, name, NO_MODEL).videos


def test_figures_of_a_campaign_without_videos(sqlite_url):
    from gettok.db import session_scope
    from gettok.models.campaign import parse_campaign
    from gettok.tasks.collect import store

    with session_scope(sqlite_url) as session:
        store.save_campaign(session, parse_campaign({**_CAMPAIGN, "name": "empty"}))
    f = campaign_figures(sqlite_url, "empty")
    assert f.summary.videos == 0 and f.by_count == [] and f.daily.height == 0
    assert f.first_day is None
    assert word_count_points(sqlite_url, "empty", NO_MODEL) == []


_CAMPAIGN = {
    "title": "Empty",
    "start_date": "2024-03-01",
    "end_date": "2024-03-02",
    "query": {"region_codes": ["PE"], "keywords": ["x"]},
}

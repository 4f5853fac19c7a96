"""The report's metrics against values computed here from the dataset's truth, and its figures."""

from __future__ import annotations

import csv
import re
import statistics
from collections import Counter, defaultdict
from datetime import date

import cv2
import pytest
from typer.testing import CliRunner

from gettok.tasks.export.table import campaign_table
from gettok.tasks.report.build import (
    build_report,
    daily_volume,
    dataset_summary,
    download_status_counts,
    labels_over_time,
    language_distribution,
    top_hashtags,
    transcript_coverage,
)
from tests.dataset_for_outputs import GENERIC_TAGS, build_dataset


def read_csv(path):
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def words_of(text: str) -> set[str]:
    return {w for w in re.sub(r"[^\w\s]", "", text.casefold()).split() if w}


def expected_top(videos, weight, n=10):
    totals: Counter = Counter()
    for v in videos:
        for tag in {t.lower() for t in v.hashtags} - {g.lower() for g in GENERIC_TAGS}:
            totals[tag] += weight(v)
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def test_report_metrics_match_the_dataset(db_url):
    data = build_dataset(db_url, days=6, per_day=10, seed=3)
    videos = data.videos
    df = campaign_table(db_url, data.campaign)

    summary = dataset_summary(df)
    assert summary.videos == len(videos)
    assert summary.users == len({v.username for v in videos})
    assert (summary.likes, summary.views, summary.comments, summary.shares) == (
        sum(v.likes for v in videos),
        sum(v.views for v in videos),
        sum(v.comments for v in videos),
        sum(v.shares for v in videos),
    )

    assert top_hashtags(df, "count") == expected_top(videos, lambda v: 1)
    assert top_hashtags(df, "views") == expected_top(videos, lambda v: v.views)
    assert not {t for t, _ in top_hashtags(df, "count", n=100)} & {"fyp", "parati", "foryou"}

    per_day = defaultdict(list)
    for v in videos:
        per_day[v.day].append(v)
    daily = {r["create_date"]: r for r in daily_volume(df).iter_rows(named=True)}
    assert sorted(daily) == sorted(per_day)
    for day, vs in per_day.items():
        assert daily[day]["videos"] == len(vs)
        assert daily[day]["views"] == sum(v.views for v in vs)
        assert daily[day]["shares"] == sum(v.shares for v in vs)

    coverage = {r["create_date"]: r for r in transcript_coverage(df).iter_rows(named=True)}
    for day, vs in per_day.items():
        assert coverage[day]["whisper"] == pytest.approx(
            sum(v.whisper is not None for v in vs) / len(vs)
        )
        assert coverage[day]["tiktok"] == pytest.approx(sum(bool(v.tiktok) for v in vs) / len(vs))

    languages = language_distribution(df)  # (language, by text, by audio)
    assert {x: audio for x, _, audio in languages if audio} == Counter(
        v.whisper_language for v in videos if v.whisper
    )
    # No text identified in this dataset (its transcripts are word salad): all "unknown".
    assert {x: text for x, text, _ in languages if text} == {
        "unknown": sum(1 for v in videos if v.whisper)
    }
    assert dict(download_status_counts(df)) == Counter(
        v.download.value if v.download else "not attempted" for v in videos
    )

    stance = Counter(
        (r["create_date"], r["label"])
        for r in labels_over_time(df, "stance").iter_rows(named=True)
        for _ in range(r["videos"])
    )
    assert stance == Counter((v.day, v.stance or "(none)") for v in videos)


def test_report_writes_markdown_figures_and_the_transcript_comparison(sqlite_url, tmp_path):
    data = build_dataset(sqlite_url, days=5, per_day=12, seed=11)
    pairs = [v for v in data.videos if v.whisper and v.tiktok]
    assert len(pairs) >= 5

    result = build_report(sqlite_url, data.campaign, tmp_path / "report", "Peru 2022")

    c = result.comparison
    r = statistics.correlation(
        [len(v.whisper.split()) for v in pairs], [len(v.tiktok.split()) for v in pairs]
    )
    assert c.videos == len(pairs)
    assert c.pearson_r == pytest.approx(r) and c.r_squared == pytest.approx(r * r)
    jaccards = [
        len(words_of(v.whisper) & words_of(v.tiktok))
        / len(words_of(v.whisper) | words_of(v.tiktok))
        for v in pairs
    ]
    assert c.mean_jaccard == pytest.approx(sum(jaccards) / len(jaccards))
    for kind in ("capitalisation", "punctuation", "only_in_whisper"):
        assert getattr(c.differences, kind) == sum(v.tiktok_differences[kind] for v in pairs), kind
    assert c.differences.spelling == c.differences.substituted == c.differences.only_in_tiktok == 0

    expected_cost = sum(cost for v in data.videos for *_rest, cost in v.costs)
    assert result.llm_cost_usd == pytest.approx(expected_cost)

    markdown = result.markdown_path.read_text()
    assert markdown.startswith("# Peru 2022: dataset report")
    assert f"| {len(data.videos):,} | {len({v.username for v in data.videos}):,} |" in markdown
    assert f"({len(pairs)} videos with both)" in markdown
    for figure in result.figures:
        assert f"]({figure.name})" in markdown
        image = cv2.imread(str(figure))
        assert image is not None and image.shape[1] >= 600 and image.shape[0] >= 400, figure.name
        assert image.std() > 10  # something is drawn
    assert len(result.figures) == 8 + 7  # the dataset figures and the analyses (issue 16)
    for table in result.tables:  # every table also a CSV, linked from the report
        assert f"]({table.name})" in markdown and table.is_file(), table.name
    folder = result.markdown_path.parent
    (totals,) = read_csv(folder / "dataset.csv")
    assert (int(totals["videos"]), int(totals["views"])) == (
        len(data.videos),
        sum(v.views for v in data.videos),
    )
    assert {r["status"]: int(r["videos"]) for r in read_csv(folder / "download_status.csv")} == (
        Counter(v.download.value if v.download else "not attempted" for v in data.videos)
    )
    stance = Counter()
    for r in read_csv(folder / "stance_over_time.csv"):
        stance[(date.fromisoformat(r["create_date"]), r["label"])] += int(r["videos"])
    assert stance == Counter((v.day, v.stance or "(none)") for v in data.videos)
    daily = {r["create_date"]: int(r["videos"]) for r in read_csv(folder / "daily_volume.csv")}
    assert daily == {d.isoformat(): n for d, n in Counter(v.day for v in data.videos).items()}


def test_report_of_a_campaign_without_videos(sqlite_url, tmp_path):
    from gettok.db import session_scope
    from gettok.models.schema import Campaign

    with session_scope(sqlite_url) as s:
        s.add(
            Campaign(
                name="empty", query={}, query_hash="q", start_date=date(2024, 1, 1), region_codes=[]
            )
        )
    result = build_report(sqlite_url, "empty", tmp_path)
    assert result.dataset.videos == 0 and result.comparison.pearson_r is None
    assert all(f.is_file() for f in result.figures)
    markdown = result.markdown_path.read_text()
    assert "No LLM calls recorded." in markdown
    # Analyses that cannot be computed say why instead of vanishing.
    assert "## Topics\n\nToo little text yet for a topic model (it needs" in markdown
    assert "## Clusters\n\nToo few videos with text yet for a map (it needs 10" in markdown
    assert "## Summary checks\n\nNo summary has been checked yet" in markdown
    assert all(t.is_file() for t in result.tables)


def test_report_command_writes_files(settings_env, monkeypatch):
    from gettok import db
    from gettok.cli import app

    url = f"sqlite:///{settings_env / 'cli.db'}"
    monkeypatch.setenv("GETTOK_DATABASE_URL", url)
    db.upgrade(url)
    build_dataset(url, days=3, per_day=6, campaign="ecuador")
    campaign = settings_env / "ecuador.toml"
    campaign.write_text('name = "ecuador"\nstart_date = "2022-12-01"\n[query]\nkeywords = ["x"]\n')

    run = CliRunner().invoke(app, ["report", "--campaign", str(campaign)])

    assert run.exit_code == 0, run.output
    folder = settings_env / "data" / "reports" / "ecuador"
    assert (folder / "report.md").is_file() and (folder / "top_hashtags.png").is_file()
    db.get_engine.cache_clear()


def test_report_flow_publishes_artifacts(prefect_harness, settings_env, monkeypatch):
    from gettok import db
    from gettok.flows.report import report

    url = f"sqlite:///{settings_env / 'cli.db'}"
    monkeypatch.setenv("GETTOK_DATABASE_URL", url)
    db.upgrade(url)
    data = build_dataset(url, days=3, per_day=6, campaign="ecuador")
    campaign = settings_env / "ecuador.toml"
    campaign.write_text('name = "ecuador"\nstart_date = "2022-12-01"\n[query]\nkeywords = ["x"]\n')

    report(str(campaign))

    import httpx
    from prefect.settings import PREFECT_API_URL

    # Read over HTTP: this Prefect client sends nulls its own server rejects for artifact filters.
    found = (
        httpx.post(
            f"{PREFECT_API_URL.value()}/artifacts/filter",
            json={"limit": 50, "offset": 0, "sort": "CREATED_DESC"},
        )
        .raise_for_status()
        .json()
    )
    artifacts = {a["key"]: a for a in reversed(found)}
    assert artifacts["report-ecuador"]["data"].count("data:image/png;base64,") == 8 + 7
    # Each analysis also as its own artifact, its figures inline.
    assert artifacts["report-ecuador-engagement"]["data"].count("data:image/png;base64,") == 1
    assert artifacts["report-ecuador-hashtags"]["data"].count("data:image/png;base64,") == 2
    assert "Contradicted" not in artifacts["report-ecuador-summary-checks"]["data"]
    table = artifacts["report-ecuador-dataset"]["data"]
    assert f'"videos": {len(data.videos)}' in table.replace("'", '"')
    db.get_engine.cache_clear()


def test_report_of_sandbox_data_says_so_in_text_and_on_every_figure(sqlite_url, tmp_path):
    from PIL import Image

    from tests.test_export import mark_as_sandbox

    data = build_dataset(sqlite_url, days=2, per_day=6, seed=3)
    real = build_report(sqlite_url, data.campaign, tmp_path / "real", "Peru 2022")
    assert "SANDBOX" not in real.markdown_path.read_text()
    mark_as_sandbox(sqlite_url, [data.videos[0].id, data.videos[1].id], [])

    result = build_report(sqlite_url, data.campaign, tmp_path / "synthetic", "Peru 2022")

    text = result.markdown_path.read_text()
    assert f"SANDBOX DATA: 2 of {len(data.videos)} videos are synthetic" in text
    assert text.index("SANDBOX DATA") < text.index("## Dataset")
    for synthetic, plain in zip(result.figures, real.figures, strict=True):
        image, before = Image.open(synthetic).convert("RGB"), Image.open(plain)
        assert image.height > before.height and image.width == before.width
        assert image.getpixel((2, 2)) == (192, 0, 0)  # the red banner across the top


def test_the_dataset_part_is_read_beside_the_analyses(db_url, tmp_path, monkeypatch):
    """Each side waits for the other to have started: run one after the other, neither would
    see the other start and the report would stop at the first wait."""
    import threading

    from gettok.tasks.report import analyses, build

    data = build_dataset(db_url, days=2, per_day=4, seed=5)
    table_started, analyses_started = threading.Event(), threading.Event()
    figures, sections = build.campaign_figures, analyses._sections

    def figures_once_the_analyses_run(url, campaign):
        table_started.set()
        assert analyses_started.wait(60), "the analyses did not start beside the table pass"
        return figures(url, campaign)

    def first_section(ctx):
        analyses_started.set()
        assert table_started.wait(60), "the table pass did not start beside the analyses"
        return sections()[0](ctx)

    monkeypatch.setattr(build, "campaign_figures", figures_once_the_analyses_run)
    monkeypatch.setattr(analyses, "_sections", lambda: [first_section, *sections()[1:]])

    result = build_report(db_url, data.campaign, tmp_path, "Peru 2022")

    assert result.dataset.videos == len(data.videos)
    assert [key for key, _, _ in result.analyses][0] == "events"

"""The report's analyses (issue 16) against values computed here from the dataset's truth: event
letters at their dates, normalised engagement and its peaks, caption n-grams of known captions,
the hashtag scatter's points and days, summary checks counted and listed."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from datetime import UTC, date, datetime

import matplotlib.dates as mdates
import pytest

from gettok.db import session_scope
from gettok.models.campaign import parse_campaign
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    AnnotationStatus,
    TextLanguage,
    Video,
)
from gettok.tasks.report.analyses import queries, scope_note
from gettok.tasks.report.analyses.drawing import lettered, mark_events, plt
from gettok.tasks.report.analyses.engagement import normalised, peaks
from gettok.tasks.report.analyses.events import event_rows
from gettok.tasks.report.analyses.hashtags import (
    hashtag_points,
    hashtags_by_day,
    hashtags_section,
)
from gettok.tasks.report.analyses.ngrams import count_ngrams, ngrams_section, stop_words, top
from gettok.tasks.report.analyses.section import AnalysisContext
from gettok.tasks.report.analyses.stopwords import stop_languages, text_language_videos
from gettok.tasks.report.analyses.summary_checks import summary_checks_section
from tests.dataset_for_outputs import GENERIC_TAGS, build_dataset

EVENTS = [
    {"date": "2022-12-06", "label": "Second", "description": "b"},
    {"date": "2022-12-03", "label": "First", "description": "a"},
    {"date": "2023-02-01", "label": "Later", "description": "outside the data"},
]


def config(**report):
    return parse_campaign(
        {
            "name": "peru",
            "start_date": "2022-12-01",
            "language": "es",
            "query": {"keywords": ["castillo"]},
            "events": EVENTS,
            "report": {"topics": 3, "map_videos": 60} | report,
        }
    )


def context(url, out_dir, campaign, **report) -> AnalysisContext:
    cfg = config(**report)
    return AnalysisContext(url, campaign, out_dir, cfg.report, lettered(cfg.events), "es")


def read_csv(path):
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_events_are_lettered_by_date_and_drawn_at_their_day():
    events = lettered(config().events)
    assert [(e.letter, e.date, e.label) for e in events] == [
        ("A", date(2022, 12, 3), "First"),
        ("B", date(2022, 12, 6), "Second"),
        ("C", date(2023, 2, 1), "Later"),
    ]
    fig, ax = plt.subplots()
    days = [date(2022, 12, d) for d in range(1, 9)]
    drawn = mark_events(ax, events, days)
    assert [e.letter for e in drawn] == ["A", "B"]  # C falls after the data: not drawn
    rows = event_rows(events, min(days), max(days))  # the legend says which are drawn
    assert [(r[0], r[-1]) for r in rows] == [
        ("A", "yes"),
        ("B", "yes"),
        ("C", "no: outside the videos' days"),
    ]
    assert {r[-1] for r in event_rows(events, None, None)} == {"no: outside the videos' days"}
    assert [line.get_xdata()[0] for line in ax.lines] == [date(2022, 12, 3), date(2022, 12, 6)]
    letters = {t.get_text(): mdates.date2num(t.xy[0]) for t in ax.texts}
    assert letters == {
        "A": mdates.date2num(date(2022, 12, 3)),
        "B": mdates.date2num(date(2022, 12, 6)),
    }
    plt.close(fig)


def test_engagement_per_day_normalised_and_its_peaks(db_url):
    data = build_dataset(db_url, days=6, per_day=8, seed=5)
    truth = defaultdict(lambda: Counter())
    for v in data.videos:
        truth[v.day].update(
            videos=1, views=v.views, likes=v.likes, shares=v.shares, comments=v.comments
        )
    with session_scope(db_url) as session:
        daily = queries.daily_engagement(session, data.campaign)
    assert [r["day"] for r in daily] == sorted(truth)
    for row in daily:
        assert {k: row[k] for k in ("videos", "views", "likes", "shares", "comments")} == dict(
            truth[row["day"]]
        )
    scaled = normalised(daily)
    for name in ("videos", "views", "likes", "shares", "comments"):
        top_value = max(t[name] for t in truth.values())
        assert scaled[name] == pytest.approx([truth[d][name] / top_value for d in sorted(truth)])
        best = min(d for d in truth if truth[d][name] == top_value)
        assert peaks(daily)[name] == (best, top_value)


CAPTIONS = [
    "Paro nacional en Lima hoy #paro @periodista",
    "El paro nacional sigue en Lima https://example.org/x",
    "paro nacional contra el congreso #fyp",
    "Toma de Lima: paro nacional",
    "congreso cerrado",
]


def test_caption_ngrams_without_stop_words_hashtags_mentions_links(db_url, tmp_path):
    stop = stop_words("es")
    assert {"el", "en", "de", "contra"} <= stop  # stopwords-iso's Spanish list
    counts = count_ngrams(CAPTIONS, stop)
    # By hand: stop words (el, en, de, contra, hoy, sigue...) out, n-grams over what remains.
    kept = [
        [w for w in c.lower().replace(":", "").split() if w[0] not in "#@h" and w not in stop]
        for c in CAPTIONS
    ]
    expected2 = Counter(" ".join(ws[i : i + 2]) for ws in kept for i in range(len(ws) - 1))
    expected3 = Counter(" ".join(ws[i : i + 3]) for ws in kept for i in range(len(ws) - 2))
    assert counts[2] == expected2 and counts[3] == expected3
    assert top(counts[2])[0] == ("paro nacional", 4)
    assert "nacional lima" in counts[2] and "example org" not in counts[2]

    data = build_dataset(db_url, days=2, per_day=4, seed=1)
    with session_scope(db_url) as session:
        for video, text in zip(data.videos, CAPTIONS, strict=False):
            session.get(Video, video.id).video_description = text
        for video in data.videos[len(CAPTIONS) :]:
            session.get(Video, video.id).video_description = None
    section = ngrams_section(context(db_url, tmp_path, data.campaign))
    rows = read_csv(tmp_path / "caption_ngrams.csv")
    assert {(r["ngram"], int(r["count"])) for r in rows if r["n"] == "bigram"} == set(
        expected2.items()
    )
    assert "| bigram | paro nacional | 4 |" in section.markdown
    assert section.figures == [tmp_path / "caption_ngrams.png"] and section.figures[0].is_file()


ENGLISH_CAPTIONS = [
    "Castillo was arrested after the failed self coup",
    "Castillo was arrested after the failed self coup in Lima",
    "Castillo was arrested after the failed self coup today",
]


def test_stop_words_of_every_language_found_in_enough_texts(db_url, tmp_path):
    """A Spanish campaign's English captions lose English stop words too; a language on one
    video, or another campaign's texts, adds nothing."""
    data = build_dataset(db_url, days=2, per_day=8, seed=3)
    stray = 12345 | (1669939200 << 32)  # the other campaign's video (dataset_for_outputs)
    languages = ["en"] * 3 + ["th"] + ["es"] * 12
    with session_scope(db_url) as session:
        for video, lang in zip(data.videos, languages, strict=False):
            for source in ("caption", "faster-whisper"):  # a video counts once per language
                session.add(
                    TextLanguage(
                        video_id=video.id,
                        source=source,
                        text_sha256=source,
                        language=lang,
                        score=0.9,
                        model="lid.176",
                    )
                )
        for n, video in enumerate(data.videos):  # only the English captions
            text = ENGLISH_CAPTIONS[n] if n < len(ENGLISH_CAPTIONS) else None
            session.get(Video, video.id).video_description = text
        session.add(  # no letters to judge: counts nowhere
            TextLanguage(
                video_id=data.videos[3].id,
                source="tiktok",
                text_sha256="t",
                language=None,
                model="lid.176",
            )
        )
        for source in ("caption", "tiktok", "x"):  # another campaign's language
            session.add(
                TextLanguage(
                    video_id=stray,
                    source=source,
                    text_sha256=source,
                    language="pt",
                    model="lid.176",
                )
            )
        found = text_language_videos(session, data.campaign)
    assert found == {"es": 12, "en": 3, "th": 1, "": 16}
    assert stop_languages(found, "es") == ("es", "en")  # th: one video only
    assert stop_languages(found | {"en": 0}, "ES") == ("es",)
    assert stop_languages({"": 100, "en": 4, "pt": 6}, "es") == ("es", "pt")  # en under 5%

    ctx = context(db_url, tmp_path, data.campaign)
    spanish_only = count_ngrams(ENGLISH_CAPTIONS, ctx.stop_words())
    assert "after the" in spanish_only[2]  # what the report showed before
    both = AnalysisContext(**(vars(ctx) | {"stop_languages": ("es", "en")}))
    section = ngrams_section(both)
    rows = {
        (r["n"], r["ngram"]): int(r["count"]) for r in read_csv(tmp_path / "caption_ngrams.csv")
    }
    # By hand: stopwords-iso's English list holds "was", "after", "the", "self", "in", "today".
    assert rows == {
        ("bigram", "castillo arrested"): 3,
        ("bigram", "arrested failed"): 3,
        ("bigram", "failed coup"): 3,
        ("bigram", "coup lima"): 1,
        ("trigram", "castillo arrested failed"): 3,
        ("trigram", "arrested failed coup"): 3,
        ("trigram", "failed coup lima"): 1,
    }
    assert "stopwords-iso (es, en:" in section.markdown


def test_hashtag_scatter_points_and_selected_days(db_url, tmp_path):
    data = build_dataset(db_url, days=5, per_day=10, seed=9)
    generic = {g.casefold() for g in GENERIC_TAGS}
    videos, views, per_day = Counter(), Counter(), defaultdict(Counter)
    for v in data.videos:
        for tag in {t.casefold() for t in v.hashtags} - generic:
            videos[tag] += 1
            views[tag] += v.views
            per_day[tag][v.day] += 1
    with session_scope(db_url) as session:
        points = hashtag_points(session, data.campaign)
        days = hashtags_by_day(session, data.campaign, ["castillo", "lima"])
    assert {(p.tag, p.videos) for p in points} == {(t, n) for t, n in videos.items() if n >= 2}
    for p in points:
        assert p.mean_views == pytest.approx(views[p.tag] / videos[p.tag])
    assert "stray" not in {p.tag for p in points}  # another campaign's video
    assert days == {"castillo": per_day["castillo"], "lima": per_day["lima"]}

    hashtags_section(context(db_url, tmp_path, data.campaign, hashtags=["#Lima"]))
    rows = read_csv(tmp_path / "hashtags_over_time.csv")
    assert {r["hashtag"] for r in rows} == {"lima"}  # the campaign's selection, case-folded
    assert {(date.fromisoformat(r["day"]), int(r["videos"])) for r in rows} == set(
        per_day["lima"].items()
    )
    scatter = read_csv(tmp_path / "hashtag_views.csv")
    assert [(r["hashtag"], int(r["videos"])) for r in scatter] == [
        (p.tag, p.videos) for p in points
    ]


def test_summary_checks_counted_and_contradicted_listed(db_url, tmp_path):
    data = build_dataset(db_url, days=2, per_day=6, seed=2)
    labels = ["entailed", "entailed", "neutral", "contradicted", "contradicted"]
    with session_scope(db_url) as session:
        for n, (video, label) in enumerate(zip(data.videos, labels, strict=False)):
            summary = Annotation(
                video_id=video.id,
                kind=AnnotationKind.summary,
                value={"summary": f"resumen {n}"},
                model="m",
                prompt_id="summary-v2",
                prompt_hash="s",
            )
            session.add(summary)
            session.flush()
            session.add(
                Annotation(
                    video_id=video.id,
                    kind=AnnotationKind.summary_check,
                    value={"label": label, "confidence": 0.5 + n / 10},
                    model="judge",
                    prompt_id="summary_check-v1",
                    prompt_hash="c",
                    settings={"inputs": {"summary_annotation_id": summary.id}},
                )
            )
        session.add(  # a failed check counts nowhere
            Annotation(
                video_id=data.videos[5].id,
                kind=AnnotationKind.summary_check,
                status=AnnotationStatus.failed,
                model="judge",
                prompt_id="summary_check-v1",
                prompt_hash="c",
            )
        )
    section = summary_checks_section(context(db_url, tmp_path, data.campaign))
    counts = {
        r["label"]: (int(r["summaries"]), float(r["mean_confidence"]))
        for r in read_csv(tmp_path / "summary_checks.csv")
    }
    assert counts == {
        "entailed": (2, pytest.approx(0.55)),
        "neutral": (1, pytest.approx(0.7)),
        "contradicted": (2, pytest.approx(0.85)),
    }
    listed = read_csv(tmp_path / "summaries_contradicted.csv")
    assert sorted((int(r["video_id"]), r["summary"]) for r in listed) == sorted(
        [(data.videos[3].id, "resumen 3"), (data.videos[4].id, "resumen 4")]
    )
    assert (
        "resumen 4" in section.markdown
        and "| judge | summary_check-v1 | contradicted | 2 |" in (section.markdown)
    )


def test_the_report_says_why_the_analyses_count_fewer_videos_than_the_dataset(db_url):
    """Pruned videos stay in the dataset's counts and leave the analyses: the report says so."""
    data = build_dataset(db_url, days=2, per_day=5, seed=4)
    assert scope_note(db_url, data.campaign) is None
    with session_scope(db_url) as session:
        for video in data.videos[:2]:
            session.get(Video, video.id).pruned_at = datetime(2023, 1, 1, tzinfo=UTC)
        assert queries.pruned_videos(session, data.campaign) == 2
        n, _, _ = queries.campaign_extent(session, data.campaign)
        daily = queries.daily_engagement(session, data.campaign)
    assert n == len(data.videos) - 2 == sum(r["videos"] for r in daily)
    note = scope_note(db_url, data.campaign)
    assert f"{len(data.videos) - 2} videos still public: 2 videos found no longer public" in note

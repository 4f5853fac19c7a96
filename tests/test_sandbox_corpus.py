"""The generated corpus: deterministic, shaped like the live API's data, and realistic enough
for the studies' queries to filter."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from gettok.models.api import ResearchVideo
from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.corpus import Corpus, video_day

PERU_DAYS = (date(2022, 12, 1), date(2022, 12, 31))


def digest(corpus: Corpus, start: date, end: date) -> str:
    records = [v.api_record() for v in corpus.videos_between(start, end)]
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def test_same_seed_same_corpus_in_another_process():
    day = date(2023, 1, 15)
    here = digest(Corpus(SandboxConfig(seed=5)), day, day)
    code = (
        "from datetime import date; from gettok.sandbox.config import SandboxConfig;"
        "from gettok.sandbox.corpus import Corpus; import tests.test_sandbox_corpus as t;"
        "print(t.digest(Corpus(SandboxConfig(seed=5)), date(2023, 1, 15), date(2023, 1, 15)))"
    )
    there = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    ).stdout.strip()
    assert here == there
    assert digest(Corpus(SandboxConfig(seed=6)), day, day) != here


def test_days_are_independent_of_the_order_they_are_generated_in():
    a, b = Corpus(SandboxConfig(seed=1)), Corpus(SandboxConfig(seed=1))
    d1, d2 = date(2024, 1, 9), date(2019, 6, 1)
    first = (a.videos_on(d1), a.videos_on(d2))
    assert (b.videos_on(d2), b.videos_on(d1)) == (first[1], first[0])


def test_ids_carry_the_creation_time_and_exceed_2_53():
    corpus = Corpus(SandboxConfig(videos_per_day=200))
    videos = corpus.videos_on(date(2024, 1, 9))
    assert len(videos) == 200 and len({v.id for v in videos}) == 200
    for v in videos:
        assert v.id > 2**53 and v.id >> 32 == v.create_time and v.id < 2**63
        assert video_day(v.id) == date(2024, 1, 9) == v.created_at.date()
    assert [v.create_time for v in videos] == sorted(v.create_time for v in videos)
    assert corpus.get(videos[17].id) == videos[17]
    assert (
        corpus.get(videos[17].id + 1) is None or corpus.get(videos[17].id + 1).id != videos[17].id
    )
    assert corpus.get(123) is None


def test_no_videos_before_2016_or_in_the_future():
    corpus = Corpus(SandboxConfig())
    assert corpus.videos_on(date(2015, 12, 31)) == []
    assert corpus.videos_on(datetime.now(UTC).date() + timedelta(days=1)) == []
    assert len(corpus.videos_on(date(2016, 1, 1))) == 40


def test_records_are_shaped_like_the_live_api():
    videos = Corpus(SandboxConfig(videos_per_day=100)).videos_between(*PERU_DAYS)
    records = [v.api_record() for v in videos]
    # Every record parses with the project's own model; NULs and missing fields occur.
    parsed = [ResearchVideo.model_validate(r) for r in records]
    assert [p.id for p in parsed] == [v.id for v in videos]
    with_nul = [r for r in records if any("\x00" in str(x) for x in r.values())]
    assert 0 < len(with_nul) < len(records) * 0.05
    assert all("\x00" not in p.username for p in parsed if p.username)
    for field in ("region_code", "music_id", "hashtag_names", "video_duration"):
        assert 0 < sum(field not in r for r in records) < len(records) * 0.1, field
    assert all(isinstance(r["id"], int) for r in records)


def test_content_around_the_crisis_filters():
    videos = Corpus(SandboxConfig(videos_per_day=100)).videos_between(*PERU_DAYS)
    topics = Counter(v.topic for v in videos)
    assert 0.3 < topics["peru_2022"] / len(videos) < 0.6
    regions = Counter(v.region_code for v in videos)
    assert regions.most_common(1)[0][0] == "PE" and len(regions) > 4
    tags = Counter(h.lower() for v in videos for h in v.hashtags)
    assert tags["golpedeestado"] > 20 and tags["fyp"] > 20
    # A near miss: "castillo" in chatter that is not about the president.
    assert any(v.topic == "chatter" and "castillo" in v.description.lower() for v in videos)
    languages = Counter(v.language for v in videos)
    assert languages["es"] > 3 * languages["en"] > 0
    quiet = Corpus(SandboxConfig(videos_per_day=100)).videos_on(date(2019, 5, 5))
    assert sum(v.topic == "peru_2022" for v in quiet) < 20


def test_engagement_is_heavy_tailed():
    videos = Corpus(SandboxConfig(videos_per_day=200)).videos_between(*PERU_DAYS)
    views = sorted(v.view_count for v in videos)
    median, top = views[len(views) // 2], views[-1]
    assert top > 100 * median > 0
    assert all(v.like_count <= v.view_count and v.comment_count <= v.like_count for v in videos)


def test_clips_speech_and_web_states():
    config = SandboxConfig(videos_per_day=200)
    videos = Corpus(config).videos_between(*PERU_DAYS)
    kinds = Counter(v.clip_kind for v in videos)
    assert kinds["speech"] > kinds["silent"] > 0 and kinds["music"] > 0
    assert all(bool(v.speech_text) == (v.clip_kind == "speech") for v in videos)
    durations = [v.duration_s for v in videos]
    assert min(durations) >= 5 and max(durations) <= 60
    assert sum(d < 20 for d in durations) > 0.75 * len(durations)
    assert all(abs(v.video_duration - v.duration_s) <= 0.5 for v in videos)
    # TikTok's transcript: same words, different capitalisation and punctuation.
    voiced = [v for v in videos if v.voice_to_text]
    assert 0.3 * kinds["speech"] < len(voiced) < 0.9 * kinds["speech"]
    strip = str.maketrans("", "", ".,;:¡!¿?")
    for v in voiced:
        assert v.voice_to_text != v.speech_text
        assert v.voice_to_text.split() == v.speech_text.lower().translate(strip).split()
    states = Counter(v.web_state for v in videos if v.api_visible)
    n = sum(states.values())
    assert abs(states["private"] / n - config.private_share) < 0.02
    assert abs(states["slideshow"] / n - config.slideshow_share) < 0.02
    hidden = [v for v in videos if not v.api_visible]
    assert abs(len(hidden) / len(videos) - config.invisible_share) < 0.02
    assert all(v.web_state in ("private", "removed") for v in hidden)


def test_invisible_share_changes_visibility_only():
    day = date(2022, 12, 8)
    a = Corpus(SandboxConfig(invisible_share=0.3)).videos_on(day)
    b = Corpus(SandboxConfig(invisible_share=0.0)).videos_on(day)
    assert [v.id for v in a] == [v.id for v in b]
    assert [v.description for v in a] == [v.description for v in b]
    assert all(v.api_visible for v in b) and not all(v.api_visible for v in a)

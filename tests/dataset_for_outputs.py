"""A campaign dataset written straight into the schema, with the truth kept beside it.

The export, report and prune tests compute what they expect from `Dataset.videos` (plain Python),
never from the code under test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from gettok.db import session_scope
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    AnnotationStatus,
    Campaign,
    CampaignVideo,
    Download,
    DownloadStatus,
    Frame,
    MediaInfo,
    Transcript,
    Video,
)

WORDS = (
    "castillo presidente congreso vacancia perú pueblo marcha lima golpe democracia "
    "elecciones ministro justicia corrupción protesta hoy mañana gente voto nuevo"
).split()
TOPIC_TAGS = [
    "castillo",
    "peru",
    "congreso",
    "vacancia",
    "lima",
    "protesta",
    "marcha",
    "democracia",
    "golpe",
    "boluarte",
    "noticias",
    "politica",
]
GENERIC_TAGS = ["fyp", "parati", "foryou", "viral", "foryoupage", "fypシ"]
DOWNLOAD_STATUSES = [DownloadStatus.ok] * 6 + [
    DownloadStatus.private,
    DownloadStatus.removed,
    DownloadStatus.invalid,
    DownloadStatus.slideshow,
]


@dataclass
class TruthVideo:
    id: int
    username: str
    day: date
    hashtags: list[str]
    views: int
    likes: int
    comments: int
    shares: int
    description: str
    download: DownloadStatus | None
    media_path: str | None
    whisper: str | None = None
    whisper_language: str | None = None
    tiktok: str | None = None
    stance: str | None = None
    sentiment: str | None = None
    tiktok_differences: dict[str, int] = field(default_factory=dict)
    costs: list[tuple[str, str, int, int, float]] = field(default_factory=list)


@dataclass
class Dataset:
    campaign: str
    videos: list[TruthVideo]


def _tiktok_variant(rng: random.Random, text: str) -> tuple[str, dict[str, int]]:
    """TikTok's transcript of the same speech: other capitals, punctuation, lost words."""
    out, counts = [], {"capitalisation": 0, "punctuation": 0, "only_in_whisper": 0}
    for word in text.split():
        roll = rng.random()
        if roll < 0.15:
            out.append(word.capitalize())
            counts["capitalisation"] += 1
        elif roll < 0.25:
            out.append(word + ",")
            counts["punctuation"] += 1
        elif roll < 0.3:
            counts["only_in_whisper"] += 1
        else:
            out.append(word)
    return " ".join(out), counts


def build_dataset(
    url: str,
    *,
    campaign: str = "peru",
    days: int = 8,
    per_day: int = 9,
    seed: int = 7,
    start: date = date(2022, 12, 1),
) -> Dataset:
    rng = random.Random(seed)
    users = [f"user.{i}_{rng.randrange(1000)}" for i in range(25)]
    truth: list[TruthVideo] = []
    for d in range(days):
        day = start + timedelta(days=d)
        for _ in range(rng.randint(per_day - 3, per_day + 3)):
            created = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                seconds=rng.randrange(86_400)
            )
            vid = (int(created.timestamp()) << 32) | rng.getrandbits(32)
            tags = rng.sample(TOPIC_TAGS[: rng.randint(3, len(TOPIC_TAGS))], rng.randint(1, 3))
            tags += rng.sample(GENERIC_TAGS, rng.randint(0, 2))
            if rng.random() < 0.2:
                tags = [t.upper() for t in tags]  # the API keeps the author's case
            status = rng.choice(DOWNLOAD_STATUSES) if rng.random() < 0.9 else None
            mention = rng.choice(users)
            v = TruthVideo(
                id=vid,
                username=rng.choice(users),
                day=day,
                hashtags=tags,
                views=rng.randrange(100, 2_000_000),
                likes=rng.randrange(0, 90_000),
                comments=rng.randrange(0, 5_000),
                shares=rng.randrange(0, 8_000),
                description=f"mira esto @{mention} " + " ".join(f"#{t}" for t in tags),
                download=status,
                media_path=f"videos/{vid}.mp4" if status == DownloadStatus.ok else None,
            )
            if status == DownloadStatus.ok and rng.random() < 0.85:
                v.whisper = " ".join(rng.choices(WORDS, k=rng.randint(3, 40)))
                v.whisper_language = rng.choice(["es", "es", "es", "en", "pt"])
                if rng.random() < 0.45:
                    v.tiktok, v.tiktok_differences = _tiktok_variant(rng, v.whisper)
                v.stance = rng.choice(["support", "no support", "neutral", None])
                v.sentiment = rng.choice(["positive", "negative", "neutral"])
            elif rng.random() < 0.1:
                v.tiktok = " ".join(rng.choices(WORDS, k=5))
            truth.append(v)
    _insert(url, campaign, truth, rng)
    return Dataset(campaign=campaign, videos=truth)


def _insert(url: str, campaign: str, truth: list[TruthVideo], rng: random.Random) -> None:
    with session_scope(url) as s:
        row = Campaign(
            name=campaign,
            title="Test campaign",
            query={"or": []},
            query_hash="q",
            start_date=truth[0].day,
            region_codes=["PE"],
        )
        other = Campaign(
            name=f"{campaign}-other",
            query={"or": []},
            query_hash="q2",
            start_date=truth[0].day,
            region_codes=["EC"],
        )
        s.add_all([row, other])
        s.flush()
        for v in truth:
            created = datetime.fromtimestamp(v.id >> 32, UTC)
            s.add(
                Video(
                    id=v.id,
                    username=v.username,
                    video_description=v.description,
                    create_time=v.id >> 32,
                    created_at=created,
                    region_code="PE",
                    view_count=v.views,
                    like_count=v.likes,
                    comment_count=v.comments,
                    share_count=v.shares,
                    hashtag_names=v.hashtags,
                    voice_to_text=v.tiktok,
                    video_mention_list=[v.description.split()[2][1:]],
                    raw={"id": v.id, "username": v.username, "voice_to_text": v.tiktok},
                )
            )
            s.flush()
            s.add(CampaignVideo(campaign_id=row.id, video_id=v.id))
            if v.download is not None:
                s.add(
                    Download(
                        video_id=v.id,
                        status=v.download,
                        path=v.media_path,
                        attempts=1,
                        bytes=1000 if v.media_path else None,
                        last_error=None
                        if v.media_path
                        else f"https://www.tiktok.com/@{v.username}",
                    )
                )
            if v.media_path:
                s.add(
                    MediaInfo(
                        video_id=v.id,
                        duration_s=12.5,
                        fps=30.0,
                        frame_count=375,
                        width=360,
                        height=640,
                        has_audio=True,
                        video_codec="h264",
                        audio_codec="aac",
                    )
                )
                s.add(
                    Frame(
                        video_id=v.id,
                        frame_index=0,
                        timestamp_s=0.0,
                        width=360,
                        height=640,
                        path=f"frames/{v.id}/000000.jpg",
                    )
                )
            if v.whisper is not None:
                s.add(
                    Transcript(
                        video_id=v.id,
                        engine="faster-whisper",
                        model="large-v3",
                        settings={"beam_size": 5},
                        settings_hash="s1",
                        text=v.whisper,
                        language=v.whisper_language,
                        language_probability=0.9,
                    )
                )
            for kind, label in (("stance", v.stance), ("sentiment", v.sentiment)):
                if v.whisper is None:
                    continue
                tokens_in, tokens_out = rng.randrange(200, 900), rng.randrange(10, 60)
                cost = round(tokens_in * 0.15e-6 + tokens_out * 0.6e-6, 8)
                status = AnnotationStatus.ok if label else AnnotationStatus.refused
                value = {"label": label, "confidence": 0.8} if label else None
                if kind == "sentiment" and label:
                    value["low_confidence"] = False
                s.add(
                    Annotation(
                        video_id=v.id,
                        kind=AnnotationKind(kind),
                        status=status,
                        value=value,
                        model="gpt-4o-mini",
                        prompt_id=kind,
                        prompt_hash=f"{kind}-hash-0001",
                        input_tokens=tokens_in,
                        output_tokens=tokens_out,
                        cost_usd=cost,
                    )
                )
                v.costs.append((kind, "gpt-4o-mini", tokens_in, tokens_out, cost))
        # One video of another campaign: must not leak into this campaign's outputs.
        stray = (int(datetime(2022, 12, 2, tzinfo=UTC).timestamp()) << 32) | 12345
        s.add(
            Video(
                id=stray,
                username="someone_else",
                raw={},
                view_count=10**9,
                created_at=datetime(2022, 12, 2, tzinfo=UTC),
                hashtag_names=["stray"],
            )
        )
        s.flush()
        s.add(CampaignVideo(campaign_id=other.id, video_id=stray))

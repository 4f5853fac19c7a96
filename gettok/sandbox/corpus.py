"""A deterministic generated TikTok: `videos_per_day` videos on every UTC day from 2016 to today.

Each day is generated lazily from `(seed, day)` alone, so any process with the same config sees
the same videos, and tests compute their ground truth from `Corpus.videos_on` independently of
the HTTP layer. Content clusters around two political crises the source studies covered (Peru
2022-23: Castillo, Boluarte, golpe de estado; Ecuador 2024: Noboa, Fito, Los Choneros), padded
with unrelated Spanish chatter (including near misses such as "castillo de arena") so that
queries really filter.

Ids follow TikTok's layout `(create_time << 32) | rand32`: above 2^53, and the day is derivable
from the id alone, which is how `Corpus.get` finds a video without scanning.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from threading import Lock
from typing import Any

from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.topics import TOPICS, Topic, topic_weights

FIRST_DAY = date(2016, 1, 1)
NUL_SHARE = 0.01  # records with a NUL byte in a string, as recorded live
OTHER_REGIONS = ("CO", "CL", "BO", "AR", "MX", "US", "ES", "VE")
_DAYS_CACHED = 256


@dataclass(frozen=True)
class CorpusVideo:
    """One video as the sandbox knows it: its Research API record and what its web page serves.

    `username` is the clean handle used in page URLs; the API record may carry a NUL byte in it.
    """

    id: int
    username: str
    create_time: int
    description: str
    hashtags: tuple[str, ...]
    region_code: str
    music_id: int
    effect_ids: tuple[str, ...]
    view_count: int
    like_count: int
    comment_count: int
    share_count: int
    favorites_count: int
    topic: str
    language: str  # "es" or "en"
    clip_kind: str  # "speech", "silent" or "music"
    speech_text: str  # the words the clip speaks ("" when it has no speech)
    voice_to_text: str | None  # TikTok's own transcript, when it made one
    duration_s: float
    clip_seed: int
    api_visible: bool = True  # False: a deleted/private slot in the API index
    web_state: str = "public"  # "public", "private", "removed" or "slideshow"
    missing: tuple[str, ...] = ()  # API fields absent from this record
    nul_in: str | None = None  # the API field that carries a NUL byte, if any
    mentions: tuple[str, ...] = field(default=())

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.create_time, tz=UTC)

    @property
    def create_date(self) -> str:
        return self.created_at.strftime("%Y%m%d")

    @property
    def video_duration(self) -> int:
        return max(1, round(self.duration_s))

    def api_record(self) -> dict[str, Any]:
        """Every Research API field this video has (the endpoint keeps only those requested)."""
        record: dict[str, Any] = {
            "id": self.id,
            "video_description": self.description,
            "create_time": self.create_time,
            "region_code": self.region_code,
            "share_count": self.share_count,
            "view_count": self.view_count,
            "like_count": self.like_count,
            "comment_count": self.comment_count,
            "favorites_count": self.favorites_count,
            "music_id": self.music_id,
            "hashtag_names": list(self.hashtags),
            "username": self.username,
            "effect_ids": list(self.effect_ids),
            "voice_to_text": self.voice_to_text,
            "is_stem_verified": False,
            "video_duration": self.video_duration,
            "hashtag_info_list": [
                {"hashtag_id": _hashtag_id(h), "hashtag_name": h, "hashtag_description": ""}
                for h in self.hashtags
            ],
            "sticker_info_list": [],
            "effect_info_list": [{"effect_id": e, "effect_name": ""} for e in self.effect_ids],
            "video_mention_list": list(self.mentions),
        }
        for name in self.missing:
            record.pop(name, None)
        if record.get("voice_to_text") is None:
            record.pop("voice_to_text", None)
        if not record.get("effect_ids"):
            record.pop("effect_ids", None)
        if self.nul_in and isinstance(record.get(self.nul_in), str):
            text = record[self.nul_in]
            cut = len(text) // 2
            record[self.nul_in] = text[:cut] + "\x00" + text[cut:]
        return record


def video_day(video_id: int) -> date:
    """The UTC day a video was created, read from the top 32 bits of its id."""
    return datetime.fromtimestamp(video_id >> 32, tz=UTC).date()


def _hashtag_id(name: str) -> int:
    # Stable across processes (unlike hash()): a small FNV-1a over the lowercased name.
    value = 0xCBF29CE484222325
    for byte in name.lower().encode():
        value = ((value ^ byte) * 0x100000001B3) % 2**64
    return value % 10**18


class Corpus:
    """The sandbox's videos, generated per UTC day on first use and cached (a bounded LRU)."""

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self._days: OrderedDict[date, tuple[CorpusVideo, ...]] = OrderedDict()
        self._by_id: dict[date, dict[int, CorpusVideo]] = {}
        self._lock = Lock()
        self._users = _user_pool(self.config.seed)
        self._user_set = frozenset(self._users)
        self._music = _music_pool(self.config.seed)

    def videos_on(self, day: date) -> list[CorpusVideo]:
        """All videos created on a UTC day (visible or not), ordered by creation time."""
        if isinstance(day, datetime):
            day = day.date()
        if day < FIRST_DAY or day > datetime.now(UTC).date():
            return []
        with self._lock:
            videos = self._days.get(day)
            if videos is not None:
                self._days.move_to_end(day)
                return list(videos)
        videos = self._generate(day)
        with self._lock:
            self._days[day] = videos
            self._by_id[day] = {v.id: v for v in videos}
            while len(self._days) > _DAYS_CACHED:
                old, _ = self._days.popitem(last=False)
                self._by_id.pop(old, None)
        return list(videos)

    def get(self, video_id: int) -> CorpusVideo | None:
        """The video with this id, or None (the id's top bits say which day to look in)."""
        try:
            day = video_day(int(video_id))
        except (ValueError, OverflowError, OSError):
            return None
        self.videos_on(day)
        with self._lock:
            return self._by_id.get(day, {}).get(int(video_id))

    def knows_user(self, username: str) -> bool:
        """Whether `username` is one of the corpus's authors (user info describes only those)."""
        return username in self._user_set

    def videos_between(self, start: date, end: date) -> list[CorpusVideo]:
        """All videos from `start` to `end`, both inclusive."""
        out: list[CorpusVideo] = []
        day = start
        while day <= end:
            out.extend(self.videos_on(day))
            day += timedelta(days=1)
        return out

    def _generate(self, day: date) -> tuple[CorpusVideo, ...]:
        cfg = self.config
        rng = random.Random(f"gettok-corpus:{cfg.seed}:{day.isoformat()}")
        midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        times = sorted(
            rng.randrange(midnight, midnight + 86_400) for _ in range(cfg.videos_per_day)
        )
        weights = topic_weights(day)
        names = list(weights)
        videos: list[CorpusVideo] = []
        seen: set[int] = set()
        for create_time in times:
            video_id = (create_time << 32) | rng.getrandbits(32)
            while video_id in seen:
                video_id = (create_time << 32) | rng.getrandbits(32)
            seen.add(video_id)
            topic = TOPICS[rng.choices(names, weights=[weights[n] for n in names])[0]]
            videos.append(self._video(rng, video_id, create_time, topic))
        return tuple(videos)

    def _video(
        self, rng: random.Random, video_id: int, create_time: int, topic: Topic
    ) -> CorpusVideo:
        """One video of the topic; the draws from `rng` keep their order, so a seed's corpus
        stays the same."""
        language = "en" if rng.random() < 0.15 else "es"
        sentence, hashtags, mentions = topic.compose(rng, language)
        description = sentence + (" " + " ".join(f"#{h}" for h in hashtags) if hashtags else "")
        region = (
            topic.region if rng.random() < 0.8 else rng.choice(OTHER_REGIONS + topic.neighbours)
        )
        kind = rng.choices(("speech", "silent", "music"), weights=(80, 10, 10))[0]
        speech_text = topic.speech(rng, language, sentence) if kind == "speech" else ""
        # Most clips short (tests and the quick start decode them); a tail up to a minute.
        duration = min(60.0, 5.0 + rng.expovariate(1 / 7.0))
        counts = _engagement(rng)
        web_state, visible = self._web_state(rng)
        missing = _missing_fields(rng)
        voice = None
        if speech_text and rng.random() < 0.6:
            voice = _tiktok_transcript(speech_text)
        return CorpusVideo(
            id=video_id,
            username=rng.choice(self._users),
            create_time=create_time,
            description=description,
            hashtags=tuple(hashtags),
            region_code=region,
            music_id=rng.choice(self._music),
            effect_ids=(str(rng.randrange(10**17, 10**18)),) if rng.random() < 0.1 else (),
            **counts,
            topic=topic.name,
            language=language,
            clip_kind=kind,
            speech_text=speech_text,
            voice_to_text=voice,
            duration_s=round(duration, 2),
            clip_seed=rng.randrange(64),
            api_visible=visible,
            web_state=web_state,
            missing=missing,
            nul_in=rng.choice(("username", "video_description"))
            if rng.random() < NUL_SHARE
            else None,
            mentions=tuple(mentions),
        )

    def _web_state(self, rng: random.Random) -> tuple[str, bool]:
        """What tiktok.com shows for the video, and whether the Research API returns it."""
        cfg = self.config
        roll = rng.random()
        if roll < cfg.private_share:
            web_state = "private"
        elif roll < cfg.private_share + cfg.removed_share:
            web_state = "removed"
        elif roll < cfg.private_share + cfg.removed_share + cfg.slideshow_share:
            web_state = "slideshow"
        else:
            web_state = "public"
        # Always two draws, so the share changes visibility alone, not the rest of the day.
        visible = rng.random() >= cfg.invisible_share
        gone = rng.choice(("private", "removed"))
        return (web_state if visible else gone), visible


def _engagement(rng: random.Random) -> dict[str, int]:
    """Heavy-tailed views; likes a share of views, and the other counts shares of likes."""
    views = int(rng.lognormvariate(7.0, 2.3))
    likes = int(views * rng.betavariate(1.2, 14))
    return {
        "view_count": views,
        "like_count": likes,
        "comment_count": int(likes * rng.betavariate(1, 25)),
        "share_count": int(likes * rng.betavariate(1, 12)),
        "favorites_count": int(likes * rng.betavariate(1, 8)),
    }


def _missing_fields(rng: random.Random) -> tuple[str, ...]:
    """The fields the API leaves out of this video's record (each at its observed rate)."""
    return tuple(
        name
        for name, share in (
            ("region_code", 0.02),
            ("music_id", 0.05),
            ("hashtag_names", 0.03),
            ("video_description", 0.01),
            ("video_duration", 0.03),
        )
        if rng.random() < share
    )


def _tiktok_transcript(text: str) -> str:
    """TikTok's auto-captions: the same words, lowercased, without most punctuation."""
    kept = "".join(c for c in text if c not in '.,;:¡!¿?"')
    return " ".join(kept.lower().split())


_SYLLABLES = (
    "ma",
    "ri",
    "lu",
    "ca",
    "pe",
    "so",
    "ta",
    "ne",
    "jo",
    "vi",
    "la",
    "da",
    "ro",
    "ki",
    "mi",
    "sa",
    "to",
    "ba",
    "el",
    "an",
)


def _user_pool(seed: int, size: int = 3000) -> tuple[str, ...]:
    """Usernames shared by all days, so a username query matches videos across a range."""
    rng = random.Random(f"gettok-users:{seed}")
    names: dict[str, None] = {}
    while len(names) < size:
        stem = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        sep = rng.choice(("", "_", ".", ""))
        # TikTok handles cannot end with a period, so a separator is always followed by digits.
        tail = f"{sep}{rng.randint(0, 9999)}" if rng.random() < 0.7 else ""
        names.setdefault(stem + tail, None)
    return tuple(names)


def _music_pool(seed: int, size: int = 400) -> tuple[int, ...]:
    rng = random.Random(f"gettok-music:{seed}")
    return tuple(
        rng.randrange(6_800_000_000_000_000_000, 7_400_000_000_000_000_000) for _ in range(size)
    )

"""The sandbox's comments and accounts, generated from `(seed, video id)` and `(seed, username)`.

A video's comments add up to its `comment_count` (top-level comments and their replies, as
TikTok counts them). The comment list serves them as one result set in slot order, a top-level
comment followed by its replies: top-level comments name the video as `parent_comment_id` (as
in the recorded fixture), replies name their comment. Like the video query, some slots are
comments deleted since indexing (never shown, so pages run short), and about one in seven texts
is empty, as the recorded page shows. Only the first 1,000 slots are served, as on the live API.

Accounts: every username of the corpus has a profile; a few the API "cannot find" (renamed or
deleted) and a few it "cannot return" (as the live API answers for some users).
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Any

from gettok.sandbox.corpus import CorpusVideo

MAX_SERVED = 1000  # the API's top 1,000 comments per video
DELETED_SHARE = 0.08  # slots whose comment was deleted since indexing
EMPTY_TEXT_SHARE = 0.15  # the recorded page: 3 of 6 texts empty; sticker-only comments
NOT_FOUND_SHARE = 0.04
REFUSED_SHARE = 0.03

PHRASES = (
    "Qué vergüenza para el país",
    "Fuerza Perú 🇵🇪",
    "Esto no es democracia",
    "jajaja no puede ser",
    "Totalmente de acuerdo",
    "Mentira, eso no pasó así",
    "¿Alguien sabe dónde fue esto?",
    "OMG so cute",
    "Que se vayan todos",
    "Dios bendiga al Ecuador",
    "primero 🥇",
    "Exacto!! 👏👏",
    "Eso es falso, infórmate",
    "Saludos desde Chile",
)
HANDLES = ("mariaperu", "luchito_21", "noticiasperu", "ecuavisa", "la.tia.rosa")


@dataclass(frozen=True)
class SandboxComment:
    id: int
    video_id: int
    parent_comment_id: int
    text: str
    like_count: int
    reply_count: int
    create_time: int
    visible: bool = True

    def api_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "video_id": self.video_id,
            "parent_comment_id": self.parent_comment_id,
            "text": self.text,
            "like_count": self.like_count,
            "reply_count": self.reply_count,
            "create_time": self.create_time,
        }


def comment_slots(video: CorpusVideo, seed: int) -> list[SandboxComment]:
    """The video's comment result set in slot order (first 1,000 slots), deleted ones included."""
    rng = random.Random(f"gettok-comments:{seed}:{video.id}")
    total = video.comment_count
    slots: list[SandboxComment] = []
    made = 0
    while made < total and len(slots) < MAX_SERVED:
        replies = min(total - made - 1, int(rng.expovariate(1 / 1.5)) if rng.random() < 0.3 else 0)
        top = _comment(rng, video, video.id, video.create_time, replies)
        slots.append(top)
        made += 1
        for _ in range(replies):
            slots.append(_comment(rng, video, top.id, top.create_time, 0))
            made += 1
    return slots[:MAX_SERVED]


def _comment(
    rng: random.Random, video: CorpusVideo, parent: int, after: int, replies: int
) -> SandboxComment:
    create_time = after + int(rng.expovariate(1 / 3600)) + 1
    text = "" if rng.random() < EMPTY_TEXT_SHARE else rng.choice(PHRASES)
    if text and rng.random() < 0.1:
        text = f"@{rng.choice(HANDLES)} {text}"
    return SandboxComment(
        id=(create_time << 32) | rng.getrandbits(32),
        video_id=video.id,
        parent_comment_id=parent,
        text=text,
        like_count=int(rng.expovariate(1 / 20)),
        reply_count=replies,
        create_time=create_time,
        visible=rng.random() >= DELETED_SHARE,
    )


def account(username: str, seed: int, known: bool) -> tuple[str, dict[str, Any]]:
    """("ok", profile), or ("not_found" | "refused", {}) for a username of the corpus's pool."""
    rng = random.Random(f"gettok-account:{seed}:{username}")
    roll = rng.random()
    if not known or roll < NOT_FOUND_SHARE:
        return "not_found", {}
    if roll < NOT_FOUND_SHARE + REFUSED_SHARE:
        return "refused", {}
    followers = int(rng.lognormvariate(6.5, 2.2))
    checksum = zlib.crc32(username.encode())
    return "ok", {
        "display_name": username.replace("_", " ").replace(".", " ").title(),
        "bio_description": rng.choice(("", "Noticias y opinión", "🇵🇪 Lima", "solo memes")),
        "avatar_url": f"https://p16-sign.tiktokcdn-us.com/avt/{checksum:08x}~c5_168x168.jpeg",
        "is_verified": followers > 500_000 and rng.random() < 0.5,
        "follower_count": followers,
        "following_count": int(rng.lognormvariate(5, 1.5)),
        "likes_count": followers * rng.randint(1, 40),
        "video_count": rng.randint(1, 900),
        "bio_url": "",
    }

"""Prerequisite rows for the LLM tests, written straight into the database.

A campaign, its videos, ok downloads, transcripts and a few real JPEG frames (cv2.imwrite), so
that the annotation tests do not depend on the collect, download or transcribe stages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gettok import db
from gettok.models.campaign import Campaign, parse_campaign
from gettok.models.schema import Campaign as CampaignRow
from gettok.models.schema import CampaignVideo, Download, DownloadStatus, Frame, Transcript, Video

PERU = {
    "name": "peru-test",
    "title": "Peru stance test",
    "start_date": "2022-11-20",
    "end_date": "2022-11-21",
    "language": "es",
    "query": {"region_codes": ["PE"], "keywords": ["castillo"]},
    "stance": {
        "target": "Pedro Castillo as President of Peru",
        "labels": ["support", "no support", "neutral"],
    },
}

# Transcripts whose keywords the sandbox reads: support, opposition, nothing, and music-only.
TRANSCRIPTS = [
    "Viva Pedro Castillo, apoyo total, es bueno para el Perú, fuerza presidente.",
    "Castillo corrupto, fuera Castillo, vacancia ya, es lo peor para el país.",
    "Hoy vamos a cocinar un ceviche con limón y cebolla.",
    "",
]
COLOURS = [(40, 40, 200), (200, 60, 30), (30, 160, 60), (230, 230, 230)]  # BGR


@dataclass
class Fixture:
    campaign: Campaign
    video_ids: list[int]
    media_dir: Path


def campaign_file(folder: Path, **changes) -> str:
    """The campaign as a TOML file, for the flows (they take `campaign_file: str`)."""
    values = {**PERU, **changes}
    top = [f"{k} = {json.dumps(v)}" for k, v in values.items() if not isinstance(v, dict)]
    tables = [
        f"[{name}]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items())
        for name, table in values.items()
        if isinstance(table, dict)
    ]
    path = folder / f"{values['name']}.toml"
    path.write_text("\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n", encoding="utf-8")
    return str(path)


def make_campaign(**changes) -> Campaign:
    return parse_campaign({**PERU, **changes})


def add_videos(
    url: str,
    media_dir: Path,
    count: int = 4,
    *,
    campaign: Campaign | None = None,
    frames_per_video: int = 2,
    first_id: int = (1668902400 << 32) | 1000,
) -> Fixture:
    """`count` videos with transcripts (cycling TRANSCRIPTS) and `frames_per_video` frames each."""
    campaign = campaign or make_campaign()
    ids = [first_id + n for n in range(count)]
    with db.session_scope(url) as session:
        row = session.query(CampaignRow).filter_by(name=campaign.name).one_or_none()
        if row is None:
            row = CampaignRow(
                name=campaign.name,
                title=campaign.title,
                query=campaign.query.to_api(),
                query_hash=campaign.query_hash,
                start_date=campaign.start_date,
                end_date=campaign.end_date,
                region_codes=["PE"],
                language=campaign.language,
                stance_target=campaign.stance.target if campaign.stance else None,
                stance_labels=campaign.stance.labels if campaign.stance else None,
            )
            session.add(row)
            session.flush()
        for n, video_id in enumerate(ids):
            text = TRANSCRIPTS[n % len(TRANSCRIPTS)]
            session.add(
                Video(
                    id=video_id,
                    username=f"user{n}",
                    video_description=f"video {n} #peru",
                    create_time=video_id >> 32,
                    raw={"id": video_id},
                )
            )
            session.flush()
            session.add(CampaignVideo(campaign_id=row.id, video_id=video_id))
            session.add(
                Download(video_id=video_id, status=DownloadStatus.ok, path=f"videos/{video_id}.mp4")
            )
            session.add(
                Transcript(
                    video_id=video_id,
                    engine="faster-whisper",
                    model="tiny.en",
                    settings={},
                    settings_hash="test",
                    status="ok",
                    language="es",
                    text=text,
                    is_empty=not text,
                )
            )
            for index in range(frames_per_video):
                relative = f"frames/{video_id}/{index * 300}.jpg"
                path = media_dir / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                image = np.zeros((128, 72, 3), np.uint8)  # small portrait, like a shrunk TikTok
                image[:] = COLOURS[(n + index) % len(COLOURS)]
                cv2.imwrite(str(path), image)
                session.add(
                    Frame(
                        video_id=video_id,
                        frame_index=index * 300,
                        timestamp_s=index * 10.0,
                        path=relative,
                        width=72,
                        height=128,
                    )
                )
    return Fixture(campaign, ids, media_dir)


def point_at_sandbox(monkeypatch, db_url: str, media_dir: Path, **extra: str) -> None:
    """Settings for an LLM test: this database, the sandbox model at a price, quick retries.

    Call after the `sandbox_env` fixture (which points OPENAI_BASE_URL at the sandbox)."""
    env = {
        "GETTOK_DATABASE_URL": db_url,
        "GETTOK_MEDIA_DIR": str(media_dir),
        "GETTOK_LLM_MODEL": "sandbox-vision",
        # A price, so that costs and budgets are not all zero.
        "GETTOK_LLM_PRICES": '{"sandbox-vision": [100.0, 400.0]}',
        "GETTOK_LLM_BACKOFF_S": "0.01",
        "GETTOK_LLM_MAX_WAIT_S": "0.01",
        "GETTOK_LLM_CONCURRENCY": "2",
        **extra,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)

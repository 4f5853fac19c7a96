"""Where a campaign stands: counts per stage and per status, for artifacts, logs and tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import distinct, func, select

from gettok import db
from gettok.membership import campaign_videos
from gettok.models.schema import (
    Annotation,
    CampaignVideo,
    Download,
    Frame,
    Transcript,
    Video,
)


class StageCounts(BaseModel):
    """Videos of one campaign at each stage, with the statuses that explain the rest."""

    campaign: str
    videos: int = 0
    downloads: dict[str, int] = Field(default_factory=dict)  # status -> videos
    not_downloaded_yet: int = 0
    transcripts: dict[str, int] = Field(default_factory=dict)  # "engine/status" -> videos
    with_frames: int = 0
    annotations: dict[str, int] = Field(default_factory=dict)  # "kind/status" -> rows

    def table(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = [
            {"stage": "collect", "status": "collected", "videos": self.videos}
        ]
        rows += [
            {"stage": "download", "status": s, "videos": n}
            for s, n in sorted(self.downloads.items())
        ]
        rows.append({"stage": "download", "status": "pending", "videos": self.not_downloaded_yet})
        rows += [
            {"stage": "transcribe", "status": s, "videos": n}
            for s, n in sorted(self.transcripts.items())
        ]
        rows.append({"stage": "frames", "status": "extracted", "videos": self.with_frames})
        rows += [
            {"stage": "annotate", "status": s, "videos": n}
            for s, n in sorted(self.annotations.items())
        ]
        return rows


def stage_counts(
    url: str, campaign_name: str, posted: tuple[date, date] | None = None
) -> StageCounts:
    """Counts for the campaign, or only its videos posted on the `posted` UTC days (inclusive):
    a run's summary speaks of the days it ran for, not of the whole campaign."""
    counts = StageCounts(campaign=campaign_name)
    selected = campaign_videos(campaign_name, with_pruned=True)
    if posted is not None:
        first, last = posted
        selected = selected.join(Video, Video.id == CampaignVideo.video_id).where(
            Video.created_at >= datetime.combine(first, time(), UTC),
            Video.created_at < datetime.combine(last + timedelta(days=1), time(), UTC),
        )
    members = selected.scalar_subquery()
    with db.session_scope(url) as session:
        counts.videos = session.scalar(select(func.count()).select_from(selected.subquery())) or 0
        for status, n in session.execute(
            select(Download.status, func.count())
            .where(Download.video_id.in_(members))
            .group_by(Download.status)
        ):
            counts.downloads[status.value] = n
        counts.not_downloaded_yet = counts.videos - sum(counts.downloads.values())
        for engine, status, empty, n in session.execute(
            select(
                Transcript.engine,
                Transcript.status,
                Transcript.is_empty,
                func.count(distinct(Transcript.video_id)),
            )
            .where(Transcript.video_id.in_(members))
            .group_by(Transcript.engine, Transcript.status, Transcript.is_empty)
        ):
            # An empty transcript (music, silence) is done, but it is not speech: say so.
            shown = "empty" if status == "ok" and empty else status
            key = f"{engine}/{shown}"
            counts.transcripts[key] = counts.transcripts.get(key, 0) + n
        counts.with_frames = (
            session.scalar(
                select(func.count(distinct(Frame.video_id))).where(Frame.video_id.in_(members))
            )
            or 0
        )
        for kind, status, n in session.execute(
            select(Annotation.kind, Annotation.status, func.count())
            .where(Annotation.video_id.in_(members))
            .group_by(Annotation.kind, Annotation.status)
        ):
            counts.annotations[f"{kind.value}/{status.value}"] = n
    return counts

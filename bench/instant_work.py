"""The instant stand-ins bench/pipeline.py swaps in for each stage's leaf work: they write the
rows the real work would (so every pending query sees the work done), at once, and count what
they were handed."""

from __future__ import annotations

import math
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

from sqlalchemy import insert, select, update

from gettok import db
from gettok.models.campaign import Campaign
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    AnnotationStatus,
    CampaignVideo,
    Download,
    DownloadStatus,
    Frame,
    Transcript,
    Video,
    WindowStatus,
    utcnow,
)
from gettok.models.schema import CollectionWindow as WindowRow
from gettok.settings import Settings
from gettok.tasks.annotate.annotator import AnnotateResult, KindPlan, plan_for
from gettok.tasks.collect.paging import CollectContext, WindowOutcome
from gettok.tasks.collect.store import ensure_window
from gettok.tasks.collect.windows import CollectionWindow
from gettok.tasks.download.store import DownloadResult
from gettok.tasks.frames.extract import FramesResult
from gettok.tasks.transcribe import (
    WHISPER_ENGINE,
    TranscribeResult,
    settings_hash,
)


class InstantWork:
    """Stand-ins for the leaf work of each stage: they write what the real work would, at once."""

    def __init__(self) -> None:
        self.plans: dict[str, KindPlan | None] = {}
        self.linked: dict[CollectionWindow, list[tuple[int, str]]] = {}

    def collect_window(self, ctx: CollectContext, window: CollectionWindow) -> WindowOutcome:
        low = datetime.combine(window.start, datetime.min.time(), tzinfo=UTC)
        high = datetime.combine(window.end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        with db.session_scope(ctx.database_url) as session:
            row = ensure_window(session, ctx.campaign_id, ctx.campaign.query_hash, window)
            videos = session.execute(
                select(Video.id, Video.username)
                .where(Video.created_at >= low, Video.created_at < high)
                .order_by(Video.id)
            ).all()
            now = utcnow()
            session.execute(
                insert(CampaignVideo),
                [
                    {"campaign_id": ctx.campaign_id, "video_id": i, "window_id": row.id}
                    for i, _ in videos
                ],
            )
            session.execute(
                update(WindowRow)
                .where(WindowRow.id == row.id)
                .values(
                    status=WindowStatus.done,
                    pages=math.ceil(len(videos) / 100),
                    videos=len(videos),
                    started_at=now,
                    finished_at=now,
                )
            )
        self.linked[window] = [(i, u) for i, u in videos]
        return WindowOutcome(
            window=window,
            status="done",
            pages=math.ceil(len(videos) / 100),
            videos=len(videos),
            new_videos=len(videos),
        )

    def download_videos(
        self, videos, settings: Settings, gate=None, retry_failed: bool = False
    ) -> DownloadResult:
        rows = [
            {
                "video_id": i,
                "status": DownloadStatus.ok,
                "path": f"videos/{i}.mp4",
                "bytes": 1,
                "attempts": 1,
            }
            for i, _ in videos
        ]
        with db.session_scope(settings.resolved_database_url) as session:
            session.execute(insert(Download), rows)
        return DownloadResult(statuses={i: DownloadStatus.ok for i, _ in videos})

    def transcribe_videos(
        self, video_ids, settings: Settings, options, *, limit_name=None, retry_failed=False
    ) -> TranscribeResult:
        provenance = options.provenance()
        common = {
            "engine": WHISPER_ENGINE,
            "model": options.model,
            "settings": provenance,
            "settings_hash": settings_hash(provenance),
            "status": "ok",
            "text": "el presidente habla",
            "language": "es",
            "duration_s": 30.0,
            "is_empty": False,
        }
        with db.session_scope(settings.resolved_database_url) as session:
            session.execute(insert(Transcript), [{"video_id": i, **common} for i in video_ids])
        return TranscribeResult(done=list(video_ids))

    def extract_frames(self, db_url: str, settings: Settings, video_ids, limit) -> FramesResult:
        rows = [
            {"video_id": i, "frame_index": 0, "timestamp_s": 0.0, "path": f"frames/{i}/0.jpg",
             "width": 432, "height": 768, "source": "video"}
            for i in video_ids
        ]  # fmt: skip
        with db.session_scope(db_url) as session:
            session.execute(insert(Frame), rows)
        return FramesResult(videos_done=len(rows), frames_written=len(rows))

    def plan(self, kind: str, campaign: Campaign, settings: Settings) -> KindPlan | None:
        if kind not in self.plans:
            self.plans[kind] = plan_for(kind, campaign, settings)
        return self.plans[kind]

    def annotate_videos(
        self, database_url, settings, campaign, kind, video_ids, *, client=None, budget=None
    ) -> AnnotateResult:
        plan = self.plan(kind, campaign, settings)
        kinds = [plan.kind]
        if plan.kind is AnnotationKind.description:
            kinds.append(AnnotationKind.onscreen_text)
        rows = [
            {"video_id": i, "kind": k, "status": AnnotationStatus.ok, "value": {k.value: "x"},
             "model": plan.model, "prompt_id": plan.prompt.name, "prompt_hash": plan.prompt_hash,
             "settings": {}, "is_sandbox": True}
            for i in video_ids
            for k in kinds
        ]  # fmt: skip
        with db.session_scope(database_url) as session:
            session.execute(insert(Annotation), rows)
        return AnnotateResult(
            kind=kind, model=plan.model, prompt_hash=plan.prompt_hash, done=len(video_ids)
        )


def patched(work: InstantWork) -> ExitStack:
    """The batch tasks' leaf work, swapped where each task body looks it up."""
    stack = ExitStack()
    stack.enter_context(patch("gettok.flows.collect.collect_window", work.collect_window))
    stack.enter_context(
        patch("gettok.tasks.download.downloader.download_videos", work.download_videos)
    )
    stack.enter_context(
        patch("gettok.tasks.transcribe.transcriber.transcribe_videos", work.transcribe_videos)
    )
    stack.enter_context(patch("gettok.tasks.frames.campaign.extract_frames", work.extract_frames))
    stack.enter_context(patch("gettok.flows.enrich.annotate_videos", work.annotate_videos))
    return stack

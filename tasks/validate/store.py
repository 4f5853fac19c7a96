"""Every query of validation: the annotations a sample is drawn from, samples, codes and scores."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    AnnotationStatus,
    Campaign,
    CampaignVideo,
    Download,
    Frame,
    Transcript,
    ValidationCode,
    ValidationItem,
    ValidationSample,
    ValidationScore,
    Video,
    utcnow,
)

TRANSCRIPT_ENGINES = ("faster-whisper", "tiktok")  # preferred first, as the annotator reads them


class UnknownCampaign(LookupError):
    """The campaign has no rows in this database (nothing collected yet)."""


class UnknownSample(LookupError):
    """No validation sample with that id in that campaign."""


@dataclass(frozen=True)
class AnnotatedVideo:
    """The annotation a sample would validate: the newest ok one of its kind for the video."""

    annotation_id: int
    video_id: int
    value: dict[str, Any]
    prompt: str  # prompt id @ first 12 characters of its hash: the prompt version
    model: str
    posted: datetime | None


@dataclass
class SampledVideo:
    """What a coder sees of one sampled video, and what the model said (kept from the coder)."""

    item_id: int
    position: int
    video_id: int
    username: str | None
    caption: str | None
    transcript: str | None
    onscreen_text: str | None
    frames: list[str]
    media: list[str]  # the video file, or a slideshow's images, relative to the media dir
    audio: str | None  # a slideshow's sound
    annotation: dict[str, Any]
    prompt: str
    model: str


@dataclass
class CodedVideo:
    """One sampled video's model annotation and every coder's code, for scoring."""

    video_id: int
    annotation: dict[str, Any]
    prompt: str
    codes: dict[str, str | None] = field(default_factory=dict)
    flagged: int = 0


def campaign_row_id(session: Session, name: str) -> int:
    found = session.scalar(select(Campaign.id).where(Campaign.name == name))
    if found is None:
        raise UnknownCampaign(f"campaign {name!r} is not in the database: collect it first")
    return found


def annotated_videos(session: Session, campaign_id: int, kind: str) -> list[AnnotatedVideo]:
    """The campaign's videos with an ok annotation of `kind`: the newest per video (as exported)."""
    rows = session.execute(
        select(Annotation, Video.created_at)
        .join(Video, Video.id == Annotation.video_id)
        .join(CampaignVideo, CampaignVideo.video_id == Annotation.video_id)
        .where(
            CampaignVideo.campaign_id == campaign_id,
            Annotation.kind == AnnotationKind(kind),
            Annotation.status == AnnotationStatus.ok,
        )
        .order_by(Annotation.video_id, Annotation.created_at, Annotation.id)
    ).all()
    newest: dict[int, AnnotatedVideo] = {}
    for a, posted in rows:  # ordered oldest first: the last one per video wins
        newest[a.video_id] = AnnotatedVideo(
            annotation_id=a.id,
            video_id=a.video_id,
            value=a.value or {},
            prompt=prompt_version(a.prompt_id, a.prompt_hash),
            model=a.model,
            posted=posted,
        )
    return list(newest.values())


def prompt_version(prompt_id: str, prompt_hash: str) -> str:
    return f"{prompt_id}@{prompt_hash[:12]}"


def save_sample(
    session: Session,
    campaign_id: int,
    kind: str,
    seed: int,
    stratify: str | None,
    labels: list[str],
    drawn: list[tuple[AnnotatedVideo, str | None]],
) -> int:
    sample = ValidationSample(
        campaign_id=campaign_id,
        kind=kind,
        n=len(drawn),
        seed=seed,
        stratify=stratify,
        labels=labels,
    )
    session.add(sample)
    session.flush()
    session.add_all(
        ValidationItem(
            sample_id=sample.id,
            position=i + 1,
            video_id=video.video_id,
            annotation_id=video.annotation_id,
            stratum=stratum,
        )
        for i, (video, stratum) in enumerate(drawn)
    )
    return sample.id


def get_sample(session: Session, campaign_id: int, sample_id: int) -> ValidationSample:
    sample = session.get(ValidationSample, sample_id)
    if sample is None or sample.campaign_id != campaign_id:
        raise UnknownSample(f"there is no validation sample {sample_id} in this campaign")
    return sample


def campaign_samples(session: Session, campaign_id: int) -> list[ValidationSample]:
    return list(
        session.scalars(
            select(ValidationSample)
            .where(ValidationSample.campaign_id == campaign_id)
            .order_by(ValidationSample.id)
        )
    )


def campaign_video_ids(session: Session, campaign_id: int, video_ids: Iterable[int]) -> set[int]:
    wanted = list(set(video_ids))
    return set(
        session.scalars(
            select(CampaignVideo.video_id).where(
                CampaignVideo.campaign_id == campaign_id, CampaignVideo.video_id.in_(wanted)
            )
        )
    )


def sample_items(session: Session, sample_id: int) -> dict[int, int]:
    """video id -> item id of the sample."""
    return dict(
        session.execute(
            select(ValidationItem.video_id, ValidationItem.id).where(
                ValidationItem.sample_id == sample_id
            )
        ).all()
    )


def sampled_videos(session: Session, sample_id: int) -> list[SampledVideo]:
    """The sample's videos in sheet order, with caption, transcript, frames and media."""
    rows = session.execute(
        select(ValidationItem, Video, Annotation)
        .join(Video, Video.id == ValidationItem.video_id)
        .join(Annotation, Annotation.id == ValidationItem.annotation_id)
        .where(ValidationItem.sample_id == sample_id)
        .order_by(ValidationItem.position)
    ).all()
    ids = [item.video_id for item, _, _ in rows]
    transcripts = _transcripts(session, ids)
    onscreen = _onscreen_texts(session, ids)
    frames: dict[int, list[str]] = {}
    for video_id, path in session.execute(
        select(Frame.video_id, Frame.path)
        .where(Frame.video_id.in_(ids))
        .order_by(Frame.video_id, Frame.frame_index)
    ):
        frames.setdefault(video_id, []).append(path)
    downloads = select(Download).where(Download.video_id.in_(ids))
    media = {d.video_id: d for d in session.scalars(downloads)}
    return [
        SampledVideo(
            item_id=item.id,
            position=item.position,
            video_id=video.id,
            username=video.username,
            caption=video.video_description,
            transcript=transcripts.get(video.id) or video.voice_to_text,
            onscreen_text=onscreen.get(video.id),
            frames=frames.get(video.id, []),
            media=_media_paths(media.get(video.id)),
            audio=media[video.id].audio_path if video.id in media else None,
            annotation=annotation.value or {},
            prompt=prompt_version(annotation.prompt_id, annotation.prompt_hash),
            model=annotation.model,
        )
        for item, video, annotation in rows
    ]


def _media_paths(download: Download | None) -> list[str]:
    if download is None:
        return []
    if download.image_paths:
        return [str(p) for p in download.image_paths]
    return [download.path] if download.path else []


def _transcripts(session: Session, ids: list[int]) -> dict[int, str]:
    best: dict[int, tuple[int, str]] = {}
    for video_id, engine, text in session.execute(
        select(Transcript.video_id, Transcript.engine, Transcript.text)
        .where(Transcript.video_id.in_(ids), Transcript.status == "ok")
        .order_by(Transcript.created_at)
    ):
        rank = TRANSCRIPT_ENGINES.index(engine) if engine in TRANSCRIPT_ENGINES else 9
        if text and (video_id not in best or rank <= best[video_id][0]):
            best[video_id] = (rank, text)
    return {video_id: text for video_id, (_, text) in best.items()}


def _onscreen_texts(session: Session, ids: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for video_id, value in session.execute(
        select(Annotation.video_id, Annotation.value)
        .where(
            Annotation.video_id.in_(ids),
            Annotation.kind == AnnotationKind.onscreen_text,
            Annotation.status == AnnotationStatus.ok,
        )
        .order_by(Annotation.created_at)
    ):
        if value and value.get("onscreen_text"):
            found[video_id] = value["onscreen_text"]
    return found


def save_codes(session: Session, codes: list[dict[str, Any]]) -> None:
    """Insert or replace codes keyed by (item_id, coder): the coder's last answer counts."""
    if not codes:
        return
    insert = postgres_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    for code in codes:
        row = {"skipped": False, "flagged": False, "coded_at": utcnow(), **code}
        statement = insert(ValidationCode).values(**row)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["item_id", "coder"],
                set_={k: statement.excluded[k] for k in row if k not in ("item_id", "coder")},
            )
        )


def coder_codes(session: Session, sample_id: int, coder: str) -> dict[int, ValidationCode]:
    """item id -> this coder's code, for the coding page."""
    return {
        code.item_id: code
        for code in session.scalars(
            select(ValidationCode)
            .join(ValidationItem, ValidationItem.id == ValidationCode.item_id)
            .where(ValidationItem.sample_id == sample_id, ValidationCode.coder == coder)
        )
    }


def coded_videos(session: Session, sample_id: int) -> list[CodedVideo]:
    """Every sampled video with the model's annotation and each coder's code (None: not coded)."""
    rows = session.execute(
        select(ValidationItem.id, ValidationItem.video_id, Annotation)
        .join(Annotation, Annotation.id == ValidationItem.annotation_id)
        .where(ValidationItem.sample_id == sample_id)
        .order_by(ValidationItem.position)
    ).all()
    videos = {
        item_id: CodedVideo(
            video_id=video_id,
            annotation=a.value or {},
            prompt=prompt_version(a.prompt_id, a.prompt_hash),
        )
        for item_id, video_id, a in rows
    }
    for code in session.scalars(
        select(ValidationCode).where(ValidationCode.item_id.in_(list(videos)))
    ):
        videos[code.item_id].codes[code.coder] = code.label
        videos[code.item_id].flagged += int(code.flagged)
    return list(videos.values())


def save_score(session: Session, sample_id: int, n: int, figures: dict[str, Any]) -> None:
    session.add(ValidationScore(sample_id=sample_id, n=n, figures=figures))


def human_codes(session: Session, campaign_id: int) -> list[tuple[int, str, str, str | None]]:
    """(video id, sample kind, coder, label) of every code given in the campaign's samples."""
    return list(
        session.execute(
            select(
                ValidationItem.video_id,
                ValidationSample.kind,
                ValidationCode.coder,
                ValidationCode.label,
            )
            .join(ValidationItem, ValidationItem.id == ValidationCode.item_id)
            .join(ValidationSample, ValidationSample.id == ValidationItem.sample_id)
            .where(ValidationSample.campaign_id == campaign_id)
            .order_by(ValidationCode.coded_at, ValidationCode.id)
        ).all()
    )

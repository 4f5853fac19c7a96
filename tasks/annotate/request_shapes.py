"""The requests a kind would make for a set of videos, counted in SQL by what sets their size.

A request's estimated input tokens depend on its video only through the JSON-escaped length of
the material its prompt reads (transcript, caption, description, summary: each chosen as
`annotator.load_inputs` chooses it) and the frames it shows (how many, at what size). The
database computes those per video and counts the videos of each combination, so the dry run
prices a few thousand shapes instead of building a million requests in Python. Videos whose
frames differ in size are left to the caller: which of them a request shows is the annotator's
choice, so those requests are built one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy import (
    CTE,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Session

from gettok.clients.llm_request import ChatRequest
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    AnnotationStatus,
    Frame,
    MediaInfo,
    Transcript,
    Video,
)
from gettok.settings import Settings
from gettok.sql_text import json_length, json_string_length, stripped
from gettok.tasks.annotate.annotator import (
    NO_TEXT,
    TRANSCRIPT_ENGINES,
    KindPlan,
    VideoInputs,
    build_request,
    inputs_read,
)
from gettok.tasks.annotate.provenance import is_stale, usable_current

ON_SCREEN = "\nOn-screen text: "  # how the annotator appends a description's on-screen text
DEFAULT_FRAME_SIZE = (720, 1280)  # TikTok's usual portrait size, when nothing was probed


@dataclass(frozen=True)
class RequestShape:
    """`videos` requests alike in size: their material's escaped length and frames shown."""

    material_length: int
    frames: int
    frame_size: tuple[int, int] | None
    videos: int


def request_shapes(
    session: Session,
    plan: KindPlan,
    settings: Settings,
    videos: Select,
    fixed: Mapping[str, str] | None = None,
    frames_planned: bool = False,
) -> tuple[list[RequestShape], Select | None]:
    """The shapes of `plan`'s requests for the videos `videos` selects (one id column), and a
    SELECT of those whose frames differ in size (None when there are none).

    `fixed` gives material values this run will have written by then (a summary not yet made:
    its expected length), in place of what the database holds; `frames_planned`, that the
    request shows the frames this run will extract (`_planned_sizes`), not those stored."""
    fixed = dict(fixed or {})
    ids = videos.cte("shaped_videos")
    video_id = ids.c[0]
    read = [name for name in plan.prompt.material if name not in fixed]
    unknown = set(read) - set(_CHOSEN)
    if unknown:
        raise ValueError(f"prompt {plan.prompt.id} reads {sorted(unknown)}: no size in SQL")
    # Each value once per video, behind OFFSET 0: Postgres would otherwise pull the subqueries
    # up into the length expressions, which name their text a dozen times. The frames join sits
    # inside too: outside, SQLite scanned every video's frame sizes for each video.
    values = select(video_id.label("id"), *(_CHOSEN[name](video_id).label(name) for name in read))
    values = values.select_from(ids)
    if shows_frames(plan):
        if frames_planned:
            frames = _planned_sizes(ids, settings)
        else:
            frames = _frame_sizes(ids)
        values = values.outerjoin(frames, frames.c.video_id == video_id).add_columns(
            *(frames.c[c] for c in ("count", "min_w", "max_w", "min_h", "max_h"))
        )
    values = values.offset(0).subquery("material")
    constant = sum(
        json_length(fixed[name] or NO_TEXT) for name in plan.prompt.material if name in fixed
    )
    material = sum((_length(values.c[name]) for name in read), literal(constant))

    query = select(values.c.id, material.label("length"))
    if shows_frames(plan):
        shown = _frames_shown(plan, settings, values.c.count)
        uniform = or_(
            values.c.count.is_(None),
            and_(values.c.min_w == values.c.max_w, values.c.min_h == values.c.max_h),
        )
        query = query.add_columns(
            shown.label("frames"),
            case((shown > 0, values.c.min_w)).label("width"),
            case((shown > 0, values.c.min_h)).label("height"),
            case((uniform, 1), else_=0).label("uniform"),
        )
    else:
        query = query.add_columns(
            literal_column("0").label("frames"),
            cast(null(), Integer).label("width"),
            cast(null(), Integer).label("height"),
            literal_column("1").label("uniform"),
        )
    per_video = query.subquery("per_video")
    keys = (per_video.c.length, per_video.c.frames, per_video.c.width, per_video.c.height)
    grouped = select(*keys, per_video.c.uniform, func.count()).group_by(*keys, per_video.c.uniform)
    shapes, mixed = [], False
    for length, frames_shown, width, height, uniform, count in session.execute(grouped):
        if not uniform:
            mixed = True
            continue
        size = (width, height) if frames_shown else None
        if size is not None and frames_planned:  # grouped by probed size: scaled here
            size = planned_size(settings, size)
        shapes.append(RequestShape(int(length), int(frames_shown), size, count))
    mixed_ids = select(per_video.c.id).where(per_video.c.uniform == 0) if mixed else None
    return shapes, mixed_ids


def shows_frames(plan: KindPlan) -> bool:
    """The kinds whose requests show frames, as `inputs_read` decides what the dry run loads."""
    return "frame_sizes" in inputs_read(plan)


class ShapedRequests:
    """Requests of given shapes for one plan: the real request for a video with those frames,
    its user text replaced by as many characters as the shape's material makes it."""

    def __init__(self, plan: KindPlan, settings: Settings) -> None:
        self.plan, self.settings = plan, settings
        self._layouts: dict[tuple, tuple[ChatRequest, int]] = {}

    def request(self, shape: RequestShape) -> ChatRequest:
        layout = (shape.frames, shape.frame_size)
        if layout not in self._layouts:
            self._layouts[layout] = self._without_material(*layout)
        request, base = self._layouts[layout]
        return replace(request, user_text="x" * (base + shape.material_length))

    def _without_material(self, frames: int, size: tuple[int, int] | None):
        width, height = size or (0, 0)
        shown = [
            Frame(id=None, frame_index=i, path="", width=width, height=height)
            for i in range(frames)
        ]
        request = build_request(
            self.plan, VideoInputs(0, frames=shown), self.settings, media_dir=None
        )
        # Rendered with NO_TEXT as every material value; what is left is the prompt's own text.
        return request, len(request.user_text) - len(self.plan.prompt.material) * json_length(
            NO_TEXT
        )


def _length(text):
    """The escaped length of a material value as the prompt carries it (empty: NO_TEXT)."""
    return case(
        (func.coalesce(text, "") == "", json_length(NO_TEXT)), else_=json_string_length(text)
    )


# --- each material value of one video, chosen as annotator.load_inputs chooses it ----------
# Correlated subqueries, one index probe per video: joined to a window over the same rows,
# SQLite scanned the whole window for every video (333 s for 18,000 stance requests).


def _caption(video_id):
    return select(Video.video_description).where(Video.id == video_id).scalar_subquery()


def _transcript(video_id):
    """The current usable transcript with words once stripped: Whisper's over TikTok's, then
    the newest."""
    rank = case(
        {engine: n for n, engine in enumerate(TRANSCRIPT_ENGINES)}, value=Transcript.engine, else_=9
    )
    text = stripped(Transcript.text)
    return (
        select(text)
        .where(Transcript.video_id == video_id, *usable_current(Transcript), text != "")
        .order_by(rank, Transcript.created_at.desc(), Transcript.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _description(video_id):
    """The newest description that is neither failed nor stale: its text (NO_TEXT unless ok)
    and on-screen text."""
    said = case(
        (
            Annotation.status == AnnotationStatus.ok,
            func.coalesce(Annotation.value["description"].as_string(), NO_TEXT),
        ),
        else_=literal(NO_TEXT),
    )
    onscreen = Annotation.value["onscreen_text"].as_string()
    text = said + case(
        (func.coalesce(onscreen, "") != "", literal(ON_SCREEN) + onscreen), else_=literal("")
    )
    return _newest(
        text,
        Annotation.video_id == video_id,
        Annotation.kind == AnnotationKind.description,
        Annotation.status != AnnotationStatus.failed,
        ~is_stale(Annotation),
    )


def _summary(video_id):
    """The newest ok summary's text."""
    return _newest(
        func.coalesce(Annotation.value["summary"].as_string(), ""),
        Annotation.video_id == video_id,
        Annotation.kind == AnnotationKind.summary,
        Annotation.status == AnnotationStatus.ok,
    )


def _newest(text, *conditions):
    """`text` of the newest annotation meeting `conditions`."""
    newest = (Annotation.created_at.desc(), Annotation.id.desc())
    return select(text).where(*conditions).order_by(*newest).limit(1).scalar_subquery()


_CHOSEN = {
    "caption": _caption,
    "transcript": _transcript,
    "description": _description,
    "summary": _summary,
}


def _frame_sizes(ids: CTE):
    return (
        select(
            Frame.video_id,
            func.count().label("count"),
            func.min(Frame.width).label("min_w"),
            func.max(Frame.width).label("max_w"),
            func.min(Frame.height).label("min_h"),
            func.max(Frame.height).label("max_h"),
        )
        .where(Frame.video_id.in_(select(ids.c[0])))
        .group_by(Frame.video_id)
        .subquery("frame_sizes")
    )


def _planned_sizes(ids: CTE, settings: Settings):
    """Each video's frames as this run will extract them: as many as the frames stage keeps of
    its probed frame count (`frame_max_per_video` when unprobed: an upper bound), at its probed
    size (the default size when unprobed), scaled to the configured size after grouping."""
    video_id = ids.c[0]
    probed = and_(MediaInfo.width > 0, MediaInfo.height > 0)
    width = case((probed, MediaInfo.width), else_=DEFAULT_FRAME_SIZE[0])
    height = case((probed, MediaInfo.height), else_=DEFAULT_FRAME_SIZE[1])
    every, cap = settings.frame_every, settings.frame_max_per_video
    # As `frames.sampling.frame_indices` keeps them: 0, every, 2*every, ... below the count.
    kept = (MediaInfo.frame_count + (every - 1)) // every
    count = case(
        (MediaInfo.frame_count.is_(None) | (MediaInfo.frame_count < 1) | (kept > cap), cap),
        else_=kept,
    )
    return (
        select(
            video_id.label("video_id"),
            count.label("count"),
            width.label("min_w"),
            width.label("max_w"),
            height.label("min_h"),
            height.label("max_h"),
        )
        .select_from(ids)
        .outerjoin(MediaInfo, MediaInfo.video_id == video_id)
        .subquery("planned_sizes")
    )


def planned_size(settings: Settings, size: tuple[int, int]) -> tuple[int, int]:
    """A frame of a video of `size` as the frames stage stores it (longest side at most
    `frame_max_side`)."""
    scale = min(1.0, settings.frame_max_side / max(size))
    return round(size[0] * scale), round(size[1] * scale)


def _frames_shown(plan: KindPlan, settings: Settings, count):
    """How many frames the request shows: up to `llm_max_frames` spread across the video for a
    description, the middle one for stance."""
    if plan.kind is AnnotationKind.description:
        most = settings.llm_max_frames
        return case((count > most, most), else_=func.coalesce(count, 0))
    return case((count > 0, 1), else_=0)

"""The dry run counts in SQL: each kind's requests grouped by shape (the material's JSON-escaped
length, the frames shown), and what later kinds add for videos this run will describe, frame or
summarise. The estimate equals one built request by request from the pending lists, as the dry
run was before it counted in SQL, also for text that JSON escapes or str.strip() trims."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, update

from bench.scale_data import add_downstream, add_videos, scale_campaign
from gettok import db
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    AnnotationStatus,
    Frame,
    MediaInfo,
    Transcript,
    Video,
)
from gettok.settings import get_settings
from gettok.tasks.annotate import store as annotate_store
from gettok.tasks.annotate.annotator import (
    REQUESTED_KINDS,
    VideoInputs,
    build_request,
    load_inputs,
    plan_for,
)
from gettok.tasks.annotate.cost import estimate_enrich
from gettok.tasks.annotate.prompts import load_prompt
from gettok.tasks.annotate.request_shapes import DEFAULT_FRAME_SIZE, planned_size
from gettok.tasks.frames import store as frames_store
from gettok.tasks.frames.extract import frame_settings
from gettok.tasks.frames.sampling import frame_indices


@pytest.fixture
def mixed(db_url, settings_env, monkeypatch):
    """Half the videos framed, half waiting for frames (some unprobed, some larger, some ten
    minutes long); some without a description yet, so stance also counts the ones this run will
    describe."""
    monkeypatch.setenv("GETTOK_DATABASE_URL", db_url)
    db.upgrade(db_url)
    ids = add_videos(db_url, scale_campaign(), 120)
    add_downstream(db_url, ids[:60])
    add_downstream(db_url, ids[60:], frames=False)
    with db.session_scope(db_url) as session:
        session.execute(delete(MediaInfo).where(MediaInfo.video_id.in_(ids[90:100])))
        session.execute(
            update(MediaInfo)
            .where(MediaInfo.video_id.in_(ids[100:105]))
            .values(width=1080, height=1920)
        )
        session.execute(
            update(MediaInfo)
            .where(MediaInfo.video_id.in_(ids[105:110]))
            .values(duration_s=600.0, frame_count=18_000)
        )
        session.execute(
            delete(Annotation).where(
                Annotation.kind == AnnotationKind.description,
                Annotation.video_id.in_(ids[5:15] + ids[70:85]),
            )
        )
    return db_url


def planned_frames(settings, probed: tuple[int, int, int] | None) -> list[Frame]:
    """The frames a video probed at (width, height, frame count) will have once this run
    extracts them: those the frames stage keeps; as many as it may keep when unprobed."""
    if probed is None:
        size, kept = DEFAULT_FRAME_SIZE, settings.frame_max_per_video
    else:
        size = probed[:2]
        kept = len(frame_indices(probed[2], settings.frame_every, settings.frame_max_per_video))
    width, height = planned_size(settings, size)
    return [Frame(id=None, frame_index=i, path="", width=width, height=height) for i in range(kept)]


def _tokens(plan, inputs, settings) -> tuple[int, int]:
    return build_request(plan, inputs, settings, media_dir=None).estimated_tokens()


def _reference(url: str, settings, kinds: list[str]) -> dict[str, tuple[int, int]]:
    """(videos, input tokens) per kind, video by video from Python sets of pending ids."""
    campaign = scale_campaign()
    digest = frames_store.settings_hash(frame_settings(settings))
    found: dict[str, tuple[int, int]] = {}
    with db.session_scope(url) as session:
        pending = {
            k: annotate_store.pending_videos(
                session, "scale", plan_for(k, campaign, settings), max_tries=3
            )
            for k in kinds
        }
        no_frames = [
            d.video_id for d in frames_store.pending_videos(url, digest, "scale", limit=None)
        ]
        probed = session.execute(
            select(MediaInfo.video_id, MediaInfo.width, MediaInfo.height, MediaInfo.frame_count)
        )
        media = {v: (w, h, n) for v, w, h, n in probed if w and h}
        for kind in kinds:
            plan = plan_for(kind, campaign, settings)
            requests = [*load_inputs(session, pending[kind]).values()]
            if kind == "description":
                for video_id in no_frames:
                    frames = planned_frames(settings, media.get(video_id))
                    requests.append(VideoInputs(video_id, frames=frames))
            if kind == "summary_check" and "summary" in kinds:
                expected = "x" * 4 * load_prompt("summary").expected_output_tokens
                summarised = sorted(set(pending["summary"]) - set(pending["summary_check"]))
                requests += [
                    VideoInputs(v, transcript=read.transcript, summary=expected)
                    for v, read in load_inputs(
                        session, summarised, frozenset({"transcript"})
                    ).items()
                ]
            if kind == "stance" and "description" in kinds:
                # As their requests will be: what the database holds, the description this run
                # writes and, for the videos it frames, the frames it extracts.
                described = set(pending["description"]) | set(no_frames)
                expected = "x" * 4 * load_prompt("description").expected_output_tokens
                later = sorted(described - set(pending["stance"]))
                for video_id, read in load_inputs(session, later).items():
                    read.description = expected
                    if video_id in no_frames:
                        read.frames = planned_frames(settings, media.get(video_id))
                    requests.append(read)
            tokens = sum(_tokens(plan, inputs, settings)[0] for inputs in requests)
            found[kind] = (len(requests), tokens)
    return found


@pytest.mark.parametrize("kinds", [["description", "stance"], ["stance"]])
@pytest.mark.parametrize("frame_max", [None, 4])
def test_combined_counts_equal_the_per_video_estimate(mixed, kinds, frame_max, monkeypatch):
    if frame_max is not None:  # fewer frames kept than a description may show
        monkeypatch.setenv("GETTOK_FRAME_MAX_PER_VIDEO", str(frame_max))
    settings = get_settings()
    estimate = estimate_enrich(mixed, settings, scale_campaign(), kinds)
    got = {k.kind: (k.videos, k.input_tokens) for k in estimate.kinds}
    expected = _reference(mixed, settings, kinds)
    assert got == expected
    if kinds == ["description", "stance"]:  # the combined parts are there to be counted
        with db.session_scope(mixed) as session:
            plan = plan_for("stance", scale_campaign(), settings)
            alone = len(annotate_store.pending_videos(session, "scale", plan))
        assert got["stance"][0] > alone


# Text JSON writes longer (quotes, backslashes, control characters), that strip() trims (Unicode
# whitespace) or that Python and SQL might count differently (accents, emoji, CJK).
AWKWARD = [
    'dijo "fuera" \\ ya',
    "línea uno\nlínea dos\r\n\ttabulada",
    "\u3000\xa0  Perú 🇵🇪 \x01\x1f control  \u2028",
    "中文 ＠fan \b\f",
    "",
]


@pytest.fixture
def awkward(mixed):
    """`mixed`, with awkward captions, transcripts, descriptions and summaries; a Whisper
    transcript of only whitespace (TikTok's is read instead); videos whose frames differ in size."""
    with db.session_scope(mixed) as session:
        ids = session.scalars(select(Video.id).order_by(Video.id)).all()
        for n, video_id in enumerate(ids[:40]):
            text = AWKWARD[n % len(AWKWARD)]
            session.execute(
                update(Video).where(Video.id == video_id).values(video_description=text or None)
            )
            session.execute(
                update(Transcript)
                .where(Transcript.video_id == video_id, Transcript.engine == "faster-whisper")
                .values(text=" \u3000\n " if n % 7 == 3 else f"{text} {n}")
            )
            value = {"description": text, "onscreen_text": AWKWARD[(n + 1) % len(AWKWARD)]}
            if n % 6 == 5:
                value = {"onscreen_text": text}  # no description key
            session.execute(
                update(Annotation)
                .where(
                    Annotation.video_id == video_id,
                    Annotation.kind == AnnotationKind.description,
                )
                .values(value=value)
            )
            session.execute(
                update(Annotation)
                .where(Annotation.video_id == video_id, Annotation.kind == AnnotationKind.summary)
                .values(value={"summary": AWKWARD[(n + 2) % len(AWKWARD)]})
            )
        framed = session.scalars(select(Frame.video_id).distinct().order_by(Frame.video_id))
        for video_id in framed.all()[:3]:
            first = select(func.min(Frame.id)).where(Frame.video_id == video_id).scalar_subquery()
            session.execute(update(Frame).where(Frame.id == first).values(width=1080, height=1920))
        refused = session.scalars(
            select(Annotation.id).where(Annotation.status != AnnotationStatus.ok)
        ).all()
        assert refused  # bench data: some descriptions refused, read as NO_TEXT
    return mixed


@pytest.mark.parametrize("page", [5000, 2])
def test_estimate_is_exact_for_awkward_text(awkward, page, monkeypatch):
    from gettok.tasks.annotate import cost

    monkeypatch.setattr(cost, "ID_BATCH", page)  # the videos built one by one: 2 pages of 3
    settings = get_settings()
    estimate = estimate_enrich(awkward, settings, scale_campaign(), list(REQUESTED_KINDS))
    got = {k.kind: (k.videos, k.input_tokens) for k in estimate.kinds}
    assert got == _reference(awkward, settings, list(REQUESTED_KINDS))
    assert all(videos for videos, _ in got.values())

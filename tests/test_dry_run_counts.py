"""The dry run counts in SQL what later kinds add for videos this run will describe or summarise
(and the frames it will make, grouped by probed size); the estimate equals one built video by
video from the pending lists, as the dry run was before it combined them in SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from bench.scale_data import add_downstream, add_videos, scale_campaign
from gettok import db
from gettok.models.schema import Annotation, AnnotationKind, MediaInfo
from gettok.settings import get_settings
from gettok.tasks.annotate import store as annotate_store
from gettok.tasks.annotate.annotator import VideoInputs, build_request, load_inputs, plan_for
from gettok.tasks.annotate.cost import DEFAULT_FRAME_SIZE, _planned_frames, estimate_enrich
from gettok.tasks.annotate.prompts import load_prompt
from gettok.tasks.frames import store as frames_store
from gettok.tasks.frames.extract import frame_settings


@pytest.fixture
def mixed(db_url, settings_env, monkeypatch):
    """Half the videos framed, half waiting for frames (some unprobed, one size changed); some
    without a description yet, so stance also counts the ones this run will describe."""
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
            delete(Annotation).where(
                Annotation.kind == AnnotationKind.description,
                Annotation.video_id.in_(ids[5:15] + ids[70:85]),
            )
        )
    return db_url


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
        probed = session.execute(select(MediaInfo.video_id, MediaInfo.width, MediaInfo.height))
        sizes = {v: (w, h) for v, w, h in probed if w and h}
        for kind in kinds:
            plan = plan_for(kind, campaign, settings)
            requests = [*load_inputs(session, pending[kind]).values()]
            if kind == "description":
                for video_id in no_frames:
                    size = sizes.get(video_id, DEFAULT_FRAME_SIZE)
                    requests.append(VideoInputs(video_id, frames=_planned_frames(settings, size)))
            if kind == "stance" and "description" in kinds:
                described = set(pending["description"]) | set(no_frames)
                expected = "x" * 4 * load_prompt("description").expected_output_tokens
                requests += [
                    VideoInputs(v, description=expected)
                    for v in sorted(described - set(pending["stance"]))
                ]
            tokens = sum(_tokens(plan, inputs, settings)[0] for inputs in requests)
            found[kind] = (len(requests), tokens)
    return found


@pytest.mark.parametrize("kinds", [["description", "stance"], ["stance"]])
def test_combined_counts_equal_the_per_video_estimate(mixed, kinds):
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

"""The provenance chain: re-transcribing a campaign with another model makes the annotations made
from the old transcripts stale; the next enrich redoes exactly those (over HTTP, the sandbox LLM),
and the export shows only current annotations, naming the transcript each was made from."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from gettok import db
from gettok.cli import app
from gettok.models.schema import Annotation, AnnotationKind, Frame, Transcript
from gettok.sandbox.media import make_clip
from gettok.settings import get_settings
from gettok.tasks.annotate.cost import estimate_enrich
from gettok.tasks.export.table import campaign_table
from tests.enrich_rows import TRANSCRIPTS, add_videos, campaign_file, point_at_sandbox

TRANSCRIPT_KINDS = ("stance", "sentiment", "summary")


@pytest.fixture
def annotated(db_url, sandbox_env, monkeypatch, tmp_path, tmp_path_factory):
    """Two videos with speech, transcribed (tiny.en rows), framed and fully annotated."""
    from gettok.flows.enrich import enrich_campaign

    media = tmp_path / "media"
    point_at_sandbox(monkeypatch, db_url, media)
    monkeypatch.setenv("GETTOK_MODEL_CACHE", str(tmp_path_factory.getbasetemp() / "models"))
    monkeypatch.setenv("GETTOK_TRANSCRIPTION_LIMIT", "gpu-chain-test")
    fixture = add_videos(db_url, media, count=2)
    for n, video_id in enumerate(fixture.video_ids):
        make_clip(media / f"videos/{video_id}.mp4", text=TRANSCRIPTS[n], language="es", seed=n,
                  width=64, height=64, fps=5)  # fmt: skip
    first = enrich_campaign(fixture.campaign, get_settings())
    assert {k.kind: k.done for k in first.kinds} == dict.fromkeys(
        ("description", *TRANSCRIPT_KINDS, "summary_check"), 2
    )
    return fixture


def stale_by_kind(url: str, fixture) -> dict[str, int]:
    estimate = estimate_enrich(url, get_settings(), fixture.campaign)
    return {k.kind: k.stale for k in estimate.kinds}


def test_retranscribe_then_enrich_redoes_exactly_the_stale_annotations(
    annotated, db_url, sandbox_env, tmp_path, prefect_harness
):
    from gettok.flows.enrich import enrich_campaign

    assert set(stale_by_kind(db_url, annotated).values()) == {0}
    path = campaign_file(tmp_path, name=annotated.campaign.name)
    out = CliRunner().invoke(app, ["retranscribe", "--campaign", path, "--model", "base"])
    assert out.exit_code == 0, out.output
    assert "2 transcribed" in out.output
    # stance, sentiment, summary and its check, of two videos
    assert "8 annotations became stale" in out.output
    assert stale_by_kind(db_url, annotated) == {
        "description": 0, "stance": 2, "sentiment": 2, "summary": 2, "summary_check": 2,
    }  # fmt: skip
    dry = CliRunner().invoke(app, ["enrich", "--campaign", path, "--dry-run"])
    assert dry.exit_code == 0 and "(2 stale)" in dry.output, dry.output

    with db.session_scope(db_url) as session:
        current = dict(
            session.execute(
                select(Transcript.video_id, Transcript.id).where(
                    Transcript.is_current.is_(True), Transcript.model == "base"
                )
            ).all()
        )
        assert session.scalar(select(func.count()).select_from(Transcript)) == 4  # history kept
    assert sorted(current) == sorted(annotated.video_ids)

    # Before the redo the export hides the stale labels rather than pair them with new text.
    before = {r["video_id"]: r for r in campaign_table(db_url, annotated.campaign.name).to_dicts()}
    assert all(before[v].get("sentiment") is None for v in annotated.video_ids)
    assert all(before[v].get("description") for v in annotated.video_ids)  # frames unchanged

    requests = sandbox_env.state.counters["llm_requests"]
    again = enrich_campaign(annotated.campaign, get_settings())
    assert {k.kind: k.done for k in again.kinds} == {
        "description": 0, "stance": 2, "sentiment": 2, "summary": 2, "summary_check": 2,
    }  # fmt: skip
    assert sandbox_env.state.counters["llm_requests"] == requests + 8
    assert set(stale_by_kind(db_url, annotated).values()) == {0}

    records = {r["video_id"]: r for r in campaign_table(db_url, annotated.campaign.name).to_dicts()}
    for video_id in annotated.video_ids:
        for kind in TRANSCRIPT_KINDS:
            assert records[video_id][f"{kind}_transcript_id"] == current[video_id], kind
            assert records[video_id][f"{kind}_transcript"] == "faster-whisper base"
        assert records[video_id]["whisper_model"] == "base"
    with db.session_scope(db_url) as session:
        kept = session.scalar(
            select(func.count()).where(Annotation.kind == AnnotationKind.sentiment)
        )
    assert kept == 4  # the old labels stay (their human codes, if any, stay valid)
    assert all(k.done == 0 for k in enrich_campaign(annotated.campaign, get_settings()).kinds)


def test_new_frames_make_the_frame_annotations_stale(annotated, db_url, sandbox_env):
    from gettok.flows.enrich import enrich_campaign

    video_id = annotated.video_ids[0]
    with db.session_scope(db_url) as session:  # frames extracted anew: new rows, new ids
        old = session.scalars(select(Frame).where(Frame.video_id == video_id)).all()
        copies = [
            Frame(video_id=video_id, frame_index=f.frame_index, timestamp_s=f.timestamp_s,
                  path=f.path, width=f.width, height=f.height)
            for f in old
        ]  # fmt: skip
        session.execute(delete(Frame).where(Frame.video_id == video_id))
        session.flush()
        session.add_all(copies)
    # Stance read the middle frame too; sentiment, summary and its check read only the transcript.
    assert stale_by_kind(db_url, annotated) == {
        "description": 1, "stance": 1, "sentiment": 0, "summary": 0, "summary_check": 0,
    }  # fmt: skip
    again = enrich_campaign(annotated.campaign, get_settings())
    assert {k.kind: k.done for k in again.kinds} == {
        "description": 1, "stance": 1, "sentiment": 0, "summary": 0, "summary_check": 0,
    }  # fmt: skip
    records = {r["video_id"]: r for r in campaign_table(db_url, annotated.campaign.name).to_dicts()}
    assert records[video_id]["description"] and records[video_id]["stance"]

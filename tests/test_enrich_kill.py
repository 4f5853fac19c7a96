"""An enrich run killed with SIGKILL mid-batch, then rerun: what was stored stays, nothing is asked
twice, and the rest is done at once (the dead worker's claims do not block it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gettok import db
from gettok.models.schema import Annotation, AnnotationKind, WorkClaim
from gettok.settings import get_settings
from tests.enrich_rows import add_videos, point_at_sandbox

WORKER = """
from gettok.settings import get_settings
from gettok.flows.enrich import enrich_campaign
from tests.enrich_rows import make_campaign
enrich_campaign(make_campaign(), get_settings(), kinds=["summary"], frames=False)
"""


def stored(url: str) -> int:
    with db.session_scope(url) as session:
        return session.scalar(select(func.count()).where(Annotation.kind == AnnotationKind.summary))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_killed_enrich_resumes_without_asking_twice(db_url, sandbox_env, monkeypatch, tmp_path):
    from gettok.flows.enrich import enrich_campaign

    point_at_sandbox(
        monkeypatch,
        db_url,
        tmp_path / "media",
        GETTOK_LLM_CONCURRENCY="1",
        GETTOK_LLM_TIMEOUT_S="30",
    )
    rows = add_videos(db_url, tmp_path / "media", count=6)  # 5 with speech, 1 music-only
    # Every answer stalls 0.4 s (a "timeout" shorter than the client waits): a slow server.
    sandbox_env.state.update_config({"llm": {"timeout": 1.0, "timeout_s": 0.4}})

    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER], env=dict(os.environ), cwd=Path(__file__).parents[1]
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None and stored(db_url) < 2:
            time.sleep(0.05)
        assert worker.poll() is None, "the worker finished before it could be killed"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()

    before = stored(db_url)
    asked = sandbox_env.state.counters["llm_requests"]
    assert 2 <= before < 5 and asked in (before, before + 1)  # at most one answer lost in flight
    with db.session_scope(db_url) as session:
        assert session.scalars(select(WorkClaim)).all()  # the dead worker's claims remain

    sandbox_env.state.update_config({"llm": {"timeout": 0.0}})
    result = enrich_campaign(rows.campaign, get_settings(), kinds=["summary"], frames=False)
    assert result.kinds[0].done == 5 - before and result.kinds[0].skipped_taken == 0
    assert stored(db_url) == 5
    assert sandbox_env.state.counters["llm_requests"] == asked + 5 - before
    with db.session_scope(db_url) as session:
        assert session.scalars(select(WorkClaim)).all() == []

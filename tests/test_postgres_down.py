"""Postgres lost mid-run: the run's own database refuses connections (ALLOW_CONNECTIONS false and
its sessions terminated; the server itself stays up for everyone else) while videos download.
The run must end, failed, naming the database, without hanging; once the database is back a rerun
finishes the campaign with every video once and no half-written media."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter

import pytest
from sqlalchemy import select, text

from gettok import db
from gettok.models.campaign import load_campaign
from gettok.models.schema import Annotation, Download, DownloadStatus, Transcript
from gettok.sandbox.research_api import _compile
from tests.chaos_trials import media_problems, progress, stored
from tests.chaos_world import (
    ROOT,
    World,
    ledgered_sandbox,
    pipeline_env,
    prefect_api_url,
    run_gettok,
)
from tests.conftest import _admin_engine

WORLD = World()
FULL = os.environ.get("GETTOK_FULL_TESTS") == "1"


def block(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with _admin_engine().connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
    db.get_engine.cache_clear()  # this process's pooled connections are gone too


def unblock(url: str) -> None:
    with _admin_engine().connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" ALLOW_CONNECTIONS true'))


# A few minutes (two full runs); the run ends about 20 s after the database goes away, since it
# goes through tests/no_waits.py: the database retries keep their tries but not their delays
# (10 s, 60 s, then the batch again after 30 s in production).
@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="set GETTOK_FULL_TESTS=1 (a full run, lost and rerun)")
def test_a_run_that_loses_postgres_fails_and_a_rerun_completes(prefect_harness, pg_url, tmp_path):
    with ledgered_sandbox(WORLD.sandbox_config()) as served:
        env = pipeline_env(served, pg_url, tmp_path, prefect_api_url())
        db.upgrade(pg_url)
        log = open(tmp_path / "lost.log", "w")
        proc = subprocess.Popen(
            WORLD.args(), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 180
            while progress(pg_url)["download"] < 3 and time.monotonic() < deadline:
                assert proc.poll() is None, (tmp_path / "lost.log").read_text()[-3000:]
                time.sleep(0.05)
            block(pg_url)
            lost_at = time.monotonic()
            try:
                proc.wait(timeout=240)  # the batch is retried (at once here): it fails too
            finally:
                ended_after = time.monotonic() - lost_at
                unblock(pg_url)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        lost = (tmp_path / "lost.log").read_text()
        assert proc.returncode not in (0, None), lost[-3000:]
        last = lost.strip().splitlines()[-1]
        assert last.startswith("error: lost the database during the run: "), lost[-3000:]
        assert "not currently accepting connections" in last  # the driver's own reason
        print(
            f"the run ended {ended_after:.0f} s after the database went away, rc {proc.returncode}"
        )

        rerun = run_gettok(WORLD.args(), env, tmp_path / "rerun.log")
        assert rerun.returncode == 0, rerun.log[-3000:]
        corpus = served.state.corpus

    matches = _compile(load_campaign(WORLD.campaign).query.to_api())
    expected = {
        v.id: v
        for day in (WORLD.start, WORLD.end)
        for v in corpus.videos_on(day)
        if v.api_visible and matches(v)
    }
    final = stored(pg_url)
    assert final.videos == set(expected) and final.duplicates == 0 and final.claims == 0
    states = {"public": "ok", "slideshow": "slideshow", "private": "private", "removed": "removed"}
    assert {i: row[0] for i, row in final.downloads.items()} == {
        i: states[v.web_state] for i, v in expected.items()
    }
    assert media_problems(tmp_path / "media", final) == []
    with db.session_scope(pg_url) as session:
        playable = set(
            session.scalars(
                select(Download.video_id).where(
                    Download.status.in_([DownloadStatus.ok, DownloadStatus.slideshow])
                )
            )
        )
        whisper = Counter(
            session.scalars(
                select(Transcript.video_id).where(Transcript.engine == "faster-whisper")
            )
        )
        described = set(
            session.scalars(select(Annotation.video_id).where(Annotation.kind == "description"))
        )
    assert set(whisper) == playable and max(whisper.values()) == 1
    assert described == playable

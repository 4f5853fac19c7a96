"""The production topology without Docker: a real `prefect server` on the machine's Postgres,
the deployments of deployments/prefect.yaml, a `cpu` and a `gpu` process worker, and a backfill
triggered from the CLI. Every expected video must end with transcripts and annotations, once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pytest
from gettok.models.campaign import load_campaign
from gettok.models.schema import Annotation, CampaignVideo, Download, DownloadStatus, Transcript
from sqlalchemy import func, select

from gettok import db
from gettok.local_mode import shipped_whisper_model
from tests.conftest import create_postgres_database, drop_postgres_database

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
DAY = date(2022, 12, 8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prefect_server(tmp_path):
    """A Prefect server backed by its own fresh Postgres database."""
    url = create_postgres_database()
    port = free_port()
    env = os.environ | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": url.replace(
            "postgresql://", "postgresql+asyncpg://"
        ),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Schedules are registered and checked, but no scheduled run may start during the test.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    }
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("prefect server did not start in 180 s")
        yield api
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        drop_postgres_database(url)


def run(args, env, timeout=300) -> str:
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_backfill_deployment_on_two_workers(prefect_server, sandbox, pg_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GETTOK_", "OPENAI_"))}
    env |= sandbox.env() | {
        "PREFECT_API_URL": prefect_server,
        "PREFECT_HOME": str(tmp_path / "client-home"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "GETTOK_PROJECT_DIR": str(ROOT),
        "GETTOK_DATABASE_URL": pg_url,
        "GETTOK_DATA_DIR": str(tmp_path / "data"),
        "GETTOK_WHISPER_MODEL": shipped_whisper_model(),
        "GETTOK_LLM_MODEL": "sandbox-vision",
        "GETTOK_DOWNLOAD_TRANSIENT_BACKOFF_S": "1",
        "PYTHONUNBUFFERED": "1",
    }
    run([sys.executable, "-m", "gettok.cli", "setup"], env)
    run([sys.executable, "-m", "gettok.cli", "setup"], env)  # idempotent
    run(
        [
            BIN / "prefect",
            "--no-prompt",
            "deploy",
            "--all",
            "--prefect-file",
            "deployments/prefect.yaml",
        ],
        env,
    )

    with httpx.Client(base_url=prefect_server, timeout=30) as api:
        daily = api.get("/deployments/name/pipeline/peru-2022-daily").json()
        assert [s["schedule"]["cron"] for s in daily["schedules"]] == ["0 6 * * *"]
        assert daily["schedules"][0]["schedule"]["timezone"] == "UTC"
        assert daily["parameters"]["campaign_file"] == "campaigns/peru_2022.toml"
        assert daily["parameters"]["transcribe_deployment"] == "transcribe/transcribe-gpu"
        assert daily["work_pool_name"] == "cpu"
        assert (
            api.get("/deployments/name/transcribe/transcribe-gpu").json()["work_pool_name"] == "gpu"
        )
        limits = {c["name"]: c["limit"] for c in api.post("/v2/concurrency_limits/filter").json()}
        assert {"gpu", "download-rate", "llm-rate"} <= limits.keys()

    workers = []
    try:
        for pool in ("cpu", "gpu"):
            log = open(tmp_path / f"worker-{pool}.log", "w")
            workers.append(
                (
                    subprocess.Popen(
                        [BIN / "prefect", "worker", "start", "--pool", pool, "--type", "process"],
                        env=env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    ),
                    log,
                )
            )
        out = run(
            [
                BIN / "prefect",
                "deployment",
                "run",
                "pipeline/backfill",
                "-p",
                "campaign_file=campaigns/peru_2022.toml",
                "-p",
                f"start_date={DAY}",
                "-p",
                f"end_date={DAY}",
            ],
            env,
        )
        run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
        state = wait_for_final_state(prefect_server, run_id, tmp_path)
        assert state == "COMPLETED", _logs(tmp_path)
        with httpx.Client(base_url=prefect_server, timeout=30) as api:
            runs = api.post(
                "/flow_runs/filter", json={"flow_runs": {"parent_task_run_id": None}}
            ).json()
        by_deployment = {r["name"]: (r["work_pool_name"], r["state_type"]) for r in runs}
        assert ("gpu", "COMPLETED") in by_deployment.values()  # transcription ran on the gpu pool
    finally:
        for worker, log in workers:
            worker.terminate()
            worker.wait(30)
            log.close()

    peru = load_campaign(ROOT / "campaigns" / "peru_2022.toml")
    from gettok.sandbox.research_api import _compile

    matches = _compile(peru.query.to_api())
    expected = {v.id for v in sandbox.state.corpus.videos_on(DAY) if v.api_visible and matches(v)}
    with db.session_scope(pg_url) as session:
        members = set(session.scalars(select(CampaignVideo.video_id)))
        statuses = dict(session.execute(select(Download.video_id, Download.status)).all())
        transcripts = session.execute(
            select(Transcript.video_id, func.count())
            .where(Transcript.engine == "faster-whisper")
            .group_by(Transcript.video_id)
        ).all()
        annotations = session.execute(
            select(Annotation.video_id, Annotation.kind, func.count()).group_by(
                Annotation.video_id, Annotation.kind
            )
        ).all()
    assert members == expected and len(expected) > 5
    assert set(statuses) == expected
    playable = {
        i for i, s in statuses.items() if s in (DownloadStatus.ok, DownloadStatus.slideshow)
    }
    assert {i for i, _ in transcripts} == playable and all(n == 1 for _, n in transcripts)
    described = {i for i, kind, _ in annotations if kind == "description"}
    assert described == playable
    assert all(n == 1 for _, _, n in annotations)


def wait_for_final_state(api_url: str, run_id: str, tmp_path, timeout_s: float = 600) -> str:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=api_url, timeout=30) as api:
        while time.monotonic() < deadline:
            run = api.get(f"/flow_runs/{run_id}").json()
            if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return run["state_type"]
            time.sleep(2)
    pytest.fail(f"flow run {run_id} did not finish in {timeout_s:.0f} s\n{_logs(tmp_path)}")


def _logs(tmp_path) -> str:
    return "\n".join(
        json.dumps(p.name) + "\n" + p.read_text()[-4000:] for p in sorted(tmp_path.glob("*.log"))
    )

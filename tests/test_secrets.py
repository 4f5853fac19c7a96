"""Secrets never leave the settings: with real-looking credentials set (TikTok client key and
secret, OpenAI key, database password, export salt), none of them, nor the access tokens the API
issued, appears in the run's output, Prefect's logs, flow runs or artifacts, any database column,
any file the run wrote (media, Prefect results), the exports or the report."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import MetaData, select
from typer.testing import CliRunner

from gettok import db
from gettok.cli import app
from tests.chaos_world import (
    World,
    ledgered_sandbox,
    pipeline_env,
    prefect_api_url,
    run_gettok,
)

WORLD = World(end=World().start)  # one day is enough
SECRETS = {
    "client_key": "ck-live-7Hq2ZpX9",
    "client_secret": "cs-live-Wm4Rt8Yv1LkQ",
    "openai_key": "sk-proj-Jd83KsLq0PzXc7",
    "db_password": "pw-Nf5Gh2Tr",
    "export_salt": "salt-Qw9Er4Ty",
}


def with_password(url: str) -> str:
    # Trust auth ignores it, so the run works while the password sits in GETTOK_DATABASE_URL.
    return url.replace("postgres@", f"postgres:{SECRETS['db_password']}@", 1)


def prefect_records() -> str:
    """Every log, flow run, task run and artifact on the Prefect server, as one text."""
    from prefect.client.orchestration import get_client

    texts = []
    with get_client(sync_client=True) as client:
        readers = (client.read_logs, client.read_flow_runs, client.read_task_runs)
        for read in (*readers, client.read_artifacts):
            offset = 0
            while True:
                page = read(limit=200, offset=offset)
                texts += [item.model_dump_json() for item in page]
                if len(page) < 200:
                    break
                offset += 200
    return "\n".join(texts)


def database_text(url: str) -> str:
    """Every value of every table, as text."""
    metadata = MetaData()
    metadata.reflect(db.get_engine(url))
    rows = []
    with db.get_engine(url).connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                rows.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    return "\n".join(rows)


def files_text(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_no_secret_reaches_logs_database_files_or_exports(
    prefect_harness, pg_url, tmp_path, monkeypatch
):
    url = with_password(pg_url)
    config = WORLD.sandbox_config(
        client_key=SECRETS["client_key"], client_secret=SECRETS["client_secret"]
    )
    with ledgered_sandbox(config) as served:
        env = pipeline_env(
            served,
            url,
            tmp_path,
            prefect_api_url(),
            OPENAI_API_KEY=SECRETS["openai_key"],
            GETTOK_EXPORT_SALT=SECRETS["export_salt"],
        )
        # A wrong secret first: the error that says so must not quote it.
        wrong = env | {"GETTOK_TIKTOK_CLIENT_SECRET": SECRETS["client_secret"][::-1]}
        refused = run_gettok(WORLD.args(), wrong, tmp_path / "refused.log")
        run = run_gettok(WORLD.args(), env, tmp_path / "run.log")
        tokens = list(served.state.tokens)
        assert run.returncode == 0, run.log[-3000:]

        for key, value in env.items():
            if key.startswith(("GETTOK_", "OPENAI_", "PREFECT_")):
                monkeypatch.setenv(key, value)
        outputs = [refused.log, run.log]
        runner = CliRunner()
        for args in (
            ["export", "--format", "jsonl"],
            ["export", "--format", "csv"],
            ["export", "--format", "parquet"],
            ["export", "--format", "csv", "--public"],
            ["report"],
        ):
            result = runner.invoke(app, [*args, "--campaign", str(WORLD.campaign)])
            assert result.exit_code == 0, result.output
            outputs.append(result.output)

    assert refused.returncode == 1, refused.log[-3000:]
    assert tokens, "the API issued no access token"
    places = {
        "output": "\n".join(outputs).encode(),
        "prefect": prefect_records().encode(),
        "database": database_text(pg_url).encode(),
    }
    places |= files_text(tmp_path)  # media, frames, exports, report, Prefect's local results
    assert any("exports" in p for p in places) and any(p.endswith(".md") for p in places)
    leaks = [
        f"{name} in {place}"
        for name, secret in {**SECRETS, **{f"token {t[:8]}": t for t in tokens}}.items()
        for place, content in places.items()
        if secret.encode() in content
    ]
    assert leaks == [], leaks

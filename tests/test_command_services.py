"""Every stage command resolves its services as `gettok run` does: with nothing configured it
uses the local sandbox and says so; pointed at a real service without credentials it refuses at
once, naming the setting; a Whisper model that cannot load is one line; `gettok sandbox` prints
every variable that points gettok at it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from gettok import db
from gettok.cli import app
from gettok.models.schema import Video

PERU = Path(__file__).parents[1] / "campaigns" / "peru_2022.toml"
CAMPAIGN = """name = "services"
start_date = 2022-12-01
end_date = 2022-12-31
[query]
region_codes = ["PE"]
keywords = ["Castillo"]
"""


@pytest.fixture
def campaign(settings_env):
    path = settings_env / "campaign.toml"
    path.write_text(CAMPAIGN + '[watch]\ndescription = "a red flag"\n')
    return path


def invoke(*args: str) -> tuple[int, str]:
    began = time.monotonic()
    result = CliRunner().invoke(app, list(args))
    assert time.monotonic() - began < 30, "a refusal must come at once, not after retries"
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "variable, value, command, named",
    [
        ("GETTOK_TIKTOK_API_URL", "https://open.tiktokapis.com", ["collect"], "CLIENT_KEY"),
        ("OPENAI_BASE_URL", "https://api.openai.com/v1", ["enrich"], "OPENAI_API_KEY"),
        ("OPENAI_BASE_URL", "https://api.openai.com/v1", ["watch"], "OPENAI_API_KEY"),
    ],
)
def test_a_real_service_without_credentials_is_refused_at_once(
    monkeypatch, campaign, variable, value, command, named
):
    monkeypatch.setenv(variable, value)
    code, output = invoke(*command, "--campaign", str(campaign))
    assert code == 2, output
    assert output.startswith("error: ") and named in output and value in output, output
    assert "Traceback" not in output and "sandbox at" not in output


@pytest.mark.parametrize("model", ["no-such-model", "EMPTY_DIR"])
def test_a_whisper_model_that_cannot_load_is_one_line(monkeypatch, campaign, settings_env, model):
    if model == "EMPTY_DIR":
        model = str(settings_env / "my-whisper")
        (settings_env / "my-whisper").mkdir()
    monkeypatch.setenv("GETTOK_WHISPER_MODEL", model)
    code, output = invoke("transcribe", "--campaign", str(campaign))
    assert code == 2, output
    assert output.startswith("error: ") and len(output.strip().splitlines()) == 1, output
    assert repr(model) in output and "GETTOK_WHISPER_MODEL" in output
    assert "Traceback" not in output


def test_collect_with_nothing_configured_uses_the_sandbox_and_says_so(
    prefect_harness, settings_env, campaign
):
    code, output = invoke(
        "collect", "--campaign", str(campaign), "--start", "2022-12-07", "--end", "2022-12-07"
    )
    assert code == 0, output
    assert "no TikTok credentials set: using the local sandbox at http://127.0.0.1:" in output
    url = f"sqlite:///{settings_env / 'data' / 'gettok.db'}"
    with db.session_scope(url) as session:
        marks = [
            (v.extra_fields or {}).get("gettok_sandbox") for v in session.scalars(select(Video))
        ]
    db.get_engine.cache_clear()
    assert marks and all(marks)  # stored as synthetic: exports will say so


def test_download_uses_the_sandbox_only_for_sandbox_data(settings_env, campaign):
    from gettok.cli.preflight import web_needs_sandbox
    from gettok.settings import get_settings
    from tests.dataset_for_outputs import build_dataset

    url = f"sqlite:///{settings_env / 'data' / 'gettok.db'}"
    db.upgrade(url)
    data = build_dataset(url, days=1, per_day=4, start=date(2022, 12, 7))
    settings = get_settings()
    assert not web_needs_sandbox(settings, data.campaign)  # real videos: never the sandbox
    with db.session_scope(url) as session:
        for video in session.scalars(select(Video)):
            video.extra_fields = {"gettok_sandbox": True}
    assert web_needs_sandbox(settings, data.campaign)
    db.get_engine.cache_clear()


def test_gettok_sandbox_prints_every_variable(settings_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gettok.cli", "sandbox", "--port", str(port)],
        cwd=settings_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while len(lines) < 40 and "GETTOK_WHISPER_MODEL" not in "".join(lines[-1:]):
            lines.append(server.stdout.readline())  # the model is printed last
    finally:
        server.terminate()
        server.wait(30)
    exported = {
        line.split()[1].split("=")[0] for line in lines if line.strip().startswith("export")
    }
    assert {
        "GETTOK_TIKTOK_API_URL",
        "GETTOK_TIKTOK_WEB_URL",
        "GETTOK_TIKTOK_CLIENT_KEY",
        "GETTOK_TIKTOK_CLIENT_SECRET",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "GETTOK_LLM_MODEL",
        "GETTOK_WHISPER_MODEL",
    } <= exported


def test_run_refuses_a_real_llm_url_without_a_key(monkeypatch, settings_env):
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    code, output = invoke(
        "run", "--campaign", str(PERU), "--start", "2022-12-07", "--end", "2022-12-07"
    )
    assert code == 2 and "OPENAI_API_KEY" in output and "Traceback" not in output, output

"""Settings: quick-start defaults, clear errors, secrets never printed, .env.example complete."""

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from gettok.cli import app
from gettok.settings import Settings, get_settings

ROOT = Path(__file__).parents[1]


def test_quick_start_defaults_are_embedded(settings_env):
    settings = get_settings()
    assert settings.resolved_database_url == f"sqlite:///{settings_env / 'data' / 'gettok.db'}"
    assert settings.resolved_media_dir == settings_env / "data" / "media"
    assert settings.tiktok_api_url == "https://open.tiktokapis.com"
    assert settings.tiktok_web_url == "https://www.tiktok.com"
    assert not settings.has_tiktok_credentials
    assert "favorites_count" in settings.tiktok_video_fields  # the API's spelling
    assert "favourites_count" not in settings.tiktok_video_fields


def test_environment_and_dotenv_are_read(settings_env, monkeypatch):
    (settings_env / ".env").write_text(
        "GETTOK_TIKTOK_CLIENT_KEY=from-dotenv\nGETTOK_WINDOW_DAYS=7\n"
    )
    monkeypatch.setenv("GETTOK_TIKTOK_CLIENT_SECRET", "s3cr3t-value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123456")
    settings = get_settings()
    assert settings.tiktok_client_key.get_secret_value() == "from-dotenv"
    assert settings.window_days == 7
    assert settings.has_tiktok_credentials
    assert settings.openai_api_key.get_secret_value() == "sk-test-123456"
    shown = repr(settings) + str(settings.model_dump())
    assert "s3cr3t-value" not in shown and "sk-test-123456" not in shown


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("GETTOK_WINDOW_DAYS", "31", "window_days"),
        ("GETTOK_TIKTOK_API_URL", "ftp://x", "tiktok_api_url"),
        ("GETTOK_DAILY_REQUEST_BUDGET", "99999999999999999999", "daily_request_budget"),
        ("GETTOK_DOWNLOAD_CONCURRENCY", "zero", "download_concurrency"),
        ("GETTOK_TIKTOK_VIDEO_FIELDS", '["username"]', "tiktok_video_fields"),
        ("GETTOK_TIKTOK_VIDEO_FIELDS", '["id", "likes"]', "tiktok_video_fields"),
    ],
)
def test_invalid_settings_name_the_field(settings_env, monkeypatch, variable, value, field):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=field):
        get_settings()
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert f"GETTOK_{field.upper()}" in result.output


def test_env_example_lists_every_setting():
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*(GETTOK_[A-Z0-9_]+)=", text, flags=re.M))
    expected = {f"GETTOK_{name.upper()}" for name in Settings.model_fields}
    assert expected - listed == set()
    assert listed - expected == set()


def test_cli_campaign_show_prints_the_query(settings_env):
    result = CliRunner().invoke(
        app, ["campaign", "show", str(ROOT / "campaigns" / "peru_2022.toml")]
    )
    assert result.exit_code == 0, result.output
    assert '"field_name": "region_code"' in result.output
    assert '"start_date": "20221120"' in result.output
    assert "Pedro Castillo as President of Peru" in result.output


def test_cli_campaign_show_rejects_a_bad_campaign(settings_env, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\nstart_date = 2023-01-05\nend_date = 2023-01-01\n'
        '[query]\nkeywords = ["Castillo"]\n'
    )
    result = CliRunner().invoke(app, ["campaign", "show", str(bad)])
    assert result.exit_code == 2
    assert "end_date 2023-01-01 is before start_date 2023-01-05" in result.output


def test_cli_db_upgrade_creates_the_embedded_database(settings_env):
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (settings_env / "data" / "gettok.db").exists()
    assert re.search(r"at revision \w+:", result.output)  # the head, whichever it is


def test_env_example_is_what_the_generator_writes():
    import runpy

    generator = runpy.run_path(str(ROOT / "scripts" / "write_env_example.py"))
    assert (ROOT / ".env.example").read_text() == generator["main"](), (
        "run `python scripts/write_env_example.py` after changing a setting"
    )

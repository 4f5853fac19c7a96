"""Bad input at the command line: every command refuses a bad campaign, bad dates or an
unreachable database with one clear line and exit status 2, before it touches any data."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gettok.cli import app

ROOT = Path(__file__).parents[1]
PERU = ROOT / "campaigns" / "peru_2022.toml"
GOOD = """name = "bad_input"
start_date = 2022-12-01
end_date = 2022-12-31
[query]
region_codes = ["PE"]
keywords = ["Castillo"]
"""
COMMANDS = [
    ["run", "--start", "2022-12-07", "--end", "2022-12-07"],
    ["collect", "--start", "2022-12-07", "--end", "2022-12-07"],
    ["download"],
    ["transcribe"],
    ["enrich"],
    ["export"],
    ["report"],
]

# (what is wrong, campaign text, words the error must contain)
BAD_CAMPAIGNS = [
    ("impossible date", GOOD.replace("2022-12-01", '"2022-02-30"'), ["start_date", "2022-02-30"]),
    ("date as words", GOOD.replace("2022-12-31", '"next week"'), ["end_date", "YYYY-MM-DD"]),
    ("reversed range", GOOD.replace("2022-12-31", "2022-11-30"), ["end_date", "before"]),
    ("before TikTok's API", GOOD.replace("2022-12-01", "2015-06-01"), ["start_date", "2016"]),
    ("unknown region", GOOD.replace('"PE"', '"XX"'), ["region_codes", "'XX'"]),
    ("region as a name", GOOD.replace('"PE"', '"Peru"'), ["region_codes", "ISO 3166"]),
    ("empty query", GOOD.replace('keywords = ["Castillo"]', "keywords = []"), ["selects nothing"]),
    ("blank terms", GOOD.replace('["Castillo"]', '[" ", "#", "\\u0000"]'), ["selects nothing"]),
    ("no query", GOOD.split("[query]")[0], ["query", "required"]),
    ("unknown field", GOOD + 'hashtag = ["typo"]\n', ["query.hashtag", "unknown field"]),
    ("not TOML", GOOD.replace("[query]", "[query"), ["not valid TOML"]),
    ("NUL byte", GOOD.replace("Castillo", "Cas\x00tillo"), ["NUL"]),
    ("path as a name", GOOD.replace('"bad_input"', '"../../etc"'), ["name"]),
]


@pytest.fixture
def cli(settings_env):
    """Run `gettok ...` in-process with isolated settings; return (exit code, output)."""
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.output

    return invoke


def assert_refused(code: int, output: str, words: list[str], data: Path) -> None:
    assert code == 2, output
    assert output.startswith("error: "), output
    assert "Traceback" not in output and len(output.splitlines()) <= 3, output
    for word in words:
        assert word in output, f"{word!r} not in {output!r}"
    assert not (data / "gettok.db").exists(), "a refused command created the database"


@pytest.mark.parametrize("problem, text, words", BAD_CAMPAIGNS, ids=[b[0] for b in BAD_CAMPAIGNS])
def test_a_bad_campaign_is_refused_before_anything_runs(cli, settings_env, problem, text, words):
    path = settings_env / "campaign.toml"
    path.write_bytes(text.encode("utf-8"))
    code, output = cli(
        "run", "--campaign", str(path), "--start", "2022-12-07", "--end", "2022-12-07"
    )
    assert_refused(code, output, [str(path), *words], settings_env / "data")
    assert "sandbox" not in output  # refused before any service was started


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_refuses_a_missing_or_non_utf8_campaign(cli, settings_env, command):
    missing = settings_env / "nope.toml"
    latin1 = settings_env / "latin1.toml"
    latin1.write_bytes(GOOD.replace("Castillo", "Perú").encode("latin-1"))
    for path, words in ((missing, ["no such campaign file"]), (latin1, ["not UTF-8"])):
        code, output = cli(command[0], "--campaign", str(path), *command[1:])
        assert_refused(code, output, words, settings_env / "data")


@pytest.mark.parametrize(
    "start, end, words",
    [
        ("2022-13-01", "2022-12-07", ["--start", "'2022-13-01'", "YYYY-MM-DD"]),
        ("07/12/2022", "2022-12-07", ["--start", "YYYY-MM-DD"]),
        ("2022-12-07", "", ["--end"]),
        ("2022-12-08", "2022-12-07", ["--end 2022-12-07 is before --start 2022-12-08"]),
        ("2021-12-07", "2021-12-08", ["--start 2021-12-07 is outside campaign peru_2022"]),
        ("2023-02-28", "2023-03-02", ["--end 2023-03-02 is outside campaign peru_2022"]),
    ],
)
@pytest.mark.parametrize("command", ["run", "collect"])
def test_bad_dates_are_refused(cli, settings_env, monkeypatch, command, start, end, words):
    if command == "collect":  # it insists on credentials first; give it some
        monkeypatch.setenv("GETTOK_TIKTOK_CLIENT_KEY", "k")
        monkeypatch.setenv("GETTOK_TIKTOK_CLIENT_SECRET", "s")
    args = [command, "--campaign", str(PERU), "--start", start]
    code, output = cli(*args, *(["--end", end] if end else ["--end"]))
    if not end:  # Click's own usage error: still exit 2, no traceback
        assert code == 2 and "Traceback" not in output, output
        return
    assert_refused(code, output, words, settings_env / "data")


@pytest.mark.parametrize("command", COMMANDS + [["db", "upgrade"], ["prune"]], ids=lambda c: c[0])
def test_an_unreachable_database_is_one_clear_line(cli, settings_env, monkeypatch, command):
    # Port 1 refuses at once; the password must not be echoed back.
    monkeypatch.setenv("GETTOK_DATABASE_URL", "postgresql://gettok:s3cr3t-pw@127.0.0.1:1/gettok")
    monkeypatch.setenv("GETTOK_TIKTOK_CLIENT_KEY", "k")
    monkeypatch.setenv("GETTOK_TIKTOK_CLIENT_SECRET", "s")
    args = command if command[0] in ("db", "prune") else [command[0], "--campaign", str(PERU)]
    code, output = cli(*args, *command[1:] if command[0] not in ("db", "prune") else [])
    last = output.strip().splitlines()[-1]
    assert code == 2, output
    assert last.startswith("error: cannot use the database at postgresql://gettok:***@"), output
    assert "Connection refused" in last or "connection failed" in last, output
    assert "s3cr3t-pw" not in output and "Traceback" not in output


def test_an_unwritable_sqlite_folder_is_one_clear_line(cli, settings_env, monkeypatch):
    blocker = settings_env / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GETTOK_DATABASE_URL", f"sqlite:///{blocker}/sub/gettok.db")
    code, output = cli("download", "--campaign", str(PERU))
    assert code == 2 and output.startswith("error: cannot use the database at sqlite:///"), output
    assert "Traceback" not in output


def test_a_prefect_server_that_does_not_start_is_one_line(settings_env, sqlite_url):
    """Issue 20 #14: Prefect's error carries the server's whole output (60 lines); the command
    says one line with the way out, exit status 2."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "GETTOK_DATABASE_URL": sqlite_url,
        "PREFECT_HOME": str(settings_env / "prefect-home"),  # a temporary server of its own
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1",  # too short to start
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    done = subprocess.run(
        [sys.executable, "-m", "gettok.cli", "download", "--campaign", str(PERU)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert len(errors) == 1 and "temporary Prefect server did not start" in errors[0]
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in errors[0]
    assert "Traceback" not in done.stderr


def test_no_helper_prints_the_environment_with_its_secrets():
    """Issue 20 #14: `environment_summary()` printed the salt and the database password."""
    import gettok.settings

    assert not hasattr(gettok.settings, "environment_summary")

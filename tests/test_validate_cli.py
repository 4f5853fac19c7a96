"""`gettok validate sample` and `score` from the command line: the sheet, the printed figures,
the JSON last line, and a clear error (exit 2, nothing stored) for a bad sheet."""

import json

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from gettok import db
from gettok.db import session_scope
from gettok.models.schema import ValidationCode
from tests.dataset_for_outputs import build_dataset
from tests.test_bad_input_cli import assert_refused
from tests.test_validate import read_rows, write_rows

CAMPAIGN = """name = "peru"
start_date = "2022-12-01"
[query]
keywords = ["x"]
[stance]
target = "Pedro Castillo"
labels = ["support", "no support", "neutral"]
"""


def test_sample_then_score_from_the_command_line(settings_env, monkeypatch):
    from gettok.cli import app

    url = f"sqlite:///{settings_env / 'cli.db'}"
    monkeypatch.setenv("GETTOK_DATABASE_URL", url)
    db.upgrade(url)
    build_dataset(url)
    campaign = settings_env / "peru.toml"
    campaign.write_text(CAMPAIGN)
    sheet = settings_env / "sheet.csv"

    drawn = CliRunner().invoke(
        app,
        ["validate", "sample", "--campaign", str(campaign), "--kind", "sentiment", "--n", "6",
         "--stratify", "day", "--seed", "11", "--out", str(sheet), "--coders", "ana,ben"],
    )  # fmt: skip
    assert drawn.exit_code == 0, drawn.output
    assert "sample 1: 6 sentiment videos (seed 11, stratified by day)" in drawn.output
    rows = read_rows(sheet)
    assert len(rows) == 6 and "code_ana" in rows[0] and "code_ben" in rows[0]

    for i, row in enumerate(rows):  # ana and ben agree on every video: alpha among coders is 1
        row["code_ana"] = row["code_ben"] = ("negative", "positive")[i % 2]
    write_rows(sheet, rows)
    scored = CliRunner().invoke(
        app, ["validate", "score", "--campaign", str(campaign), "--codes", str(sheet)]
    )
    assert scored.exit_code == 0, scored.output
    last = json.loads(scored.output.strip().splitlines()[-1])
    assert set(last) == {"n", "kappa_model_vs_majority", "alpha_coders", "macro_f1", "sample"}
    assert (last["n"], last["sample"], last["alpha_coders"]) == (6, 1, 1.0)
    assert "Cohen's kappa, model vs ana" in scored.output
    assert "Krippendorff's alpha among coders" in scored.output

    rows[2]["code_ana"] = "furious"
    write_rows(sheet, rows)
    with session_scope(url) as s:
        before = s.scalar(select(func.count()).select_from(ValidationCode))
    bad = CliRunner().invoke(
        app, ["validate", "score", "--campaign", str(campaign), "--codes", str(sheet)]
    )
    assert bad.exit_code == 2
    assert "sheet.csv row 4, code_ana: 'furious' is not one of positive" in bad.output
    with session_scope(url) as s:
        assert s.scalar(select(func.count()).select_from(ValidationCode)) == before
    unknown = CliRunner().invoke(
        app, ["validate", "sample", "--campaign", str(campaign), "--kind", "mood", "--n", "2",
              "--out", str(sheet)],
    )  # fmt: skip
    assert unknown.exit_code == 2 and "unknown kind 'mood'" in unknown.output
    db.get_engine.cache_clear()


VALIDATE_COMMANDS = [
    ["sample", "--kind", "stance", "--n", "2", "--out", "sheet.csv"],
    ["score", "--sample", "1"],
    ["serve", "--sample", "1"],
]


@pytest.mark.parametrize("command", VALIDATE_COMMANDS, ids=lambda c: c[0])
def test_validate_commands_refuse_bad_input_in_one_clear_line(settings_env, monkeypatch, command):
    from gettok.cli import app

    def run(campaign):
        result = CliRunner().invoke(app, ["validate", *command, "--campaign", str(campaign)])
        return result.exit_code, result.output

    assert_refused(*run(settings_env / "nope.toml"), ["no such campaign file"],
                   settings_env / "data")  # fmt: skip
    campaign = settings_env / "peru.toml"
    campaign.write_text(CAMPAIGN)
    monkeypatch.setenv("GETTOK_DATABASE_URL", "postgresql://gettok:s3cr3t-pw@127.0.0.1:1/gettok")
    code, output = run(campaign)
    assert code == 2 and "error: cannot use the database at postgresql://gettok:***@" in output
    assert "s3cr3t-pw" not in output and "Traceback" not in output
    monkeypatch.setenv("GETTOK_DATABASE_URL", f"sqlite:///{settings_env / 'v.db'}")
    code, output = run(campaign)  # an empty database: no campaign, no sample
    assert code == 2 and "Traceback" not in output, output
    assert "campaign 'peru' is not in the database" in output
    db.get_engine.cache_clear()

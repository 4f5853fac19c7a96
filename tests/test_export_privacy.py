"""The public export's privacy: every written form of an @handle masked (fullwidth, spaced, in
hashtags), and an explicit policy on video ids (keep, hash or drop) stated in the dictionary."""

from __future__ import annotations

import hashlib
import hmac

import polars as pl
import pytest
from pydantic import SecretStr
from sqlalchemy import update
from typer.testing import CliRunner

from gettok.db import session_scope
from gettok.models.schema import Video
from gettok.tasks.export.dataset import export_dataset
from tests.dataset_for_outputs import build_dataset

SALT = "pepper-4f1c9a"
HANDLES = ("zorro_fan", "lima.girl", "ppk_2022")


def content(path) -> str:
    """Every value of the file as text (parquet is compressed: read it first)."""
    if path.suffix == ".parquet":
        return str(pl.read_parquet(path).to_dicts())
    return path.read_text()


@pytest.fixture
def data(db_url):
    data = build_dataset(db_url, days=2, per_day=6)
    with session_scope(db_url) as session:
        session.execute(
            update(Video)
            .where(Video.id == data.videos[0].id)
            .values(
                video_description="hola ＠zorro_fan y @ lima.girl\nmira",
                hashtag_names=["peru", "@ppk_2022"],
            )
        )
    return data


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_public_export_masks_fullwidth_spaced_and_hashtag_handles(db_url, data, tmp_path, fmt):
    result = export_dataset(db_url, data.campaign, tmp_path, fmt, public=True, salt=SecretStr(SALT))
    text = content(result.path)
    for handle in HANDLES:
        assert handle not in text, handle
    assert "peru" in text  # hashtags themselves stay
    full = export_dataset(db_url, data.campaign, tmp_path / "full", fmt)
    assert all(handle in content(full.path) for handle in HANDLES)  # only public masks


def test_public_caption_keeps_its_lines_when_masked(db_url, data, tmp_path):
    result = export_dataset(db_url, data.campaign, tmp_path, "parquet", public=True)
    df = pl.read_parquet(result.path)
    row = df.filter(pl.col("video_id") == data.videos[0].id).row(0, named=True)
    assert row["video_description"] == "hola @user y @user\nmira"
    assert row["hashtags"] == ["peru", "@user"]


def test_ids_policy_keep_hash_or_drop_and_the_dictionary_says_why(db_url, data, tmp_path):
    salt = SecretStr(SALT)
    kept = export_dataset(db_url, data.campaign, tmp_path / "k", "csv", public=True, salt=salt)
    hashed = export_dataset(
        db_url, data.campaign, tmp_path / "h", "csv", public=True, salt=salt, ids="hash"
    )
    dropped = export_dataset(
        db_url, data.campaign, tmp_path / "d", "csv", public=True, salt=salt, ids="drop"
    )
    # The published videos: all but those known gone (pruned, or private/removed at download).
    ids = sorted(pl.read_csv(kept.path)["video_id"].to_list())
    assert set(ids) <= {v.id for v in data.videos}
    assert len(ids) == len(data.videos) - kept.excluded_pruned
    expected = sorted(
        hmac.new(SALT.encode(), str(i).encode(), hashlib.sha256).hexdigest()[:16] for i in ids
    )
    hashed_df = pl.read_csv(hashed.path, infer_schema_length=0)
    assert "video_id" not in hashed_df.columns
    assert sorted(hashed_df["video_hash"].to_list()) == expected
    for result in (hashed, dropped):
        text = result.path.read_text()
        assert not any(str(i) in text for i in ids)
    assert "video_id" not in pl.read_csv(dropped.path).columns
    assert "video_hash" not in pl.read_csv(dropped.path).columns
    described = dict(pl.read_csv(kept.dictionary_path).select("column", "description").rows())
    assert "re-hydrate" in described["video_id"] and "author" in described["video_id"]
    described = dict(pl.read_csv(hashed.dictionary_path).select("column", "description").rows())
    assert "cannot be re-hydrated" in described["video_hash"]


def test_ids_hash_without_salt_or_outside_public_is_refused(db_url, data, tmp_path):
    with pytest.raises(ValueError, match="GETTOK_EXPORT_SALT"):
        export_dataset(db_url, data.campaign, tmp_path / "o", "csv", public=True, ids="hash")
    with pytest.raises(ValueError, match="public exports only"):
        export_dataset(db_url, data.campaign, tmp_path / "o", "csv", ids="drop")
    assert not (tmp_path / "o").exists()


def test_export_command_ids_flag(settings_env, monkeypatch):
    from gettok import db
    from gettok.cli import app

    url = f"sqlite:///{settings_env / 'cli.db'}"
    monkeypatch.setenv("GETTOK_DATABASE_URL", url)
    monkeypatch.setenv("GETTOK_EXPORT_SALT", SALT)
    db.upgrade(url)
    build_dataset(url, days=2, per_day=3)
    campaign = settings_env / "peru.toml"
    campaign.write_text('name = "peru"\nstart_date = "2022-12-01"\n[query]\nkeywords = ["x"]\n')
    args = [
        "export",
        "--campaign",
        str(campaign),
        "--format",
        "csv",
        "--out",
        str(settings_env / "exports"),
    ]
    kept = CliRunner().invoke(app, [*args, "--public"])
    assert kept.exit_code == 0, kept.output
    published = pl.read_csv(settings_env / "exports" / "peru.public.csv").height
    run = CliRunner().invoke(app, [*args, "--public", "--ids", "drop"])
    assert run.exit_code == 0, run.output
    df = pl.read_csv(settings_env / "exports" / "peru.public.csv")
    assert "video_id" not in df.columns and df.height == published > 0
    bad = CliRunner().invoke(app, [*args, "--ids", "maybe"])
    assert bad.exit_code != 0 and "--ids must be keep, hash or drop" in bad.output
    private = CliRunner().invoke(app, [*args, "--ids", "hash"])
    assert private.exit_code != 0 and "add --public" in private.output
    db.get_engine.cache_clear()

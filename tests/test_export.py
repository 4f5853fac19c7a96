"""The dataset export: columns and values, the data dictionary, public-mode anonymisation."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import polars as pl
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from typer.testing import CliRunner

from gettok.db import session_scope
from gettok.models.schema import Annotation, DownloadStatus, Video
from gettok.tasks.export.columns import COLUMNS
from gettok.tasks.export.dataset import export_dataset
from tests.dataset_for_outputs import build_dataset

PRIVATE_COLUMNS = {"username", "raw", "media_path", "download_error", "mentions"}
SALT = "pepper-4f1c9a"


def read(path, fmt: str) -> pl.DataFrame:
    if fmt == "parquet":
        return pl.read_parquet(path)
    if fmt == "csv":
        return pl.read_csv(path, infer_schema_length=0)  # all text: ids must survive exactly
    return pl.read_ndjson(path)


def test_full_export_has_every_video_with_its_values(db_url, tmp_path):
    data = build_dataset(db_url, days=4, per_day=8)
    result = export_dataset(db_url, data.campaign, tmp_path / "out", "parquet")

    df = pl.read_parquet(result.path)
    assert result.rows == df.height == len(data.videos)  # the other campaign's video is not here
    assert df.columns == [c.name for c in COLUMNS if c.name != "user_hash"]
    rows = {r["video_id"]: r for r in df.iter_rows(named=True)}
    assert set(rows) == {v.id for v in data.videos}
    for v in data.videos:
        row = rows[v.id]
        assert row["username"] == v.username
        assert row["create_date"] == v.day
        assert (row["view_count"], row["like_count"], row["comment_count"], row["share_count"]) == (
            v.views,
            v.likes,
            v.comments,
            v.shares,
        )
        assert row["hashtags"] == v.hashtags
        assert row["download_status"] == (v.download.value if v.download else None)
        assert row["media_path"] == v.media_path
        assert row["whisper_transcript"] == v.whisper
        assert row["whisper_model"] == ("large-v3" if v.whisper else None)
        assert row["whisper_language"] == v.whisper_language
        assert row["tiktok_transcript"] == v.tiktok
        assert row["stance"] == v.stance
        assert row["sentiment"] == v.sentiment
        if v.whisper is not None:
            assert row["stance_model"] == row["sentiment_model"] == "gpt-4o-mini"
            assert row["stance_status"] == ("ok" if v.stance else "refused")
            assert row["stance_prompt"].startswith("stance@")
        assert row["frames_extracted"] == (1 if v.media_path else 0)

    dictionary = pl.read_csv(result.dictionary_path)
    assert dictionary.columns == ["column", "type", "description"]
    assert dictionary["column"].to_list() == df.columns
    assert dictionary["description"].str.len_chars().min() > 5


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_public_export_names_no_one(sqlite_url, tmp_path, fmt):
    data = build_dataset(sqlite_url, days=3, per_day=8)
    pruned = data.videos[0]
    with session_scope(sqlite_url) as s:
        video = s.get(Video, pruned.id)
        video.pruned_at, video.pruned_reason = datetime.now(UTC), "private"

    result = export_dataset(
        sqlite_url, data.campaign, tmp_path, fmt, public=True, salt=SecretStr(SALT)
    )

    df = read(result.path, fmt)
    assert not PRIVATE_COLUMNS & set(df.columns)
    published = publishable(data.videos[1:])
    assert result.excluded_pruned == len(data.videos) - len(published) > 1
    ids = [int(i) for i in df["video_id"].to_list()]
    assert sorted(ids) == sorted(published)  # 64-bit ids exact in every format
    expected_hash = {
        v.id: hmac.new(SALT.encode(), v.username.casefold().encode(), hashlib.sha256).hexdigest()[
            :16
        ]
        for v in data.videos
    }
    assert dict(zip(ids, df["user_hash"].to_list(), strict=True)) == {
        i: expected_hash[i] for i in ids
    }
    text = result.path.read_bytes()
    for v in data.videos:
        assert v.username.encode() not in text, v.username  # not even as an @mention
    assert SALT.encode() not in text
    assert b"videos/" not in text  # no media paths
    dictionary = pl.read_csv(result.dictionary_path)
    assert sorted(dictionary["column"].to_list()) == sorted(df.columns)  # JSON readers reorder


def publishable(videos) -> list[int]:
    """Pruned, or found private or removed at download: none of them is published (issue 20 #1)."""
    gone = (DownloadStatus.private, DownloadStatus.removed)
    return [v.id for v in videos if v.download not in gone]


def test_public_export_without_salt_has_no_user_column(sqlite_url, tmp_path):
    data = build_dataset(sqlite_url, days=2, per_day=6)
    result = export_dataset(sqlite_url, data.campaign, tmp_path, "parquet", public=True)
    df = pl.read_parquet(result.path)
    assert "user_hash" not in df.columns and "username" not in df.columns
    assert df.height == len(publishable(data.videos)) < len(data.videos)


def test_export_command(settings_env, monkeypatch):
    from gettok import db
    from gettok.cli import app

    url = f"sqlite:///{settings_env / 'cli.db'}"
    monkeypatch.setenv("GETTOK_DATABASE_URL", url)
    monkeypatch.setenv("GETTOK_EXPORT_SALT", SALT)
    db.upgrade(url)
    data = build_dataset(url, days=2, per_day=6)
    campaign = settings_env / "peru.toml"
    campaign.write_text('name = "peru"\nstart_date = "2022-12-01"\n[query]\nkeywords = ["x"]\n')

    run = CliRunner().invoke(
        app,
        [
            "export",
            "--campaign",
            str(campaign),
            "--format",
            "csv",
            "--public",
            "--out",
            str(settings_env / "exports"),
        ],
    )

    assert run.exit_code == 0, run.output
    published = publishable(data.videos)
    assert f"{len(published)} videos" in run.output
    df = pl.read_csv(settings_env / "exports" / "peru.public.csv", infer_schema_length=0)
    assert df.height == len(published) and "user_hash" in df.columns
    assert (settings_env / "exports" / "peru.public.dictionary.csv").is_file()
    missing = CliRunner().invoke(app, ["export", "--campaign", str(campaign), "--format", "xls"])
    assert missing.exit_code == 2
    db.get_engine.cache_clear()


def mark_as_sandbox(url: str, video_ids: list[int], annotated_ids: list[int]) -> None:
    """What the sandbox leaves in the database: its mark in the payload, its LLM's flag."""
    with session_scope(url) as session:
        for video in session.scalars(select(Video).where(Video.id.in_(video_ids))):
            video.extra_fields = {**(video.extra_fields or {}), "gettok_sandbox": True}
        session.execute(
            update(Annotation).where(Annotation.video_id.in_(annotated_ids)).values(is_sandbox=True)
        )


def test_every_export_says_which_rows_are_synthetic(db_url, tmp_path):
    data = build_dataset(db_url, days=2, per_day=6)
    ids = sorted(v.id for v in data.videos)
    with session_scope(db_url) as session:
        annotated = sorted(set(session.scalars(select(Annotation.video_id))) - {ids[0]})
    mark_as_sandbox(db_url, [ids[0]], annotated[:1])
    synthetic = {ids[0], *annotated[:1]}

    for fmt, public in (("parquet", False), ("csv", True), ("jsonl", False)):
        result = export_dataset(db_url, data.campaign, tmp_path / fmt, fmt, public=public)
        df = read(result.path, fmt)
        flags = {int(r["video_id"]): r["is_sandbox"] for r in df.iter_rows(named=True)}
        assert {i for i, f in flags.items() if f in (True, "true")} == synthetic
        dictionary = result.dictionary_path.read_text()
        assert "is_sandbox" in dictionary and "sandbox" in dictionary.split("is_sandbox")[1][:200]

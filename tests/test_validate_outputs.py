"""Validation in the outputs: the export's `validated` flag and people's codes, and the report's
validation section per kind and prompt version."""

import polars as pl
from sqlalchemy import select, update

from gettok.db import session_scope
from gettok.models.schema import Annotation, ValidationItem
from gettok.tasks.export.dataset import export_dataset
from gettok.tasks.report.build import build_report
from gettok.tasks.validate import create_sample, store_sheets
from tests.dataset_for_outputs import build_dataset
from tests.test_validate import read_rows, write_rows

STANCE = ["support", "no support", "neutral"]


def coded_sample(url, tmp_path):
    """Four stance videos: alice and bob agree on two, tie on one, and leave one uncoded."""
    build_dataset(url)
    sample = create_sample(url, "peru", "stance", 4, tmp_path / "s.csv", seed=9,
                           stance_labels=STANCE, coders=["alice", "bob"])  # fmt: skip
    rows = read_rows(sample.sheet)
    codes = [("support", "support"), ("neutral", "neutral"), ("support", "no support"), ("", "")]
    for row, (alice, bob) in zip(rows, codes, strict=True):
        row.update(code_alice=alice, code_bob=bob)
    store_sheets(url, "peru", [write_rows(tmp_path / "coded.csv", rows)])
    return sample, {int(r["video_id"]): c for r, c in zip(rows, codes, strict=True)}


def test_export_carries_the_validated_flag_and_majority_codes(db_url, tmp_path):
    _, codes = coded_sample(db_url, tmp_path)
    result = export_dataset(db_url, "peru", tmp_path / "out", "parquet")
    df = pl.read_parquet(result.path)
    assert {"validated", "human_stance", "human_sentiment"} <= set(df.columns)
    got = {r["video_id"]: (r["validated"], r["human_stance"]) for r in df.iter_rows(named=True)}
    expected = {
        vid: (a == b != "", a if a == b and a else None) for vid, (a, b) in codes.items()
    }  # the tie and the uncoded video are not validated
    assert {vid: got[vid] for vid in codes} == expected
    others = [v for vid, v in got.items() if vid not in codes]
    assert all(v == (False, None) for v in others) and others
    dictionary = pl.read_csv(result.dictionary_path)
    assert "validated" in dictionary["column"].to_list()


def test_report_has_a_validation_section_per_prompt_version(db_url, tmp_path):
    sample, codes = coded_sample(db_url, tmp_path)
    with session_scope(db_url) as s:  # one sampled video was labelled by a newer prompt
        item = s.scalars(
            select(ValidationItem).where(ValidationItem.sample_id == sample.sample_id)
        ).first()
        s.execute(
            update(Annotation)
            .where(Annotation.id == item.annotation_id)
            .values(prompt_hash="newerhash0002")
        )
    report = build_report(db_url, "peru", tmp_path / "report").markdown_path.read_text()
    section = report.split("## Validation", 1)[1]
    assert "| `stance@stance-hash-` |" in section and "| `stance@newerhash000` |" in section
    assert f"| {sample.sample_id} | stance | `all` | 3 | 2 |" in section  # 3 coded, 2 majorities
    assert "### Sample" in section and "coders: alice, bob" in section


def test_report_without_validation_says_how_to_start(sqlite_url, tmp_path):
    build_dataset(sqlite_url)
    report = build_report(sqlite_url, "peru", tmp_path / "report").markdown_path.read_text()
    assert "No validation yet: `gettok validate sample`" in report

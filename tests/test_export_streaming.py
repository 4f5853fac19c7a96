"""The export written a batch at a time holds exactly what one table written at once held."""

from __future__ import annotations

import polars as pl
import pytest
from gettok.tasks.export import dataset
from pydantic import SecretStr

from bench.scale_data import build

VIDEOS = 1_300  # three batches of 500 (the last one short)


@pytest.fixture
def campaign(db_url):
    build(db_url, VIDEOS, name="big")
    return db_url


def _whole_table(url: str, public: bool, salt: SecretStr | None) -> tuple[pl.DataFrame, int]:
    """Today's path: every record in one batch, one DataFrame (and how many were left out)."""
    records = [r for b in dataset.record_batches(url, "big", with_raw=not public, size=10**9)
               for r in b]  # fmt: skip
    frame, _, excluded = dataset.export_frame(records, public=public, salt=salt)
    return frame, excluded


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_streamed_export_equals_the_whole_table(campaign, tmp_path, monkeypatch, fmt):
    monkeypatch.setattr(dataset, "BATCH", 500)
    public = fmt == "csv"
    salt = SecretStr("s") if public else None
    result = dataset.export_dataset(campaign, "big", tmp_path, fmt, public=public, salt=salt)
    whole, excluded = _whole_table(campaign, public, salt)
    # A public export leaves out what is known gone (private or removed at download).
    assert result.rows == whole.height == VIDEOS - excluded
    assert excluded == 0 or public
    if fmt == "parquet":
        assert pl.read_parquet(result.path).equals(whole)
    elif fmt == "jsonl":
        assert result.path.read_bytes() == whole.write_ndjson().encode()
    else:
        lists = [n for n, t in whole.schema.items() if isinstance(t, pl.List)]
        flat = whole.with_columns(pl.col(n).list.join(";") for n in lists)
        assert result.path.read_text() == flat.write_csv()

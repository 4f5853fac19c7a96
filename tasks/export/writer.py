"""Writing the export a batch at a time: one file, the same content as writing the whole table at
once, with memory bounded by one batch whatever the campaign's size."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl


def write_batches(frames: Iterable[pl.DataFrame], path: Path, fmt: str) -> None:
    """Append every frame to `path` (parquet: one row group each; csv: one header)."""
    if fmt == "parquet":
        _write_parquet(frames, path)
        return
    with path.open("wb") as out:
        for n, frame in enumerate(frames):
            if fmt == "jsonl":
                frame.write_ndjson(out)
            else:
                lists = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.List)]
                flat = frame.with_columns(pl.col(name).list.join(";") for name in lists)
                flat.write_csv(out, include_header=n == 0)


def _write_parquet(frames: Iterable[pl.DataFrame], path: Path) -> None:
    import pyarrow.parquet as pq  # half a second to import: only parquet exports pay it

    writer = None
    try:
        for frame in frames:
            table = frame.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()

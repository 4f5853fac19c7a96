"""One page of the export table from the stages' rows, by polars joins (no loop over videos).

Per video and transcript engine (Whisper or TikTok) and per annotation kind, the newest row is
exported, an ok one preferred over a failed one; annotation values are read from their JSON text.
"""

from __future__ import annotations

import polars as pl
from gettok.tasks.export.columns import ANNOTATION_KINDS, COLUMNS

TIKTOK_ENGINE = "tiktok"
VOICE_TO_TEXT = "research-api voice_to_text"
KEYS = ["video_id"]


def assemble(
    videos: pl.DataFrame,
    *,
    downloads: pl.DataFrame,
    media: pl.DataFrame,
    frames: pl.DataFrame,
    transcripts: pl.DataFrame,
    annotations: pl.DataFrame,
    humans: pl.DataFrame,
) -> pl.DataFrame:
    """Every export column for `videos`, in the dictionary's order and types."""
    table = videos.with_columns(create_date=pl.col("created_at").dt.date())
    for part in (downloads, media, frames, humans):
        table = table.join(_typed(part), on=KEYS, how="left")
    table = _with_transcripts(table, _typed(transcripts))
    table = _with_annotations(table, _typed(annotations))
    sandbox = pl.any_horizontal(
        pl.col("sandbox_record"),
        *(pl.col(f"{kind}_is_sandbox").fill_null(False) for kind in ANNOTATION_KINDS),
    )
    table = table.with_columns(
        is_sandbox=sandbox,
        frames_extracted=pl.col("frames_extracted").fill_null(0),
        validated=pl.col("validated").fill_null(False),
    )
    return table.select(pl.col(c.name).cast(c.dtype) for c in COLUMNS if c.name != "user_hash")


def _typed(part: pl.DataFrame) -> pl.DataFrame:
    """Columns polars could not type (no value in this page) take the dictionary's type."""
    types = {c.name: c.dtype for c in COLUMNS}
    types |= {"video_id": pl.Int64, "id": pl.Int64, "created_at": pl.Datetime("us", "UTC")}
    return part.with_columns(
        pl.col(name).cast(types.get(name, pl.Utf8))
        for name, dtype in part.schema.items()
        if dtype == pl.Null
    ).with_columns(pl.col("video_id").cast(pl.Int64))


def _newest(rows: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """The newest row per `by`, ok rows before failed ones (then by creation, then id)."""
    return (
        rows.with_columns(_ok=pl.col("status") == "ok")
        .sort([*by, "_ok", "created_at", "id"], nulls_last=False)
        .unique(subset=by, keep="last", maintain_order=True)
        .drop("_ok")
    )


def _with_transcripts(table: pl.DataFrame, transcripts: pl.DataFrame) -> pl.DataFrame:
    """Whisper's newest transcript and TikTok's (its stored copy, else the API's voice_to_text)."""
    rows = _newest(
        transcripts.with_columns(is_tiktok=pl.col("engine") == TIKTOK_ENGINE),
        ["video_id", "is_tiktok"],
    )
    whisper = rows.filter(~pl.col("is_tiktok")).select(
        "video_id",
        whisper_transcript=pl.when(pl.col("status") == "ok").then(pl.col("text")),
        whisper_status="status",
        whisper_model="model",
        whisper_settings_hash="settings_hash",
        whisper_language="language",
        whisper_language_probability="language_probability",
        whisper_is_empty="is_empty",
    )
    tiktok = rows.filter(pl.col("is_tiktok")).select(
        "video_id", t_status="status", t_text="text", t_model="model"
    )
    copied = (pl.col("t_status") == "ok") & (pl.col("t_text").str.len_chars() > 0)
    from_api = pl.col("voice_to_text").str.len_chars() > 0
    return (
        table.join(whisper, on=KEYS, how="left")
        .join(tiktok, on=KEYS, how="left")
        .with_columns(
            tiktok_transcript=pl.when(copied).then("t_text").when(from_api).then("voice_to_text"),
            tiktok_transcript_model=pl.when(copied)
            .then("t_model")
            .when(from_api)
            .then(pl.lit(VOICE_TO_TEXT)),
        )
    )


def _json(*keys: str) -> pl.Expr:
    """The first of `keys` the ok annotation's value holds (its JSON text read by polars)."""
    found = [pl.col("value").str.json_path_match(f"$.{key}") for key in keys]
    return pl.when(pl.col("status") == "ok").then(pl.coalesce(found))


VALUES: dict[str, dict[str, pl.Expr]] = {
    "description": {
        "description": _json("description", "text"),
        "description_onscreen": _json("onscreen_text"),
    },
    "onscreen_text": {"onscreen_text": _json("onscreen_text", "text")},
    "stance": {
        "stance": _json("label", "stance"),
        "stance_confidence": _json("confidence").cast(pl.Float64),
    },
    "sentiment": {
        "sentiment": _json("label", "sentiment"),
        "sentiment_confidence": _json("confidence").cast(pl.Float64),
        "sentiment_low_confidence": _json("low_confidence") == "true",
    },
    "summary": {"summary": _json("summary", "text")},
}


def _with_annotations(table: pl.DataFrame, annotations: pl.DataFrame) -> pl.DataFrame:
    """Per kind: the newest annotation's status, model, prompt and values."""
    newest = _newest(annotations, ["video_id", "kind"])
    for kind in ANNOTATION_KINDS:
        rows = newest.filter(pl.col("kind") == kind).select(
            "video_id",
            **{
                f"{kind}_status": "status",
                f"{kind}_model": "model",
                f"{kind}_prompt": pl.format(
                    "{}@{}", "prompt_id", pl.col("prompt_hash").str.slice(0, 12)
                ),
                f"{kind}_is_sandbox": "is_sandbox",
                f"{kind}_present": pl.lit(True),
            },
            **VALUES[kind],
        )
        table = table.join(rows, on=KEYS, how="left")
    # The description prompt answers the on-screen text too (GET-Tok asked for both); an
    # on-screen text annotation of its own, whatever its status, takes precedence.
    return table.with_columns(
        onscreen_text=pl.when(pl.col("onscreen_text_present").fill_null(False))
        .then("onscreen_text")
        .otherwise("description_onscreen")
    )

"""One page of the export table from the stages' rows, by polars joins (no loop over videos).

Per video and transcript engine (Whisper or TikTok) and per annotation kind, the newest row is
exported, an ok one preferred over a failed one; annotation values are read from their JSON text.
"""

from __future__ import annotations

import polars as pl

from gettok.tasks.export.columns import ANNOTATION_KINDS, COLUMNS
from gettok.tasks.transcribe.text_language import CAPTION, sha256

TIKTOK_ENGINE = "tiktok"
TRANSCRIPT_KINDS = ("stance", "sentiment", "summary")  # the kinds that read a transcript
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
    languages: pl.DataFrame,
    humans: pl.DataFrame,
) -> pl.DataFrame:
    """Every export column for `videos`, in the dictionary's order and types."""
    table = videos.with_columns(create_date=pl.col("created_at").dt.date())
    for part in (downloads, media, frames, humans):
        table = table.join(_typed(part), on=KEYS, how="left")
    transcripts, languages = _typed(transcripts), _typed(languages)
    table = _with_transcripts(table, transcripts, languages)
    table = _with_caption_language(table, languages)
    table = _with_annotations(table, _typed(annotations), transcripts)
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
    types |= {"transcript_id": pl.Int64, "is_current": pl.Boolean}
    return part.with_columns(
        pl.col(name).cast(types.get(name, pl.Utf8))
        for name, dtype in part.schema.items()
        if dtype == pl.Null
    ).with_columns(pl.col("video_id").cast(pl.Int64))


def _newest(rows: pl.DataFrame, by: list[str], first: tuple[str, ...] = ()) -> pl.DataFrame:
    """The newest row per `by`, ok rows before failed ones (then by creation, then id); the
    boolean columns `first` rank before all of those."""
    return (
        rows.with_columns(_ok=pl.col("status") == "ok")
        .sort([*by, *first, "_ok", "created_at", "id"], nulls_last=False)
        .unique(subset=by, keep="last", maintain_order=True)
        .drop("_ok")
    )


def _text_language(languages: pl.DataFrame, name: str) -> pl.DataFrame:
    """The text identifier's language keyed by (video, engine or caption, text hash)."""
    return languages.select(
        "video_id", source="source", text_sha256="text_sha256", **{name: "language"}
    )


def _with_transcripts(
    table: pl.DataFrame, transcripts: pl.DataFrame, languages: pl.DataFrame
) -> pl.DataFrame:
    """Whisper's current transcript (else its newest) and TikTok's (its stored copy, else the
    API's voice_to_text), with the language of each one's text."""
    rows = _newest(
        transcripts.with_columns(
            is_tiktok=pl.col("engine") == TIKTOK_ENGINE,
            is_current=pl.col("is_current").fill_null(False),
        ),
        ["video_id", "is_tiktok"],
        first=("is_current",),
    ).join(
        _text_language(languages, "text_language"),
        left_on=["video_id", "engine", "text_sha256"],
        right_on=["video_id", "source", "text_sha256"],
        how="left",
    )
    ok = pl.col("status") == "ok"
    whisper = rows.filter(~pl.col("is_tiktok")).select(
        "video_id",
        whisper_transcript=pl.when(ok).then(pl.col("text")),
        whisper_status="status",
        whisper_model="model",
        whisper_settings_hash="settings_hash",
        whisper_language="language",
        whisper_language_probability="language_probability",
        whisper_is_empty="is_empty",
        whisper_detected_language=pl.when(ok).then("detected_language"),
        whisper_language_source=pl.when(ok).then("language_source"),
        whisper_text_language=pl.when(ok).then("text_language"),
    )
    tiktok = rows.filter(pl.col("is_tiktok")).select(
        "video_id",
        t_status="status",
        t_text="text",
        t_model="model",
        tiktok_text_language=pl.when(ok).then("text_language"),
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


def _with_caption_language(table: pl.DataFrame, languages: pl.DataFrame) -> pl.DataFrame:
    """The language of the caption as it is now (its hash picks the identifier's row)."""
    captions = _text_language(languages.filter(pl.col("source") == CAPTION), "caption_language")
    digest = pl.col("video_description").fill_null("").map_elements(sha256, return_dtype=pl.Utf8)
    return (
        table.with_columns(_caption_sha256=digest)
        .join(
            captions.drop("source"),
            left_on=["video_id", "_caption_sha256"],
            right_on=["video_id", "text_sha256"],
            how="left",
        )
        .drop("_caption_sha256")
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
    "summary_check": {
        "summary_check": _json("label"),
        "summary_check_confidence": _json("confidence").cast(pl.Float64),
    },
}


def _with_annotations(
    table: pl.DataFrame, annotations: pl.DataFrame, transcripts: pl.DataFrame
) -> pl.DataFrame:
    """Per kind: the newest (not stale) annotation's status, model, prompt and values; for the
    kinds that read a transcript, which one ('engine model' and its id)."""
    names = transcripts.select(
        transcript_id="id", transcript_name=pl.format("{} {}", "engine", "model")
    )
    newest = _newest(annotations, ["video_id", "kind"]).join(names, on="transcript_id", how="left")
    for kind in ANNOTATION_KINDS:
        read = (
            {f"{kind}_transcript_id": "transcript_id", f"{kind}_transcript": "transcript_name"}
            if kind in TRANSCRIPT_KINDS
            else {}
        )
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
            **read,
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

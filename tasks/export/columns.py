"""The data dictionary of the exported dataset: every column, its type, what it means, and
whether a public export may carry it. The export writes this table beside every file."""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from gettok.tasks.validate.exported import HUMAN_CODE_COLUMNS


class Column(NamedTuple):
    name: str
    dtype: pl.DataType
    description: str
    public: bool = True  # False: left out of public exports


def _annotation_columns(
    kind: str, values: list[Column], reads_transcript: bool = False
) -> list[Column]:
    transcript = [
        Column(
            f"{kind}_transcript_id",
            pl.Int64,
            f"id of the transcript the {kind} was made from (only annotations made from the "
            "video's current transcript and frames are exported)",
        ),
        Column(f"{kind}_transcript", pl.Utf8, "engine and model of that transcript"),
    ]
    return [
        *values,
        Column(
            f"{kind}_status", pl.Utf8, f"{kind} annotation status: ok, refused, invalid, failed"
        ),
        Column(f"{kind}_model", pl.Utf8, f"model that produced the {kind}"),
        Column(f"{kind}_prompt", pl.Utf8, f"prompt id and version hash used for the {kind}"),
        *(transcript if reads_transcript else []),
    ]


COLUMNS: list[Column] = [
    Column(
        "video_id", pl.Int64, "TikTok video id (64-bit; read as text in tools that use doubles)"
    ),
    Column(
        "is_sandbox",
        pl.Boolean,
        "synthetic row: the video came from gettok's local sandbox (not TikTok), or one of its "
        "annotations from the sandbox LLM; never analyse such rows as data",
    ),
    Column("created_at", pl.Datetime("us", "UTC"), "when the video was posted (UTC)"),
    Column("create_date", pl.Date, "UTC day the video was posted"),
    Column("username", pl.Utf8, "author's TikTok username", public=False),
    Column(
        "user_hash",
        pl.Utf8,
        "HMAC-SHA256 of the username with the project's secret salt "
        "(first 16 hex digits): counts users without naming them; absent without a salt",
    ),
    Column("region_code", pl.Utf8, "region code the API reports"),
    Column("video_description", pl.Utf8, "the author's caption (public: @mentions masked)"),
    Column("hashtags", pl.List(pl.Utf8), "hashtag names (CSV: joined with ';')"),
    Column("mentions", pl.List(pl.Utf8), "usernames mentioned in the video", public=False),
    Column("view_count", pl.Int64, "views at the last collection"),
    Column("like_count", pl.Int64, "likes at the last collection"),
    Column("comment_count", pl.Int64, "comments at the last collection"),
    Column("share_count", pl.Int64, "shares at the last collection"),
    Column(
        "favorites_count",
        pl.Int64,
        "times saved as a favourite at the last collection (the API's name; often missing)",
    ),
    Column("music_id", pl.Int64, "id of the video's sound"),
    Column("video_duration", pl.Int64, "duration in seconds as the API reports it"),
    Column("is_stem_verified", pl.Boolean, "TikTok's STEM flag"),
    Column("first_seen_at", pl.Datetime("us", "UTC"), "first collected (UTC)"),
    Column("last_seen_at", pl.Datetime("us", "UTC"), "last collected (UTC)"),
    Column("pruned_at", pl.Datetime("us", "UTC"), "when compliance found it no longer public"),
    Column("pruned_reason", pl.Utf8, "why it was pruned: private or removed"),
    Column(
        "download_status",
        pl.Utf8,
        "ok, private, removed, slideshow, invalid, transient, blocked; empty when not attempted",
    ),
    Column("download_attempts", pl.Int64, "download attempts so far"),
    Column("download_error", pl.Utf8, "last download error", public=False),
    Column("media_path", pl.Utf8, "video file, relative to the media directory", public=False),
    Column("media_bytes", pl.Int64, "size of the downloaded file"),
    Column("media_sha256", pl.Utf8, "SHA-256 of the downloaded file"),
    Column("is_slideshow", pl.Boolean, "a photo post (images + audio) rather than a video"),
    Column("duration_s", pl.Float64, "duration of the downloaded media in seconds"),
    Column("fps", pl.Float64, "frames per second of the downloaded video"),
    Column("frame_count", pl.Int64, "frames in the downloaded video"),
    Column("width", pl.Int64, "video width in pixels"),
    Column("height", pl.Int64, "video height in pixels"),
    Column("has_audio", pl.Boolean, "whether the media has an audio track"),
    Column("video_codec", pl.Utf8, "video codec"),
    Column("audio_codec", pl.Utf8, "audio codec"),
    Column("frames_extracted", pl.Int64, "frames extracted for annotation"),
    Column("whisper_transcript", pl.Utf8, "Whisper transcript (public: @mentions masked)"),
    Column("whisper_status", pl.Utf8, "ok or failed; empty when not transcribed"),
    Column("whisper_model", pl.Utf8, "Whisper model that made the transcript"),
    Column("whisper_settings_hash", pl.Utf8, "hash of the transcription settings"),
    Column("whisper_language", pl.Utf8, "language the Whisper transcript was made in"),
    Column("whisper_detected_language", pl.Utf8, "language Whisper detected from the audio"),
    Column("whisper_language_probability", pl.Float64, "Whisper's probability for that detection"),
    Column(
        "whisper_language_source",
        pl.Utf8,
        "what decided the transcript's language: detected, hint (the campaign's language, "
        "detection below GETTOK_WHISPER_LANGUAGE_HINT_BELOW), forced (force_language), "
        "model (an English-only model)",
    ),
    Column(
        "whisper_text_language",
        pl.Utf8,
        "language of the Whisper transcript's text (fastText lid.176)",
    ),
    Column(
        "whisper_is_empty",
        pl.Boolean,
        "empty or near-empty transcript (music, silence): kept, flagged",
    ),
    Column("tiktok_transcript", pl.Utf8, "TikTok's own transcript (voice_to_text)"),
    Column("tiktok_transcript_model", pl.Utf8, "source of TikTok's transcript"),
    Column("tiktok_text_language", pl.Utf8, "language of TikTok's transcript (fastText lid.176)"),
    Column("caption_language", pl.Utf8, "language of the caption's text (fastText lid.176)"),
    *_annotation_columns(
        "description",
        [
            Column("description", pl.Utf8, "LLM's objective description of the video"),
        ],
    ),
    *_annotation_columns(
        "onscreen_text",
        [
            Column("onscreen_text", pl.Utf8, "text shown in the frames, as the LLM read it"),
        ],
    ),
    *_annotation_columns(
        "stance",
        [
            Column("stance", pl.Utf8, "stance label towards the campaign's target"),
            Column("stance_confidence", pl.Float64, "the model's stated confidence (0-1)"),
        ],
        reads_transcript=True,
    ),
    *_annotation_columns(
        "sentiment",
        [
            Column("sentiment", pl.Utf8, "sentiment label: positive, negative or neutral"),
            Column("sentiment_confidence", pl.Float64, "the model's stated confidence (0-1)"),
            Column("sentiment_low_confidence", pl.Boolean, "flagged as low confidence"),
        ],
        reads_transcript=True,
    ),
    *_annotation_columns(
        "summary",
        [
            Column("summary", pl.Utf8, "LLM summary of the transcript"),
        ],
        reads_transcript=True,
    ),
    *_annotation_columns(
        "summary_check",
        [
            Column(
                "summary_check",
                pl.Utf8,
                "does the transcript entail the summary: entailed, neutral or contradicted",
            ),
            Column("summary_check_confidence", pl.Float64, "the judge's confidence (0-1)"),
        ],
    ),
    *(Column(*human) for human in HUMAN_CODE_COLUMNS),
    Column("raw", pl.Utf8, "the Research API record as received (JSON)", public=False),
]
TEXT_COLUMNS = (
    "video_description",
    "whisper_transcript",
    "tiktok_transcript",
    "description",
    "onscreen_text",
    "summary",
)
# The public export's choice for video ids (`--ids`), with the reasoning the dictionary carries.
# TikTok's Research API terms let researchers share video ids, not the content: with ids, others can
# re-hydrate the dataset through their own API access and so honour deletions (a video removed or
# made private since simply fails to come back). But an id leads to its author in one request
# (tiktok.com/@/video/<id> redirects to the author's page), which undoes the username hashing.
ID_POLICIES = {
    "keep": Column(
        "video_id",
        pl.Int64,
        "TikTok video id, kept (--ids keep): lets others re-hydrate the data through the "
        "Research API and honour deletions, as the platform's terms expect of shared datasets; "
        "note that an id leads to the author's account in one request",
    ),
    "hash": Column(
        "video_hash",
        pl.Utf8,
        "HMAC-SHA256 of the video id with the project's secret salt (first 16 hex digits; "
        "--ids hash): links rows of this release to each other, not to TikTok; the dataset "
        "cannot be re-hydrated, so deletions after this export are not honoured by it",
    ),
    "drop": None,  # --ids drop: no id column at all, the same trade-off as hash
}
ANNOTATION_KINDS = (
    "description",
    "onscreen_text",
    "stance",
    "sentiment",
    "summary",
    "summary_check",
)

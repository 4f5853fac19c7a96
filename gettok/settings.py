"""One settings model for the whole pipeline, read from `GETTOK_*` variables and `.env`.

Built by `get_settings()`, never at import time, so tests and workers can change the
environment before the first read. Secrets are `SecretStr`: they print as `**********`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_serializer, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Every video field the Research API serves, spelled as the API spells them: `favorites_count`
# (one version of the spec page wrote `favourites_count`, which the live service rejects with
# invalid_params; see tests/fixtures/tiktok-research-api/README.md).
ALL_VIDEO_FIELDS = (
    "id,video_description,create_time,region_code,share_count,view_count,like_count,"
    "comment_count,music_id,hashtag_names,username,effect_ids,playlist_id,voice_to_text,"
    "is_stem_verified,favorites_count,video_duration,hashtag_info_list,sticker_info_list,"
    "effect_info_list,video_mention_list,video_label,video_tag"
).split(",")
DEFAULT_VIDEO_FIELDS = list(ALL_VIDEO_FIELDS)

# TikTok's media CDNs (yt-dlp and pyktok see media on these); extend with
# GETTOK_DOWNLOAD_MEDIA_HOSTS as a JSON list when TikTok adds one.
TIKTOK_MEDIA_HOSTS = (
    "tiktok.com",
    "tiktokcdn.com",
    "tiktokcdn-us.com",
    "tiktokcdn-eu.com",
    "tiktokv.com",
    "tiktokv.us",
    "tiktokv.eu",
    "ibyteimg.com",
    "ibytedtos.com",
    "byteoversea.com",
    "muscdn.com",
    "ttwstatic.com",
)

# USD per million tokens (input, output); override with GETTOK_LLM_PRICES as JSON.
DEFAULT_LLM_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "sandbox-vision": (0.0, 0.0),
}


class Settings(BaseSettings):
    """Everything a run can be configured with; see `.env.example` for one line each."""

    model_config = SettingsConfigDict(
        env_prefix="GETTOK_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Path("data")
    database_url: str = ""
    media_dir: Path | None = None

    tiktok_client_key: SecretStr | None = None
    tiktok_client_secret: SecretStr | None = None
    tiktok_api_url: str = "https://open.tiktokapis.com"
    tiktok_web_url: str = "https://www.tiktok.com"
    tiktok_video_fields: list[str] = Field(default_factory=lambda: list(DEFAULT_VIDEO_FIELDS))
    daily_request_budget: int = Field(1000, ge=1, le=1_000_000)
    window_days: int = Field(1, ge=1, le=30)
    tiktok_request_timeout_s: float = Field(60.0, gt=0, le=600)

    download_concurrency: int = Field(4, ge=1, le=64)
    download_requests_per_s: float = Field(2.0, gt=0, le=1000)
    download_timeout_s: float = Field(60.0, gt=0, le=3600)  # per request (page or media)
    download_transient_backoff_s: float = Field(100.0, ge=0)  # the studies: ask again after ~100 s
    download_block_backoff_s: float = Field(300.0, ge=0)  # first global pause when throttled
    download_block_limit: int = Field(3, ge=1, le=100)  # throttles in a row before a run stops
    download_invalid_attempts: int = Field(3, ge=1, le=20)  # tries before a file counts invalid
    download_batch_size: int = Field(200, ge=1, le=10_000)  # videos per Prefect task run
    # Media only from these hosts (and their subdomains), besides the tiktok_web_url host itself.
    download_media_hosts: list[str] = Field(default_factory=lambda: list(TIKTOK_MEDIA_HOSTS))
    download_max_media_mb: float = Field(1024, gt=0, le=100_000)  # larger bodies are refused
    download_min_free_mb: int = Field(1024, ge=0)  # a write never leaves less free on the disk
    # A video failing the same way on this many runs, over at least this many days: unreachable.
    download_unreachable_runs: int = Field(5, ge=2, le=1000)
    download_unreachable_days: float = Field(3.0, ge=0, le=365)
    # Connections refused in a row (no answer in between): the site is down, the run stops.
    download_outage_refusals: int = Field(10, ge=1, le=10_000)
    # Prune asks the Research API's batch compliance first (where the account has it), polling
    # its tasks after `poll_s`, then twice as long each round, for at most `wait_s` a run
    # (unfinished tasks resume next run; every poll spends one request of the daily budget).
    prune_batch_compliance: bool = True
    prune_batch_poll_s: float = Field(30.0, ge=0, le=3600)
    prune_batch_wait_s: float = Field(900.0, ge=0, le=86_400)

    whisper_model: str = "large-v3"
    whisper_device: Literal["auto", "cpu", "cuda"] = "auto"
    whisper_compute_type: str = "auto"
    whisper_batch_size: int = Field(8, ge=1, le=256)
    transcription_concurrency: int = Field(1, ge=1, le=64)  # slots of the limit below
    transcription_limit: str = "gpu"  # Prefect global concurrency limit around the model work
    transcription_batch_files: int = Field(16, ge=1, le=1024)  # clips decoded and batched together
    transcription_task_videos: int = Field(250, ge=1, le=100_000)  # videos per Prefect task run
    whisper_beam_size: int = Field(5, ge=1, le=20)
    whisper_vad: bool = True  # Silero VAD: only speech reaches the model; none: flagged empty
    whisper_timestamps: bool = False  # timestamped segments inside each ≤30 s window
    whisper_cpu_threads: int = Field(0, ge=0, le=256)  # 0: CTranslate2's default
    # Whisper's language detection below this probability is unsure: the campaign's hint decides.
    whisper_language_hint_below: float = Field(0.5, ge=0.0, le=1.0)
    # Sentence embeddings for the report's transcript comparison (any sentence-transformers model
    # by name or directory; BETO or a multilingual model for Spanish). all-MiniLM-L6-v2 ships.
    embedding_model: str = "all-MiniLM-L6-v2"

    frame_every: int = Field(300, ge=1)
    frame_max_per_video: int = Field(20, ge=1, le=10_000)
    frame_max_side: int = Field(768, ge=64, le=4096)

    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("GETTOK_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("GETTOK_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )
    llm_model: str = "gpt-4o-mini"
    llm_description_model: str | None = None
    llm_stance_model: str | None = None
    llm_sentiment_model: str | None = None
    llm_summary_model: str | None = None
    llm_summary_check_model: str | None = None
    llm_temperature: float = Field(0.0, ge=0, le=2)
    llm_budget_usd: float = Field(5.0, ge=0)
    llm_prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: dict(DEFAULT_LLM_PRICES)
    )
    llm_timeout_s: float = Field(60.0, gt=0, le=600)  # per request; the SDK does not retry
    llm_max_attempts: int = Field(5, ge=1, le=20)  # per request, on 429 / 5xx / timeouts
    llm_backoff_s: float = Field(2.0, ge=0, le=300)  # first backoff after a 5xx or timeout
    llm_max_wait_s: float = Field(60.0, ge=0, le=3600)  # cap on one wait, Retry-After included
    llm_invalid_max_tries: int = Field(3, ge=1, le=20)  # runs that ask again after `invalid`
    llm_concurrency: int = Field(4, ge=1, le=64)  # requests in flight at once
    llm_batch_size: int = Field(250, ge=1, le=10_000)  # videos per Prefect task run
    llm_max_frames: int = Field(8, ge=1, le=50)  # frames sent for a description
    llm_image_detail: Literal["low", "high", "auto"] = "high"  # "high" to read on-screen text
    sentiment_low_confidence: float = Field(0.6, ge=0, le=1)  # below: flagged low_confidence
    # Local classifiers instead of the LLM (models by name or folder; torch on CPU).
    sentiment_engine: Literal["llm", "zero-shot"] = "llm"
    sentiment_zero_shot_model: str = "joeddav/xlm-roberta-large-xnli"  # the Ecuador study's
    summary_check_engine: Literal["llm", "nli"] = "llm"
    summary_check_nli_model: str = "cross-encoder/nli-deberta-v3-base"

    sandbox_port: int = Field(8765, ge=0, le=65535)
    llm_requests_per_s: float = Field(5.0, gt=0, le=1000)  # the `llm-rate` limit, all workers

    # Watchlist alerts by email (SMTP); none are sent without a host and recipients.
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "gettok@localhost"
    smtp_to: list[str] = Field(default_factory=list)  # JSON list, e.g. ["desk@example.org"]
    smtp_starttls: bool = True  # upgrade the connection before logging in
    smtp_ssl: bool = False  # implicit TLS (port 465) instead of STARTTLS
    smtp_timeout_s: float = Field(30.0, gt=0, le=600)
    # Face watch: the detector ("cnn" finds more faces, much slower on CPU) and the frame size.
    watch_face_detector: Literal["hog", "cnn"] = "hog"
    watch_max_side: int = Field(640, ge=160, le=4096)

    # Public exports name users by HMAC(salt, username); without a salt they carry no user column.
    export_salt: SecretStr | None = None

    @field_validator("tiktok_video_fields")
    @classmethod
    def _known_fields(cls, fields: list[str]) -> list[str]:
        unknown = sorted(set(fields) - set(ALL_VIDEO_FIELDS))
        if unknown:
            hint = " (the API spells it favorites_count)" if "favourites_count" in unknown else ""
            raise ValueError(f"unknown Research API video fields: {', '.join(unknown)}{hint}")
        if "id" not in fields:
            raise ValueError("must include 'id' (videos are stored by id)")
        return list(dict.fromkeys(fields))

    @field_validator("tiktok_api_url", "tiktok_web_url", "openai_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/") if value else value

    @field_serializer("database_url")
    def _database_url_without_password(self, value: str) -> str:
        """Settings are handed to Prefect tasks, whose parameters Prefect may serialise: like the
        SecretStr fields, the database URL is written without its password."""
        for form in database_password_forms(value):
            value = value.replace(f":{form}@", ":***@")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'gettok.db'}"

    @property
    def resolved_media_dir(self) -> Path:
        return self.media_dir or self.data_dir / "media"

    @property
    def has_tiktok_credentials(self) -> bool:
        return bool(self.tiktok_client_key and self.tiktok_client_secret)

    def llm_model_for(self, kind: str) -> str:
        """The model configured for one annotation kind, else the general one."""
        return getattr(self, f"llm_{kind}_model", None) or self.llm_model


def get_settings(**overrides) -> Settings:
    """Read the settings now (environment, then `.env`), with explicit overrides on top."""
    return Settings(**overrides)


def redact(text: str, settings: Settings) -> str:
    """Replace every configured secret in `text`, for messages that may quote a request."""
    secrets = [
        secret.get_secret_value() if secret else ""
        for secret in (
            settings.tiktok_client_secret,
            settings.openai_api_key,
            settings.tiktok_client_key,
            settings.export_salt,
            settings.smtp_password,
        )
    ]
    secrets += database_password_forms(settings.database_url)
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, "**********")
    return text


def database_password_forms(database_url: str) -> list[str]:
    """The database password as it may appear in a message: decoded, and as written in the URL
    (percent-encoded), since a driver error can quote either."""
    from urllib.parse import quote_plus

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(database_url).password if database_url else None
    except (ArgumentError, ValueError):
        return []
    if not password:
        return []
    return [str(password), quote_plus(str(password)), quote_plus(str(password), safe="")]

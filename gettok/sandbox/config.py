"""Sandbox configuration: corpus size, quotas and fault rates, from `GETTOK_SANDBOX_*` or code."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Rate = Field(0.0, ge=0.0, le=1.0)


class ApiFaults(BaseModel):
    """Research API faults, each a probability per request (or per page)."""

    error_500: float = Rate
    expired_search_id: float = Rate
    invalid_cursor: float = Rate
    rate_limit_429: float = Rate
    empty_page: float = Rate  # has_more true and no videos
    duplicates: float = Rate  # a page repeats videos of the previous page


class WebFaults(BaseModel):
    """tiktok.com page and media faults, each a probability per request."""

    html_as_media: float = Rate
    truncated_media: float = Rate
    dropped_connection: float = Rate
    throttle: float = Rate  # 429 / captcha-like block
    media_bytes_per_s: float = Field(0.0, ge=0)  # 0: as fast as possible; >0: a slow CDN
    # A video's first page names media addresses that have already expired (the page was read a
    # day ago): the media host answers 403 until the page is read again.
    stale_media_address: float = Rate
    media_url_ttl_s: int = Field(86_400, ge=1)  # media addresses expire, as the live CDN's do
    wrong_video: float = Rate  # a public video's page shows another video (a redirect gone wrong)
    age_restricted: float = Rate  # a public page is age restricted: isContentClassified, no media


class ComplianceFaults(BaseModel):
    """Batch compliance (`research/validation_task/*`): offered or not, and how tasks behave."""

    offered: bool = True  # False: 404, as for an account without the endpoints
    processing_polls: int = Field(1, ge=0)  # status answers "processing" this often first
    failed_task: float = Rate  # a task that ends "failed"
    comment_gone_share: float = Field(0.1, ge=0, le=1)  # comments deleted since collection


class CannedAnswer(BaseModel):
    """One answer served as given (status, headers, JSON body): a real server's recorded or
    documented response, replayed over HTTP so the real client reads exactly that."""

    status: int = Field(200, ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict = Field(default_factory=dict)
    times: int = Field(1, ge=1)  # served for this many requests in a row


class LlmFaults(BaseModel):
    """OpenAI-compatible endpoint faults, each a probability per request."""

    canned: list[CannedAnswer] = Field(default_factory=list)  # served first, in order

    rate_limit_429: float = Rate
    # The 429's wait: `Retry-After` in whole seconds, or, when set, `retry-after-ms` as well
    # (OpenAI and Azure send both; clients prefer the finer one).
    retry_after_s: int = Field(1, ge=0)
    retry_after_ms: int | None = Field(None, ge=0)
    error_500: float = Rate
    timeout: float = Rate
    refusal: float = Rate
    invalid_json: float = Rate
    insufficient_quota: float = Rate  # OpenAI's 429 for an empty balance
    content_filter: float = Rate  # Azure's 400 for a prompt its content filter refused
    no_usage: float = Rate  # an answer without token counts, as some local servers send
    timeout_s: float = Field(30.0, ge=0)  # how long a "timeout" stalls


class FacePlacement(BaseModel):
    """A face photo the sandbox shows in a share of its public videos (the watchlist's truth)."""

    image: Path
    share: float = Field(0.25, ge=0.0, le=1.0)


class SandboxConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GETTOK_SANDBOX_", env_nested_delimiter="__")

    seed: int = 2022
    daily_quota: int = Field(1000, ge=0)
    records_per_day: int = Field(100_000, ge=0)
    videos_per_day: int = Field(40, ge=0, le=20_000)  # corpus size per UTC day
    private_share: float = Field(0.05, ge=0, le=1)  # corpus videos that are private on the web
    removed_share: float = Field(0.03, ge=0, le=1)
    slideshow_share: float = Field(0.03, ge=0, le=1)
    # Index slots the API counts but never shows (deleted/private since indexing): they make
    # pages short. The recorded live pages show 27 of 100; 0 gives full pages (benchmarks).
    invisible_share: float = Field(0.12, ge=0, le=1)
    index_lag_hours: int = Field(48, ge=0)  # the newest videos are not searchable yet
    client_key: str = "sandbox-client-key"
    client_secret: str = "sandbox-client-secret"
    token_ttl_s: int = Field(7200, ge=1)
    media_cache_dir: Path = Path.home() / ".cache" / "gettok" / "sandbox-media"
    fault_seed: int | None = None  # None: faults vary per run; an int makes them repeatable
    api: ApiFaults = Field(default_factory=ApiFaults)
    web: WebFaults = Field(default_factory=WebFaults)
    llm: LlmFaults = Field(default_factory=LlmFaults)
    compliance: ComplianceFaults = Field(default_factory=ComplianceFaults)
    # Face photos shown in some videos (gettok.sandbox.faces.face_in); shares must sum to <= 1.
    faces: list[FacePlacement] = Field(default_factory=list)

    @model_validator(mode="after")
    def _face_shares_fit(self) -> SandboxConfig:
        if sum(f.share for f in self.faces) > 1.0 + 1e-9:
            raise ValueError("the faces' shares add up to more than 1")
        return self

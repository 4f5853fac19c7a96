"""The TikTok Research API client: token, one video query page per call, one ledger row per request.

The client sends exactly one request per call (plus a token refresh on 401) and turns every
failure into a typed fault; what to do about a fault (wait, retry, split the window, stop for the
day) is the collect stage's policy (`tasks/collect/policies.py`, waits from `gettok.retry`). Every
request is first reserved in the `api_requests` ledger, which refuses the request once the day's
budget is used: the budget holds across processes, reruns and concurrent collectors because it is
counted in the database.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
from pydantic import SecretStr, ValidationError
from sqlalchemy import Date, Integer, func, insert, literal, select, text, update

from gettok.db import get_engine
from gettok.models.api import MAX_PAGE_RECORDS, ApiError, ResearchVideo, VideoPageData
from gettok.models.schema import ApiRequest, UTCDateTime, utcnow
from gettok.retry import retry_after_s
from gettok.settings import Settings

TOKEN_PATH = "/v2/oauth/token/"
VIDEO_QUERY_PATH = "/v2/research/video/query/"
TOKEN_ENDPOINT = "oauth/token"
VIDEO_QUERY_ENDPOINT = "research/video/query"
# Postgres advisory lock namespace for the ledger ("gtok"), second key the UTC day.
LEDGER_LOCK = 0x67746F6B


class ApiFault(Exception):
    """A request that did not return a page; `kind` names the policy that handles it."""

    kind = "fault"

    def __init__(self, message: str, status_code: int | None = None, error_code: str | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.error_code = error_code
        self.retry_after_s: float | None = None  # the server's Retry-After, when it sent one


class ServerError(ApiFault):
    kind = "server_error"


class OversizedPage(ServerError):
    """A page holding more records than `max_count` allows: a broken answer, retried like a 500."""


class SearchIdExpired(ApiFault):
    kind = "search_id_expired"


class InvalidCursor(ApiFault):
    kind = "invalid_cursor"


class ShortRateLimit(ApiFault):
    kind = "rate_limited"


class DailyQuotaExhausted(ApiFault):
    """The API's daily quota is used up (a 429 that says so)."""

    kind = "daily_quota"


class BudgetExhausted(DailyQuotaExhausted):
    """Our own ledger refused the request: the configured daily budget is used up."""

    kind = "daily_budget"


class TokenRejected(ApiFault):
    kind = "token_rejected"


class RequestRejected(ApiFault):
    """A 4xx that no retry can fix (invalid_params, scope_permission_missed, ...)."""

    kind = "rejected"


class NetworkFailure(ApiFault):
    kind = "network"


@dataclass
class QueryPage:
    """One page of the video query, videos validated one by one (a bad record skips only itself)."""

    videos: list[ResearchVideo]
    raw: list[dict[str, Any]]
    cursor: int
    has_more: bool
    search_id: str | None
    invalid: list[str] = field(default_factory=list)
    log_id: str | None = None
    rejected: list[dict[str, Any]] = field(default_factory=list)  # invalid records as sent


def parse_video_page(payload: dict[str, Any]) -> QueryPage:
    """Validate a page; a record that fails validation is reported in `invalid`, not raised."""
    data = dict(payload.get("data") or {})
    raw_videos = list(data.pop("videos", None) or [])
    if len(raw_videos) > MAX_PAGE_RECORDS:  # max_count is at most 100: not an answer to our ask
        raise OversizedPage(
            f"a page of {len(raw_videos)} records, more than the API's {MAX_PAGE_RECORDS}: "
            "refused, nothing of it stored"
        )
    meta = VideoPageData.model_validate(data)
    videos, raws, invalid, rejected = [], [], [], []
    for raw in raw_videos:
        try:
            videos.append(ResearchVideo.model_validate(raw))
            raws.append(raw)
        except ValidationError as exc:
            ident = raw.get("id") if isinstance(raw, dict) else None
            invalid.append(f"video {ident!r}: {exc.errors()[0]['msg']}")
            rejected.append(raw if isinstance(raw, dict) else {"value": raw})
    error = ApiError.model_validate(payload.get("error") or {})
    return QueryPage(
        videos, raws, meta.cursor, meta.has_more, meta.search_id, invalid, error.log_id, rejected
    )


class RequestLedger:
    """The `api_requests` table as a daily budget: reserve before sending, record the answer."""

    def __init__(
        self, database_url: str, budget: int, today: Callable[[], date] | None = None
    ) -> None:
        self.database_url = database_url
        self.budget = budget
        self.today = today or (lambda: datetime.now(UTC).date())
        # Requests this process reserved, by window: cheap counters for checkpoints.
        self.reserved: Counter[int | None] = Counter()

    def used(self, day: date | None = None) -> int:
        """Requests counted against the budget on `day` (default: today, UTC)."""
        day = day or self.today()
        with get_engine(self.database_url).connect() as conn:
            return conn.scalar(
                select(func.count())
                .select_from(ApiRequest)
                .where(ApiRequest.day == day, ApiRequest.endpoint != TOKEN_ENDPOINT)
            )

    def reserve(self, endpoint: str, window_id: int | None = None) -> int:
        """Insert the request's row, or raise BudgetExhausted if today's budget is used.

        One conditional INSERT ... SELECT, so SQLite's single writer makes it atomic; on Postgres
        an advisory lock per day serialises concurrent collectors.
        """
        day = self.today()
        counted = endpoint != TOKEN_ENDPOINT
        row = select(
            literal(day, Date()),
            literal(utcnow(), UTCDateTime()),
            literal(endpoint),
            literal(window_id, Integer()),
            literal(0, Integer()),
        )
        if counted:
            used = (
                select(func.count())
                .select_from(ApiRequest)
                .where(ApiRequest.day == day, ApiRequest.endpoint != TOKEN_ENDPOINT)
                .scalar_subquery()
            )
            row = row.where(used < self.budget)
        stmt = (
            insert(ApiRequest)
            .from_select(["day", "requested_at", "endpoint", "window_id", "videos"], row)
            .returning(ApiRequest.id)
        )
        with get_engine(self.database_url).begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:ns, :day)"),
                    {"ns": LEDGER_LOCK, "day": day.toordinal()},
                )
            request_id = conn.execute(stmt).scalar()
        if request_id is not None and counted:
            self.reserved[window_id] += 1
        if request_id is None:
            raise BudgetExhausted(
                f"daily request budget of {self.budget} used for {day} (UTC)",
                error_code="daily_budget",
            )
        return request_id

    def record(
        self, request_id: int, status_code: int | None, error_code: str | None, videos: int = 0
    ) -> None:
        with get_engine(self.database_url).begin() as conn:
            conn.execute(
                update(ApiRequest)
                .where(ApiRequest.id == request_id)
                .values(status_code=status_code, error_code=error_code, videos=videos)
            )


class ResearchApiClient:
    """Talks to the Research API (or the sandbox) at `base_url`; one instance per run."""

    def __init__(
        self,
        *,
        base_url: str,
        client_key: SecretStr,
        client_secret: SecretStr,
        fields: list[str],
        ledger: RequestLedger,
        timeout_s: float = 30.0,
    ) -> None:
        if "id" not in fields:  # without ids no record can be stored: every page would be lost
            raise ValueError(f"the video field list must include 'id', got {list(fields)}")
        self.fields = list(fields)
        self.ledger = ledger
        self._key = client_key
        self._secret = client_secret
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self._token: str | None = None
        self._token_valid_until = 0.0

    @classmethod
    def from_settings(
        cls, settings: Settings, ledger: RequestLedger | None = None
    ) -> ResearchApiClient:
        if not settings.has_tiktok_credentials:
            raise ValueError(
                "no Research API credentials: set GETTOK_TIKTOK_CLIENT_KEY and "
                "GETTOK_TIKTOK_CLIENT_SECRET (the sandbox's are printed by `gettok sandbox`)"
            )
        ledger = ledger or RequestLedger(
            settings.resolved_database_url, settings.daily_request_budget
        )
        return cls(
            base_url=settings.tiktok_api_url,
            client_key=settings.tiktok_client_key,
            client_secret=settings.tiktok_client_secret,
            fields=settings.tiktok_video_fields,
            ledger=ledger,
            timeout_s=settings.tiktok_request_timeout_s,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ResearchApiClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- token -------------------------------------------------------------------------------

    def token(self) -> str:
        """A client-credentials token, reused until shortly before it expires."""
        if self._token and time.monotonic() < self._token_valid_until:
            return self._token
        request_id = self.ledger.reserve(TOKEN_ENDPOINT)
        try:
            response = self._http.post(
                TOKEN_PATH,
                data={
                    "client_key": self._key.get_secret_value(),
                    "client_secret": self._secret.get_secret_value(),
                    "grant_type": "client_credentials",
                },
            )
        except httpx.TransportError as exc:
            self.ledger.record(request_id, None, "network")
            raise NetworkFailure(f"token request: {type(exc).__name__}") from None
        body = _json_or_none(response)
        if response.status_code != 200 or not body or "access_token" not in body:
            code = (body or {}).get("error") or f"http_{response.status_code}"
            self.ledger.record(request_id, response.status_code, str(code))
            message = (body or {}).get("error_description") or response.reason_phrase
            fault = ServerError if response.status_code >= 500 else TokenRejected
            raise fault(f"token refused: {code}: {message}", response.status_code, str(code))
        self.ledger.record(request_id, response.status_code, None)
        expires_in = float(body.get("expires_in") or 7200)
        # Refresh a little early so a token never expires between check and use.
        self._token_valid_until = time.monotonic() + expires_in - min(300.0, expires_in / 10)
        self._token = str(body["access_token"])
        return self._token

    def forget_token(self) -> None:
        self._token = None

    # -- video query -------------------------------------------------------------------------

    def query_videos(
        self,
        body: dict[str, Any],
        *,
        cursor: int | None = None,
        search_id: str | None = None,
        window_id: int | None = None,
    ) -> QueryPage:
        """One page of `POST /v2/research/video/query/`; a 401 refreshes the token once."""
        request = dict(body)
        if cursor is not None:
            request["cursor"] = cursor
        if search_id is not None:
            request["search_id"] = search_id
        try:
            return self._query_once(request, window_id)
        except TokenRejected:  # not a wait-and-retry: a fresh token, once; a second 401 stands
            self.forget_token()
            return self._query_once(request, window_id)

    def _query_once(self, request: dict[str, Any], window_id: int | None) -> QueryPage:
        token = self.token()
        request_id = self.ledger.reserve(VIDEO_QUERY_ENDPOINT, window_id)
        try:
            response = self._http.post(
                VIDEO_QUERY_PATH,
                params={"fields": ",".join(self.fields)},
                content=json.dumps(request, ensure_ascii=False).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
        except httpx.TransportError as exc:
            self.ledger.record(request_id, None, "network")
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "network error"
            raise NetworkFailure(f"video query {kind}: {type(exc).__name__}") from None
        payload = _json_or_none(response)
        error = ApiError.model_validate((payload or {}).get("error") or {})
        if response.status_code == 200 and payload is not None and error.ok:
            try:
                page = parse_video_page(payload)
            except OversizedPage as fault:
                self.ledger.record(request_id, 200, "oversized_page")
                raise fault from None
            self.ledger.record(request_id, 200, None, len(page.videos))
            return page
        fault = classify_fault(response.status_code, error, payload is None)
        fault.retry_after_s = retry_after_s(response.headers)
        self.ledger.record(request_id, response.status_code, fault.error_code or fault.kind)
        raise fault


def classify_fault(status_code: int, error: ApiError, unparsable: bool) -> ApiFault:
    """Name a failed answer after the policy that handles it (matching the live API's words)."""
    code = error.code if not error.ok else None
    message = error.message or ("unparsable answer" if unparsable else f"HTTP {status_code}")
    text_ = f"{code or 'error'}: {message}"
    lowered = message.lower()
    if status_code == 401 or code in ("access_token_invalid", "scope_not_authorized"):
        return TokenRejected(text_, status_code, code)
    if status_code == 429 or code == "rate_limit_exceeded":
        # A single 429 is not proof the day is over: only the quota message says so.
        if "quota" in lowered or "daily" in lowered:
            return DailyQuotaExhausted(text_, status_code, code)
        return ShortRateLimit(text_, status_code, code)
    if status_code >= 500 or (status_code == 200 and (unparsable or code == "internal_error")):
        return ServerError(text_, status_code, code)
    if "search" in lowered and ("invalid" in lowered or "expired" in lowered):
        return SearchIdExpired(text_, status_code, code)
    if "cursor" in lowered:
        return InvalidCursor(text_, status_code, code)
    return RequestRejected(text_, status_code, code)


def _json_or_none(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None

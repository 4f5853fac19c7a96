"""The TikTok Research API client: token, one video query page per call, one ledger row per request.

The client sends exactly one request per call (plus a token refresh on 401) and turns every
failure into a typed fault; what to do about a fault (wait, retry, split the window, stop for the
day) is the collect stage's policy (`tasks/collect/policies.py`, waits from `gettok.retry`). Every
request is first reserved in the `api_requests` ledger (`request_ledger.py`), which refuses it
once the day's budget is used. Every research endpoint goes through `ResearchApiClient.post`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr, ValidationError

from gettok.clients.api_faults import (  # re-exported: the stages import them from here
    ApiFault,
    BudgetExhausted,
    DailyQuotaExhausted,
    InvalidCursor,
    NetworkFailure,
    OversizedPage,
    RequestRejected,
    SearchIdExpired,
    ServerError,
    ShortRateLimit,
    TokenRejected,
    classify_fault,
)
from gettok.clients.request_ledger import LEDGER_LOCK, TOKEN_ENDPOINT, RequestLedger
from gettok.models.api import MAX_PAGE_RECORDS, ApiError, ResearchVideo, VideoPageData
from gettok.retry import retry_after_s
from gettok.settings import Settings

TOKEN_PATH = "/v2/oauth/token/"
VIDEO_QUERY_PATH = "/v2/research/video/query/"
VIDEO_QUERY_ENDPOINT = "research/video/query"
T = TypeVar("T")
__all__ = [
    "LEDGER_LOCK",
    "TOKEN_ENDPOINT",
    "ApiFault",
    "BudgetExhausted",
    "DailyQuotaExhausted",
    "InvalidCursor",
    "NetworkFailure",
    "OversizedPage",
    "QueryPage",
    "RequestLedger",
    "RequestRejected",
    "ResearchApiClient",
    "SearchIdExpired",
    "ServerError",
    "ShortRateLimit",
    "TokenRejected",
    "classify_fault",
    "parse_video_page",
]


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


def _video_page(payload: dict[str, Any]) -> tuple[QueryPage, int]:
    page = parse_video_page(payload)
    return page, len(page.videos)


def _whole_answer(payload: dict[str, Any]) -> tuple[dict[str, Any], int]:
    return payload, 0


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
        return self.post(
            VIDEO_QUERY_PATH,
            VIDEO_QUERY_ENDPOINT,
            json_body=request,
            fields=self.fields,
            window_id=window_id,
            parse=_video_page,
        )

    # -- every research endpoint -------------------------------------------------------------

    def post(
        self,
        path: str,
        endpoint: str,
        *,
        json_body: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        fields: list[str] | None = None,
        window_id: int | None = None,
        parse: Callable[[dict[str, Any]], tuple[T, int]] = _whole_answer,
    ) -> T:
        """One request to a research endpoint under the token, the ledger and the fault names
        every endpoint shares; `parse` turns the answer into (result, records for the ledger)
        and may refuse it with an ApiFault. A 401 refreshes the token once; a second stands."""
        request = _Request(path, endpoint, json_body, form, files, fields, window_id)
        try:
            return self._post_once(request, parse)
        except TokenRejected:  # not a wait-and-retry: a fresh token, once
            self.forget_token()
            return self._post_once(request, parse)

    def _post_once(self, request: _Request, parse: Callable[[dict[str, Any]], tuple[T, int]]) -> T:
        token = self.token()
        request_id = self.ledger.reserve(request.endpoint, request.window_id)
        headers = {"Authorization": f"Bearer {token}"}
        if request.json_body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(request.json_body, ensure_ascii=False).encode()
        else:
            content = None
        params = {"fields": ",".join(request.fields)} if request.fields else None
        try:
            response = self._http.post(
                request.path,
                params=params,
                content=content,
                data=request.form,
                files=request.files,
                headers=headers,
            )
        except httpx.TransportError as exc:
            self.ledger.record(request_id, None, "network")
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "network error"
            raise NetworkFailure(f"{request.endpoint} {kind}: {type(exc).__name__}") from None
        payload = _json_or_none(response)
        error = ApiError.model_validate((payload or {}).get("error") or {})
        if response.status_code == 200 and payload is not None and error.ok:
            try:
                result, records = parse(payload)
            except ApiFault as fault:  # an answer the endpoint's parser refused
                self.ledger.record(request_id, 200, fault.error_code or fault.kind)
                raise fault from None
            self.ledger.record(request_id, 200, None, records)
            return result
        fault = classify_fault(response.status_code, error, payload is None)
        fault.retry_after_s = retry_after_s(response.headers)
        self.ledger.record(request_id, response.status_code, fault.error_code or fault.kind)
        raise fault


@dataclass(frozen=True)
class _Request:
    path: str
    endpoint: str
    json_body: dict[str, Any] | None
    form: dict[str, str] | None
    files: dict[str, tuple[str, bytes, str]] | None
    fields: list[str] | None
    window_id: int | None


def _json_or_none(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None

"""The Research API's failed answers as typed faults, named after the policy that handles each.

One set of names for every research endpoint (video query, comments, user info, batch
compliance), so every stage reads a 429 or a 401 the same way.
"""

from __future__ import annotations

from gettok.models.api import ApiError


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

    def __init__(self, message: str):
        super().__init__(message, 200, "oversized_page")


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

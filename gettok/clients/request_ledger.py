"""The `api_requests` table as the Research API's daily budget, shared by every endpoint.

Every request is first reserved here, which refuses it once the day's budget is used: the budget
holds across processes, reruns and concurrent collectors because it is counted in the database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy import Date, Integer, func, insert, literal, select, text, update

from gettok.clients.api_faults import BudgetExhausted
from gettok.db import get_engine
from gettok.models.schema import ApiRequest, UTCDateTime, utcnow

TOKEN_ENDPOINT = "oauth/token"
# Postgres advisory lock namespace for the ledger ("gtok"), second key the UTC day.
LEDGER_LOCK = 0x67746F6B


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

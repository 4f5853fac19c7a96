"""The request ledger: a daily budget counted in the database, exact under concurrent collectors."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from gettok.clients.research_api import (
    TOKEN_ENDPOINT,
    VIDEO_QUERY_ENDPOINT,
    BudgetExhausted,
    RequestLedger,
)
from gettok.db import session_scope
from gettok.models.schema import ApiRequest


def test_budget_is_per_utc_day_and_ignores_token_requests(db_url):
    day = {"today": date(2024, 1, 5)}
    ledger = RequestLedger(db_url, budget=2, today=lambda: day["today"])
    first = ledger.reserve(VIDEO_QUERY_ENDPOINT)
    ledger.reserve(VIDEO_QUERY_ENDPOINT)
    ledger.reserve(TOKEN_ENDPOINT)  # tokens do not spend the research quota
    with pytest.raises(BudgetExhausted, match="budget of 2"):
        ledger.reserve(VIDEO_QUERY_ENDPOINT)
    ledger.record(first, 500, "internal_error")
    assert ledger.used() == 2  # a 500 still counts, as on the live API

    day["today"] = date(2024, 1, 6)  # 00:00 UTC: a new day, a new budget
    ledger.reserve(VIDEO_QUERY_ENDPOINT)
    assert (ledger.used(), ledger.used(date(2024, 1, 5))) == (1, 2)
    # Another process reading the same database sees the same count.
    assert RequestLedger(db_url, budget=2, today=lambda: date(2024, 1, 5)).used() == 2


def test_concurrent_collectors_never_exceed_the_budget(db_url):
    budget, workers, attempts = 40, 8, 10
    ledger = RequestLedger(db_url, budget=budget, today=lambda: date(2024, 1, 5))
    granted, refused = [], []
    start = threading.Barrier(workers)

    def collector() -> None:
        start.wait()
        for _ in range(attempts):
            try:
                granted.append(ledger.reserve(VIDEO_QUERY_ENDPOINT))
            except BudgetExhausted:
                refused.append(1)

    threads = [threading.Thread(target=collector) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == budget and len(refused) == workers * attempts - budget
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(ApiRequest)) == budget

"""Prefect flows: each reads like the method section of a paper."""

import logging


class _ThreadTimeoutNotice(logging.Filter):
    """Prefect warns on every run of a sync task with a timeout that the timeout cannot interrupt
    a worker thread mid-call. Ours are backstops for hung runs (checked when the call returns),
    so the notice is no news: it is dropped, and a healthy run prints no WARNING."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Timeout of") and "worker thread" in message)


logging.getLogger("prefect.task_runs").addFilter(_ThreadTimeoutNotice())

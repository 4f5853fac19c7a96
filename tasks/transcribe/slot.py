"""The gpu slot of a run with no Prefect server configured: one lock file per slot.

A local run's Prefect server is temporary and its slot leases die with it, so the next run could
not tell a killed holder from a live one, and freed a live run's slot: two Whisper models loaded
at once. An OS lock (`flock`) is dropped by the kernel when its holder exits, however it exits,
so a slot here is free exactly when its holder is dead, and never before. The lock file says
who holds it (host, pid, start), for the waiting run's log line.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; the caller uses Prefect's limit instead
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

POLL_S = 0.5  # how often a waiting run looks for a free slot


def available() -> bool:
    return fcntl is not None


def slot_folder() -> Path:
    """Beside the temporary Prefect server's database: the same runs share both."""
    from prefect.settings import get_current_settings

    return Path(get_current_settings().home) / "gettok-slots"


@contextmanager
def local_slot(name: str, slots: int, folder: Path | None = None) -> Iterator[int]:
    """Hold one of `slots` slots named `name` until the block ends (or the process dies);
    waits while all are held by live processes. Yields the slot's number."""
    folder = folder or slot_folder()
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    paths = [folder / f"{stem}.{i}.lock" for i in range(max(1, slots))]
    said_waiting = False
    while True:
        for number, path in enumerate(paths):
            fd = _try_lock(path)
            if fd is None:
                continue
            try:
                _write_holder(fd)
                yield number
            finally:
                os.ftruncate(fd, 0)
                os.close(fd)  # closing the only descriptor drops the lock
            return
        if not said_waiting:
            holders = "; ".join(holder_of(p) for p in paths)
            log.info("every %r slot is held by a live run (%s): waiting", name, holders)
            said_waiting = True
        time.sleep(POLL_S)


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write_holder(fd: int) -> None:
    started = datetime.now(UTC).isoformat(timespec="seconds")
    text = f"{socket.gethostname()} pid {os.getpid()} since {started}\n".encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, text, 0)


def holder_of(path: Path) -> str:
    """Who holds the slot, as its holder wrote it (empty once released)."""
    try:
        return path.read_text().strip() or "released"
    except OSError:
        return "unknown"

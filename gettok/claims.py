"""Leases on work items, so that several workers (machines, flow runs) never do one item twice.

A claim is a row in `work_claims` inserted with ON CONFLICT DO NOTHING: on Postgres and SQLite
alike exactly one inserter wins. Leases expire, so a worker killed mid-batch does not block its
items forever; the stage's own idempotence (the database is the source of truth) covers the
rare item finished just as its lease ran out. Claims of dead processes on this host (kill -9)
are dropped at once by the next claim of their stage, so a rerun never waits out their lease.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, select

from gettok import db
from gettok.models.schema import WorkClaim, utcnow


def worker_name() -> str:
    """Host and process: unique among the workers sharing a database."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(
    url: str,
    stage: str,
    video_ids: Iterable[int],
    *,
    lease_s: float = 3600,
    worker: str | None = None,
) -> list[int]:
    """Claim what nobody holds (or whose lease expired); return the ids this worker now holds."""
    worker = worker or worker_name()
    ids = list(dict.fromkeys(video_ids))
    if not ids:
        return []
    now = utcnow()
    engine = db.get_engine(url)
    insert = db.dialect_insert(engine, WorkClaim)
    with db.session_scope(url) as session:
        session.execute(
            delete(WorkClaim).where(WorkClaim.stage == stage, WorkClaim.expires_at < now)
        )
        dead = _dead_local_workers(
            session.scalars(select(WorkClaim.worker).where(WorkClaim.stage == stage).distinct())
        )
        if dead:
            session.execute(
                delete(WorkClaim).where(WorkClaim.stage == stage, WorkClaim.worker.in_(dead))
            )
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = [
                {
                    "stage": stage,
                    "video_id": i,
                    "worker": worker,
                    "claimed_at": now,
                    "expires_at": now + timedelta(seconds=lease_s),
                }
                for i in chunk
            ]
            session.execute(insert.values(rows).on_conflict_do_nothing())
        held = session.scalars(
            select(WorkClaim.video_id).where(
                WorkClaim.stage == stage, WorkClaim.worker == worker, WorkClaim.video_id.in_(ids)
            )
        )
        held = set(held)
    return [i for i in ids if i in held]


def release(url: str, stage: str, video_ids: Iterable[int], *, worker: str | None = None) -> None:
    """Give back this worker's claims (done or not: the stage's own state says which)."""
    worker = worker or worker_name()
    ids = list(video_ids)
    with db.session_scope(url) as session:
        for start in range(0, len(ids), 500):
            session.execute(
                delete(WorkClaim).where(
                    WorkClaim.stage == stage,
                    WorkClaim.worker == worker,
                    WorkClaim.video_id.in_(ids[start : start + 500]),
                )
            )


def _dead_local_workers(workers: Iterable[str]) -> list[str]:
    """Workers named `host:pid[:suffix]` on this host whose process no longer exists."""
    host, dead = socket.gethostname(), []
    for worker in workers:
        parts = worker.split(":")
        if len(parts) >= 2 and parts[0] == host and parts[1].isdigit():
            if not process_alive(int(parts[1])):
                dead.append(worker)
    return dead


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def release_worker(url: str, worker: str | None = None) -> int:
    """Give back every claim of this process, whatever its stage (`host:pid` and the per-call
    `host:pid:suffix` names): for a command that is stopping. Returns how many."""
    worker = worker or worker_name()
    mine = (WorkClaim.worker == worker) | WorkClaim.worker.startswith(f"{worker}:", autoescape=True)
    with db.session_scope(url) as session:
        return session.execute(delete(WorkClaim).where(mine)).rowcount or 0

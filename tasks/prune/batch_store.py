"""The rows behind batch compliance: its tasks (`compliance_tasks`), and the comments it checks.

A task's row, with its ids, is written before the task is created and its task id right after:
a run killed at any point leaves either a task the next run polls, or a row it sends again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, exists, select, update

from gettok.db import session_scope
from gettok.models.schema import CampaignVideo, Comment, ComplianceTask, Video, utcnow

OPEN = ("creating", "processing")


@dataclass
class OpenTask:
    row_id: int
    category: str
    task_id: str | None  # None: the create request may never have been answered
    ids: list[int]
    created_at: datetime


def open_tasks(url: str) -> list[OpenTask]:
    with session_scope(url) as session:
        rows = session.scalars(
            select(ComplianceTask).where(ComplianceTask.state.in_(OPEN)).order_by(ComplianceTask.id)
        ).all()
        return [
            OpenTask(r.id, r.category, r.task_id, [int(i) for i in r.item_ids], r.created_at)
            for r in rows
        ]


def waiting_ids(url: str, category: str) -> set[int]:
    """Ids in tasks still open: decided by their task, not by a page check this run."""
    return {i for task in open_tasks(url) if task.category == category for i in task.ids}


def add_task(url: str, category: str, ids: list[int]) -> int:
    with session_scope(url) as session:
        row = ComplianceTask(
            category=category,
            item_ids=[str(int(i)) for i in ids],
            state="creating",
            available=0,
            unavailable=0,
            undecided=0,
        )
        session.add(row)
        session.flush()
        return row.id


def set_task_id(url: str, row_id: int, task_id: str) -> None:
    with session_scope(url) as session:
        session.execute(
            update(ComplianceTask)
            .where(ComplianceTask.id == row_id)
            .values(task_id=task_id, state="processing", updated_at=utcnow())
        )


def close_task(
    url: str, row_id: int, state: str, counts: tuple[int, int, int] = (0, 0, 0), error: str = ""
) -> None:
    """The task is over: applied (with available, unavailable, undecided), failed or expired."""
    available, unavailable, undecided = counts
    with session_scope(url) as session:
        session.execute(
            update(ComplianceTask)
            .where(ComplianceTask.id == row_id)
            .values(
                state=state,
                available=available,
                unavailable=unavailable,
                undecided=undecided,
                last_error=error or None,
                updated_at=utcnow(),
            )
        )


def unpruned(url: str, video_ids: Iterable[int]) -> list[int]:
    """Those of the videos not pruned yet (a task applied again after a kill prunes each once)."""
    ids, found = list(video_ids), []
    for start in range(0, len(ids), 1000):
        with session_scope(url) as session:
            found += session.scalars(
                select(Video.id).where(
                    Video.id.in_(ids[start : start + 1000]), Video.pruned_at.is_(None)
                )
            ).all()
    return sorted(found)


def due_comments(
    url: str,
    campaign_id: int | None,
    checked_before: datetime,
    limit: int,
    after_id: int | None = None,
) -> list[int]:
    """Comments of unpruned videos not found available since `checked_before`, paged by id."""
    query = (
        select(Comment.id)
        .join(Video, Video.id == Comment.video_id)
        .where(
            Video.pruned_at.is_(None),
            Comment.compliance_checked_at.is_(None)
            | (Comment.compliance_checked_at < checked_before),
        )
    )
    if campaign_id is not None:
        query = query.where(
            exists().where(
                CampaignVideo.video_id == Comment.video_id,
                CampaignVideo.campaign_id == campaign_id,
            )
        )
    if after_id is not None:
        query = query.where(Comment.id > after_id)
    with session_scope(url) as session:
        return list(session.scalars(query.order_by(Comment.id).limit(limit)).all())


def mark_comments_checked(url: str, ids: Iterable[int]) -> None:
    ids = list(ids)
    for start in range(0, len(ids), 1000):
        with session_scope(url) as session:
            session.execute(
                update(Comment)
                .where(Comment.id.in_(ids[start : start + 1000]))
                .values(compliance_checked_at=utcnow())
            )


def delete_comments(url: str, ids: Iterable[int]) -> int:
    """Comments the API says are gone: their rows go (text, author and counts with them)."""
    ids, deleted = list(ids), 0
    for start in range(0, len(ids), 1000):
        with session_scope(url) as session:
            deleted += session.execute(
                delete(Comment).where(and_(Comment.id.in_(ids[start : start + 1000])))
            ).rowcount
    return deleted

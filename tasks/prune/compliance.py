"""Compliance: delete what is no longer public, and record what went.

The Research API terms ask researchers to refresh their data at least every 15 days and delete what
the author made private or removed. Each video's tiktok.com page is read with the download stage's
own page reader, files or not; only an explicit "private" or "removed" answer deletes anything. A
network error, a throttle, a page that cannot be read: the video is left as it is and counted as
transient, to be checked again by the next run. A video another stage already found private or
removed is pruned without asking again.

Rows go first, files second (issue 20 #9): one transaction marks the video pruned, deletes its
derived text (transcripts, annotations), frames and media facts, and opens a `pruning` record
listing its files; then the files go and the record is closed. A run killed in between leaves a
video that no export or stage treats as public, and the next run deletes its files and closes the
record (`finish_pruned`). Metadata rows stay (the API's records); public exports leave them out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

import requests
from pydantic import BaseModel, Field

from gettok.clients.tiktok_web import PageFailure, read_page, video_url
from gettok.models.schema import (
    DownloadStatus,
)
from gettok.stage import StageResult
from gettok.tasks.prune import store

log = logging.getLogger(__name__)

PRUNED = (DownloadStatus.private, DownloadStatus.removed)


class PageCheck(BaseModel):
    video_id: int
    verdict: str  # public | private | removed | age_restricted | transient
    reason: str = ""


class PruneResult(BaseModel):
    checked: int = 0
    public: int = 0
    pruned: dict[str, int] = Field(default_factory=dict)  # by reason: private, removed...
    age_restricted: int = 0  # still on the site behind a login: kept, recorded, not due again
    transient: int = 0  # not decided this run: nothing deleted, checked again next run
    files_removed: int = 0
    finished: int = 0  # prunes a killed run (or another stage) left with files on disk
    pruned_ids: list[int] = Field(default_factory=list)
    transient_reasons: dict[str, int] = Field(default_factory=dict)
    stopped_early: bool = False  # too many transient answers in a row (site down or blocking)

    def add(self, other: PruneResult) -> PruneResult:
        merged = self.model_copy(deep=True)
        counts = ("checked", "public", "age_restricted", "transient", "files_removed", "finished")
        for name in counts:
            setattr(merged, name, getattr(self, name) + getattr(other, name))
        for name in ("pruned", "transient_reasons"):
            counts = getattr(merged, name)
            for key, value in getattr(other, name).items():
                counts[key] = counts.get(key, 0) + value
        merged.pruned_ids += other.pruned_ids
        merged.stopped_early = self.stopped_early or other.stopped_early
        return merged

    def stage_result(self) -> StageResult:
        """Pruned videos are done; still public ones skipped; undecided pages by reason."""
        return StageResult(
            stage="prune",
            done=sum(self.pruned.values()),
            skipped=self.public + self.age_restricted,
            failed=dict(self.transient_reasons),
            counts={
                "files removed": self.files_removed,
                "prunes finished": self.finished,
                "age restricted": self.age_restricted,
            }
            | dict(self.pruned),
            notes=["stopped early: too many undecided pages in a row"]
            if self.stopped_early
            else [],
        )

    def summary(self) -> str:
        pruned = ", ".join(f"{n} {k}" for k, n in sorted(self.pruned.items())) or "none"
        return (
            f"{self.checked} checked: {self.public} still public, {self.age_restricted} age "
            f"restricted (kept), pruned {pruned} "
            f"({self.files_removed} files), {self.transient} undecided (kept, checked again "
            f"next run){'; stopped early' if self.stopped_early else ''}"
        )


def check_page(
    web_url: str, video_id: int, username: str | None, timeout_s: float = 20.0
) -> PageCheck:
    """Whether the video's page still shows it publicly; any doubt is `transient`.

    The page must show this video (a redirect to another one proves nothing). An age-restricted
    page is no evidence of removal: the video is there behind a login, and says so.
    """
    try:
        read_page(video_url(web_url, username, video_id), timeout_s=timeout_s, video_id=video_id)
    except PageFailure as failure:
        if failure.status in PRUNED:
            return PageCheck(video_id=video_id, verdict=str(failure.status), reason=failure.reason)
        if failure.status == DownloadStatus.age_restricted:
            return PageCheck(video_id=video_id, verdict="age_restricted", reason=failure.reason)
        # blocked, transient, invalid (a page without a media address is still a public page)
        verdict = "public" if failure.status == DownloadStatus.invalid else "transient"
        return PageCheck(video_id=video_id, verdict=verdict, reason=str(failure))
    except (requests.RequestException, OSError, ValueError) as exc:
        return PageCheck(video_id=video_id, verdict="transient", reason=type(exc).__name__)
    return PageCheck(video_id=video_id, verdict="public")


def files_on_disk(media_dir: Path, video_id: int) -> list[str]:
    """Files in the stages' own places for a video, rows or not (a run killed between writing a
    file and its row leaves one): `videos/<id>.mp4`, `slides/<id>/`, `frames/<id>/`."""
    vid = str(int(video_id))
    found = [media_dir / "videos" / f"{vid}.mp4"]
    for folder in (media_dir / "slides" / vid, media_dir / "frames" / vid):
        if folder.is_dir():
            found += sorted(p for p in folder.rglob("*") if p.is_file())
    return [p.relative_to(media_dir).as_posix() for p in found if p.is_file()]


def _inside(media_dir: Path, relative: str) -> Path | None:
    """The file under the media directory; None for a path that escapes it."""
    root = media_dir.resolve()
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) else None


def remove_files(media_dir: Path, paths: Iterable[str]) -> int:
    """Delete the files (missing ones are fine: a rerun after a kill) and emptied folders."""
    removed = 0
    for relative in paths:
        path = _inside(media_dir, relative)
        if path is None:
            log.warning("not deleting %s: outside the media directory", relative)
            continue
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed += 1
        parent = path.parent
        while parent != media_dir.resolve() and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    return removed


def prune_video(url: str, media_dir: Path, video_id: int, reason: str) -> int:
    """Prune one video: its rows first (pruned, derived text gone, a `pruning` record of its
    files), then its files, then the record closed; returns the files removed. Safe to rerun at
    any point: a rerun finds the open record and finishes it."""
    known = store.stored_paths(url, video_id)
    paths = list(dict.fromkeys(known + files_on_disk(media_dir, video_id)))
    store.mark_pruning(url, video_id, reason, paths)
    removed = remove_files(media_dir, paths + files_on_disk(media_dir, video_id))
    store.mark_files_removed(url, video_id)
    return removed


def finish_pruned(
    url: str, media_dir: Path, campaign_id: int | None = None, batch_size: int = 500
) -> PruneResult:
    """Prune what is already known gone, without asking the site again: prunes a killed run left
    open, videos marked pruned by another stage, and videos the download stage found private or
    removed (issue 20 #1: their captions and transcripts reached the public export)."""
    result = PruneResult()
    for select_batch in (store.unfinished, store.known_gone):
        after = None
        while batch := select_batch(url, campaign_id, batch_size, after):
            for video_id, reason in batch:
                try:
                    result.files_removed += prune_video(url, media_dir, video_id, reason)
                    result.finished += 1
                except OSError as exc:  # its record stays open: the next run tries again
                    log.warning("video %s: files not deleted yet: %s", video_id, exc)
                    result.transient += 1
                    key = f"files: {type(exc).__name__}"
                    result.transient_reasons[key] = result.transient_reasons.get(key, 0) + 1
            after = batch[-1][0]
    return result


def prune_videos(
    url: str,
    media_dir: Path,
    web_url: str,
    videos: Iterable[tuple[int, str | None]],
    *,
    timeout_s: float = 20.0,
    interval_s: float = 0.0,
    max_transient_in_a_row: int = 20,
) -> PruneResult:
    """Re-check each video's page and prune the ones that are private or removed.

    `interval_s` spaces the page requests; a run of `max_transient_in_a_row` undecided answers
    stops it (the site is down or blocking us: asking more only prolongs the block).
    """
    result = PruneResult()
    in_a_row = 0
    public: list[int] = []
    restricted: list[int] = []
    for n, (video_id, username) in enumerate(videos):
        if in_a_row >= max_transient_in_a_row:
            result.stopped_early = True
            break
        if n and interval_s:
            time.sleep(interval_s)
        verdict = check_page(web_url, video_id, username, timeout_s)
        in_a_row = in_a_row + 1 if verdict.verdict == "transient" else 0
        result.checked += 1
        if verdict.verdict == "public":
            result.public += 1
            public.append(video_id)
        elif verdict.verdict == "age_restricted":
            result.age_restricted += 1
            restricted.append(video_id)
        elif verdict.verdict in ("private", "removed"):
            try:
                result.files_removed += prune_video(url, media_dir, video_id, verdict.verdict)
            except OSError as exc:  # rows are pruned, the record stays open: finished next run
                log.warning("video %s: files not deleted yet: %s", video_id, exc)
            result.pruned[verdict.verdict] = result.pruned.get(verdict.verdict, 0) + 1
            result.pruned_ids.append(video_id)
        else:
            result.transient += 1
            key = verdict.reason.split(":")[0] or "unknown"
            result.transient_reasons[key] = result.transient_reasons.get(key, 0) + 1
        if len(public) + len(restricted) >= 100:
            store.mark_checked(url, public)
            store.mark_checked(url, restricted, "age_restricted")
            public.clear()
            restricted.clear()
    store.mark_checked(url, public)
    store.mark_checked(url, restricted, "age_restricted")
    return result

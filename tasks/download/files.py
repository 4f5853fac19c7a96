"""Where a video's files go, and what killed runs leave behind in `.partial/`."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path

from gettok import claims


def video_file(media_dir: Path, video_id: int) -> Path:
    return media_dir / "videos" / f"{int(video_id)}.mp4"


def slides_folder(media_dir: Path, video_id: int) -> Path:
    return media_dir / "slides" / str(int(video_id))


def partial_dir(media_dir: Path) -> Path:
    return media_dir / ".partial"


def partial_name(video_id: int, suffix: str) -> str:
    # host and pid in the name let a later run tell a dead run's leftovers from live work
    return f"{int(video_id)}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}"


def remove_stale_partials(media_dir: Path) -> int:
    """Delete what killed runs on this host left in `.partial/`; return how many were removed."""
    folder, host, removed = partial_dir(media_dir), socket.gethostname(), 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        parts = entry.name.split(".")
        if len(parts) < 4 or parts[1] != host or not parts[2].isdigit():
            continue
        if claims.process_alive(int(parts[2])):
            continue
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
        removed += 1
    return removed

"""Media validation and probing: is a downloaded file a playable mp4, and what is in it.

The studies lost 9.2% of videos to files that were not videos (HTML pages, cut-off transfers), so
nothing is stored as `ok` without passing `probe_media`: an `ftyp` box first, top-level boxes that
fit the file (a cut-off transfer fails here even when its header is intact), a container PyAV
opens, a video stream, and one decodable frame. Everything else comes from headers, so probing a
one-minute clip costs one frame's decode, not the whole file's.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import ClassVar

import av
from pydantic import BaseModel
from sqlalchemy.orm import Session

from gettok.models.schema import MediaInfo as MediaInfoRow
from gettok.models.schema import utcnow


class MediaInfo(BaseModel):
    """What a valid file holds, from its headers (and one decoded frame)."""

    duration_s: float
    fps: float
    frame_count: int
    width: int
    height: int
    has_audio: bool
    video_codec: str
    audio_codec: str | None = None
    bytes: int


class MediaProblem(Exception):
    """A file that is not a usable video; `reason` is a short fixed word the download stage maps."""

    reason: ClassVar[str] = "invalid"

    def __init__(self, path: Path | str, detail: str):
        super().__init__(f"{self.reason}: {detail} ({Path(path).name})")
        self.path = Path(path)
        self.detail = detail


class EmptyFile(MediaProblem):
    reason = "empty"


class NotMp4(MediaProblem):
    """No `ftyp` box first: an HTML page, a JSON error, or some other format."""

    reason = "not_mp4"


class TruncatedMedia(MediaProblem):
    """An mp4 whose boxes run past the end of the file: a cut-off transfer."""

    reason = "truncated"


class NoVideoStream(MediaProblem):
    """A valid container with audio and no video."""

    reason = "no_video_stream"


class UndecodableMedia(MediaProblem):
    """A container that opens but yields no video frame (zero-length or corrupt)."""

    reason = "undecodable"


def sniff(head: bytes) -> str:
    """What the first bytes of a body look like: "mp4", "html", "empty" or "unknown".

    Lets a downloader stop reading an HTML page early; `probe_media` is still the verdict.
    """
    if not head:
        return "empty"
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "mp4"
    text = head[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<"):  # <!DOCTYPE html>, <html>, <?xml ...>
        return "html"
    return "unknown"


def check_mp4_boxes(path: Path | str) -> None:
    """Raise unless the file starts with `ftyp` and its top-level boxes end exactly at its end."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise EmptyFile(path, "0 bytes")
    with path.open("rb") as f:
        head = f.read(16)
        kind = sniff(head)
        if kind != "mp4":
            shown = "an HTML page" if kind == "html" else f"starts with {head[:8]!r}"
            raise NotMp4(path, shown)
        offset, boxes = 0, []
        while offset < size:
            f.seek(offset)
            header = f.read(16)
            if len(header) < 8:
                raise TruncatedMedia(path, f"{size - offset} stray bytes after the last box")
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if box_size == 1:
                if len(header) < 16:
                    raise TruncatedMedia(path, "cut inside a box header")
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:  # "to the end of the file": legal for the last box only
                box_size = size - offset
            if box_size < 8:
                raise NotMp4(path, f"box {box_type!r} has impossible size {box_size}")
            if offset + box_size > size:
                missing = offset + box_size - size
                raise TruncatedMedia(path, f"box {box_type!r} is {missing} bytes short")
            boxes.append(box_type)
            offset += box_size
    if b"moov" not in boxes:
        raise TruncatedMedia(path, "no moov box (index missing)")


def probe_media(path: Path | str) -> MediaInfo:
    """Validate `path` as a playable mp4 and read its properties; raise a MediaProblem if not."""
    path = Path(path)
    check_mp4_boxes(path)
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, ValueError) as exc:
        raise UndecodableMedia(path, f"container does not open: {exc}") from exc
    with container:
        if not container.streams.video:
            if container.streams.audio:
                raise NoVideoStream(path, "audio only")
            raise UndecodableMedia(path, "no stream with samples (zero-length)")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        first = None
        try:
            for frame in container.decode(video):
                first = frame
                break
        except av.FFmpegError as exc:
            raise UndecodableMedia(path, f"first frame does not decode: {exc}") from exc
        if first is None:
            raise UndecodableMedia(path, "no video frame")
        fps = float(video.average_rate or video.guessed_rate or 0) or 0.0
        if video.duration is not None and video.time_base is not None:
            duration = float(video.duration * video.time_base)
        else:
            duration = (container.duration or 0) / av.time_base
        frame_count = video.frames or round(duration * fps)
        codec_name = video.codec_context.name
        return MediaInfo(
            duration_s=round(duration, 3),
            fps=round(fps, 3),
            frame_count=max(1, frame_count),
            width=first.width or video.codec_context.width,
            height=first.height or video.codec_context.height,
            has_audio=audio is not None,
            video_codec=codec_name,
            audio_codec=audio.codec_context.name if audio is not None else None,
            bytes=path.stat().st_size,
        )


def save_media_info(session: Session, video_id: int, info: MediaInfo) -> None:
    """Insert or update the `media_info` row of a video."""
    row = session.get(MediaInfoRow, video_id) or MediaInfoRow(video_id=video_id)
    for field in ("duration_s", "fps", "frame_count", "width", "height", "has_audio"):
        setattr(row, field, getattr(info, field))
    row.video_codec, row.audio_codec, row.probed_at = info.video_codec, info.audio_codec, utcnow()
    session.add(row)

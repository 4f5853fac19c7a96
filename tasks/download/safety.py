"""Checks before a media body is fetched or written: where it comes from, its size, the disk.

A page names its media addresses, and a page can be wrong (or hostile): media comes only from
TikTok's CDNs (or, in the sandbox, the configured host), never from loopback or private addresses
when the configured site is public; a body larger than the configured maximum is refused by its
Content-Length and again while streaming; and a write that would leave the disk with less than
the configured reserve fails that one video with a message that says so.
"""

from __future__ import annotations

import functools
import ipaddress
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

MB = 1024**2


class RefusedMedia(Exception):
    """A media address or body the stage will not fetch (host, scheme, size)."""


class DiskFull(OSError):
    """Not enough free space for this video: fails the video, not the batch."""


@functools.lru_cache(maxsize=4096)  # one lookup per host and process, not per request
def _host_is_private(host: str) -> bool:
    """Whether `host` is, or resolves to, a loopback, private, link-local or reserved address."""
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror:
            return False  # unresolvable: the request fails on its own, as a network error
        addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    return any(
        a.is_loopback or a.is_private or a.is_link_local or a.is_reserved or a.is_unspecified
        for a in addresses
    )


def check_media_address(address: str, site_url: str, cdn_suffixes: list[str]) -> None:
    """Raise RefusedMedia unless `address` is an http(s) URL on the site's host or a TikTok CDN.

    When the configured site is itself local (the sandbox), its host is the expected one; when it
    is public (production), no media address may point at a private or loopback address.
    """
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedMedia(f"media address is not http(s): {address[:80]!r}")
    host, site_host = parts.hostname.lower(), (urlsplit(site_url).hostname or "").lower()
    if host == site_host:
        return
    if not any(host == s.lstrip(".") or host.endswith("." + s.lstrip(".")) for s in cdn_suffixes):
        raise RefusedMedia(f"media host {host!r} is not an expected TikTok host")
    if not _host_is_private(site_host) and _host_is_private(host):
        raise RefusedMedia(f"media host {host!r} is a private or loopback address")


def check_size(promised: int | None, max_bytes: int) -> None:
    if promised is not None and promised > max_bytes:
        raise RefusedMedia(f"media too large: {promised} bytes promised, at most {max_bytes}")


def check_free_space(folder: Path, needed: int | None, reserve_bytes: int) -> None:
    """Raise DiskFull when writing `needed` bytes in `folder` would eat into the reserve."""
    free = shutil.disk_usage(folder).free
    if free - (needed or 0) < reserve_bytes:
        raise DiskFull(
            f"disk full: {free // MB} MB free in {folder}, this video needs "
            f"{(needed or 0) // MB} MB and {reserve_bytes // MB} MB are kept free"
        )


def is_refused_connection(exc: BaseException) -> bool:
    """Whether a network error is a refused connection (nothing listens, or a firewall)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or "Connection refused" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__ or (seen.args[0] if seen.args else None)
        if not isinstance(seen, BaseException):
            return False
    return False

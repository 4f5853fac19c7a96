"""A stage package's public names, imported from their modules on first use.

A package `__init__` that imported every module at once would pull in the Prefect tasks of its
flows; commands that need no orchestration (export, report, enrich --dry-run) must not pay that.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` serving each name in `homes` from `package.<its module>`."""

    def __getattr__(name: str) -> Any:
        if name in homes:
            return getattr(import_module(f"{package}.{homes[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__

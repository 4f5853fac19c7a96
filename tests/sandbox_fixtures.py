"""Reusable sandbox fixtures (registered by the lead's conftest via `pytest_plugins`).

- `sandbox_config`: the config a test's sandbox starts with; override it in a test module.
- `sandbox`: a running sandbox (fresh per test; starts in ~0.1 s) with `.base_url` and `.state`.
- `sandbox_env`: `settings_env` plus the variables that point gettok and the openai SDK at it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.server import RunningSandbox, running_sandbox


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """No faults, repeatable fault draws once a test turns faults on."""
    return SandboxConfig(fault_seed=20221207)


@pytest.fixture
def sandbox(sandbox_config: SandboxConfig) -> Iterator[RunningSandbox]:
    with running_sandbox(sandbox_config) as running:
        yield running


@pytest.fixture
def sandbox_env(sandbox: RunningSandbox, settings_env, monkeypatch) -> RunningSandbox:
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    return sandbox

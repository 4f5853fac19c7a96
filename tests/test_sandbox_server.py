"""Serving the sandbox: in a thread for tests, and `gettok sandbox` in the foreground."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.server import running_sandbox


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_running_sandbox_serves_then_stops():
    with running_sandbox(SandboxConfig(seed=11)) as sandbox:
        health = httpx.get(f"{sandbox.base_url}/_sandbox/health").json()
        assert health["ok"] and health["seed"] == 11 and "research_api" in health["routers"]
        env = sandbox.env()
        assert env["GETTOK_TIKTOK_API_URL"] == sandbox.base_url
        assert env["OPENAI_BASE_URL"] == f"{sandbox.base_url}/v1"
        base_url = sandbox.base_url
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base_url}/_sandbox/health", timeout=1)


def test_gettok_sandbox_command_serves_in_the_foreground(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GETTOK_")}
    env |= {"GETTOK_SANDBOX_SEED": "77", "GETTOK_SANDBOX_API__ERROR_500": "1.0"}
    cli = [sys.executable, "-m", "gettok.cli", "sandbox", "--port", str(port)]
    proc = subprocess.Popen(cli, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"{base_url}/_sandbox/health", timeout=1).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, "the sandbox exited"
                time.sleep(0.2)
        else:
            pytest.fail("gettok sandbox did not answer")
        assert health["seed"] == 77  # GETTOK_SANDBOX_* configure it
        assert httpx.get(f"{base_url}/_sandbox/config").json()["api"]["error_500"] == 1.0
        # Another process changes its faults while it runs (what the chaos suite does).
        patched = httpx.post(f"{base_url}/_sandbox/config", json={"api": {"error_500": 0.25}})
        assert patched.json()["config"]["api"]["error_500"] == 0.25
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert f"export GETTOK_TIKTOK_API_URL={base_url}" in out
    assert f"export OPENAI_BASE_URL={base_url}/v1" in out

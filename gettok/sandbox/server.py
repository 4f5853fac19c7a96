"""Run the sandbox: in a background thread for tests (`running_sandbox`), or in the foreground
for `gettok sandbox --port P` (`serve`)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from gettok.sandbox.app import create_app
from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.state import SandboxState


@dataclass
class RunningSandbox:
    base_url: str
    state: SandboxState

    def env(self) -> dict[str, str]:
        """The variables that point gettok (and the openai SDK) at this sandbox."""
        return sandbox_env(self.base_url, self.state.config)


def sandbox_env(base_url: str, config: SandboxConfig) -> dict[str, str]:
    return {
        "GETTOK_TIKTOK_API_URL": base_url,
        "GETTOK_TIKTOK_WEB_URL": base_url,
        "GETTOK_TIKTOK_CLIENT_KEY": config.client_key,
        "GETTOK_TIKTOK_CLIENT_SECRET": config.client_secret,
        # The sandbox finishes a batch compliance task within a poll or two: poll every second.
        "GETTOK_PRUNE_BATCH_POLL_S": "1",
        "OPENAI_BASE_URL": f"{base_url}/v1",
        "OPENAI_API_KEY": "sandbox-openai-key",
    }


def _server(state: SandboxState) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(state), log_level="warning", access_log=False, lifespan="off"
    )
    return uvicorn.Server(config)


@contextmanager
def running_sandbox(
    config: SandboxConfig | None = None, port: int = 0, host: str = "127.0.0.1"
) -> Iterator[RunningSandbox]:
    """Serve the sandbox on a free port (or `port`) in a daemon thread until the block ends."""
    state = SandboxState(config or SandboxConfig())
    server = _server(state)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    base_url = f"http://{host}:{sock.getsockname()[1]}"
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="gettok-sandbox"
    )
    thread.start()
    try:
        _wait_until_up(base_url, thread)
        yield RunningSandbox(base_url, state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _wait_until_up(base_url: str, thread: threading.Thread, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the sandbox server stopped while starting")
        try:
            if httpx.get(f"{base_url}/_sandbox/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the sandbox at {base_url} did not answer within {timeout_s:.0f}s")


def serve(config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve in the foreground until interrupted."""
    state = SandboxState(config or SandboxConfig())
    uvicorn.run(create_app(state), host=host, port=port, log_level="info", lifespan="off")

"""The sandbox as one FastAPI app: Research API, tiktok.com pages and media, OpenAI-compatible
chat completions, plus `/_sandbox/*` routes to check health and change faults while it runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from gettok.sandbox import compliance, openai_api, research_api, research_extras, web
from gettok.sandbox.state import SandboxState


def create_app(state: SandboxState | None = None) -> FastAPI:
    state = state or SandboxState()
    app = FastAPI(title="gettok sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = state
    for module in (research_api, research_extras, compliance, web, openai_api):
        app.include_router(module.build_router(state))

    @app.get("/_sandbox/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "seed": state.config.seed, "routers": _routers()}

    @app.get("/_sandbox/config")
    async def show_config() -> dict[str, Any]:
        return state.config.model_dump(mode="json", exclude={"client_secret"})

    @app.post("/_sandbox/config")
    async def patch_config(patch: Annotated[dict[str, Any], Body()]) -> JSONResponse:
        """Merge a JSON patch into the config, e.g. `{"api": {"error_500": 0.1}}`."""
        try:
            new = state.update_config(patch)
        except ValidationError as exc:
            return JSONResponse(
                {"ok": False, "errors": exc.errors(include_url=False, include_input=False)},
                status_code=422,
            )
        return JSONResponse(
            {"ok": True, "config": new.model_dump(mode="json", exclude={"client_secret"})}
        )

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, Any]:
        """Forget quota usage, tokens and searches (a new UTC day, for tests)."""
        state.reset_usage()
        return {"ok": True}

    @app.get("/_sandbox/counters")
    async def counters() -> dict[str, Any]:
        return {
            "counters": dict(state.counters),
            "requests_today": state.requests_by_day[state.today()],
        }

    return app


def _routers() -> list[str]:
    return ["research_api", "research_extras", "compliance", "web", "openai_api"]

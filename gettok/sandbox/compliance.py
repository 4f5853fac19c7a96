"""The Research API's batch compliance endpoints, as documented, in the sandbox's one world.

`POST /v2/research/validation_task/create/` takes multipart form data: `file_data` (a text
file, one id a line, at most 10,000) and `category` (`video` or `comment`); it answers
`{"data": {"task_id": N}}` with a 20-digit id, as the documentation's example. Anything else
is 400 invalid_params.

`POST /v2/research/validation_task_status/get/` takes `{"task_id": N}`. Its answer body is not
documented where we could read it; the sandbox serves what the client reads
(`gettok.clients.research_compliance`): `{"data": {"task_id", "status": "processing" |
"success" | "failed", "valid_ids": [...], "invalid_ids": [...]}}`, the lists only once done.

The verdicts agree with the tiktok.com pages: a video whose page is private or removed (or that
the sandbox never made) is invalid; a comment is invalid for a seeded share of ids
(`compliance.comment_gone_share`: deleted since collection). Both
endpoints spend the daily quota and draw the video query's 500s and 429s; with
`compliance.offered` false they answer 404, as for an account without them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gettok.sandbox.research_api import (
    ApiFailure,
    _authorise,
    _count_request,
    _json_body,
    _log_id,
)
from gettok.sandbox.state import SandboxState

MAX_IDS = 10_000
FIRST_TASK_ID = 12345678910987654321  # the documentation's example: beyond 64 bits


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter()

    @router.post("/v2/research/validation_task/create/")
    async def create(request: Request) -> JSONResponse:
        try:
            _offered(state)
            _authorise(state, request)
            _count_request(state)
            category, ids = await _submission(request)
            task_id = _new_task(state, category, ids)
        except ApiFailure as failure:
            return failure.response()
        return _ok({"task_id": task_id})

    @router.post("/v2/research/validation_task_status/get/")
    async def status(request: Request) -> JSONResponse:
        try:
            _offered(state)
            _authorise(state, request)
            _count_request(state)
            body = await _json_body(request)
            answer = _status(state, body.get("task_id"))
        except ApiFailure as failure:
            return failure.response()
        return _ok(answer)

    return router


def _offered(state: SandboxState) -> None:
    if not state.config.compliance.offered:
        raise ApiFailure(404, "not_found", "The requested resource was not found.")


async def _submission(request: Request) -> tuple[str, list[int]]:
    try:
        form = await request.form()
    except Exception:  # not multipart form data at all
        raise ApiFailure(400, "invalid_params", "The request needs form data.") from None
    category = str(form.get("category") or "")
    upload = form.get("file_data")
    if category not in ("video", "comment"):
        raise ApiFailure(400, "invalid_params", f"category {category!r} is invalid")
    if upload is None or isinstance(upload, str):
        raise ApiFailure(400, "invalid_params", "file_data is required")
    lines = [line.strip() for line in (await upload.read()).decode(errors="replace").split()]
    if not lines or not all(line.isdigit() for line in lines):
        raise ApiFailure(400, "invalid_params", "file_data must hold one id per line")
    if len(lines) > MAX_IDS:
        raise ApiFailure(400, "invalid_params", f"at most {MAX_IDS} ids per task")
    return category, [int(line) for line in lines]


def _new_task(state: SandboxState, category: str, ids: list[int]) -> int:
    with state.lock:
        task_id = FIRST_TASK_ID + len(state.compliance_tasks)
        state.compliance_tasks[task_id] = {
            "category": category,
            "ids": ids,
            "polls": 0,
            "failed": state.chance(state.config.compliance.failed_task),
        }
        state.counters["compliance_tasks"] += 1
    return task_id


def _status(state: SandboxState, raw_id: Any) -> dict[str, Any]:
    try:
        task_id = int(str(raw_id))
    except ValueError:
        task_id = -1
    with state.lock:
        task = state.compliance_tasks.get(task_id)
        if task is None:
            raise ApiFailure(400, "invalid_params", f"task_id {raw_id!r} is invalid")
        task["polls"] += 1
        waiting = task["polls"] <= state.config.compliance.processing_polls
    if waiting:
        return {"task_id": task_id, "status": "processing"}
    if task["failed"]:
        return {"task_id": task_id, "status": "failed"}
    gone = [i for i in task["ids"] if _gone(state, task["category"], i)]
    kept = sorted(set(task["ids"]) - set(gone))
    return {"task_id": task_id, "status": "success", "valid_ids": kept, "invalid_ids": gone}


def _gone(state: SandboxState, category: str, item_id: int) -> bool:
    if category == "video":
        video = state.corpus.get(item_id)
        return video is None or video.web_state in ("private", "removed")
    digest = hashlib.sha256(f"gone:{state.config.seed}:{item_id}".encode()).digest()
    return digest[0] / 256 < state.config.compliance.comment_gone_share


def _ok(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse(
        {"data": data, "error": {"code": "ok", "message": "", "log_id": _log_id()}},
    )

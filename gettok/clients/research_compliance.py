"""The Research API's batch compliance endpoints: which stored videos and comments are still there.

Documented (developers.tiktok.com/doc/batch-compliance-apis, read 2026-11-30):
- `POST /v2/research/validation_task/create/`, multipart form data: `file_data`, a text file of
  video or comment ids (at most 10,000), and `category` (`video` or `comment`); the answer is
  `{"data": {"task_id": 12345678910987654321}, "error": {"code": "ok", ...}}`. The documented
  task id has 20 digits, beyond a signed 64-bit integer: it is kept as text.
- `POST /v2/research/validation_task_status/get/`, JSON body `{"task_id": N}`.

NOT documented where we could read it: the status answer's body. We read it defensively
(`parse_task_status`): a state (`status` or `task_status`) that says done, failed or still
processing, and id lists; an id is gone only when a list of unavailable ids names it, available
only when a list of available ids does, and undecided otherwise (checked on its page instead).
An answer naming ids we never sent is refused whole: nothing is deleted on a misread answer.

An account without the endpoints (404, or a 403/400 about permission or scope) gets
`ComplianceNotOffered`, and prune falls back to page checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gettok.clients.api_faults import ApiFault, RequestRejected
from gettok.clients.research_api import ResearchApiClient

CREATE_PATH = "/v2/research/validation_task/create/"
CREATE_ENDPOINT = "research/validation_task/create"
STATUS_PATH = "/v2/research/validation_task_status/get/"
STATUS_ENDPOINT = "research/validation_task_status/get"
MAX_TASK_IDS = 10_000
Category = Literal["video", "comment"]
TaskState = Literal["processing", "done", "failed"]

# How the status answer may name its parts (undocumented: see the module docstring).
STATE_KEYS = ("status", "task_status", "state")
DONE_WORDS = {"done", "success", "succeeded", "finished", "completed", "complete"}
FAILED_WORDS = {"failed", "fail", "error", "expired"}
AVAILABLE_KEYS = ("valid_ids", "available_ids", "compliant_ids", "valid_id_list")
UNAVAILABLE_KEYS = (
    "invalid_ids",
    "unavailable_ids",
    "non_compliant_ids",
    "deleted_ids",
    "invalid_id_list",
)


class ComplianceNotOffered(ApiFault):
    """The account cannot use batch compliance: check pages instead."""

    kind = "compliance_not_offered"


class MalformedTaskStatus(ApiFault):
    """A status answer that cannot be trusted (ids we never sent): nothing is decided on it."""

    kind = "malformed_task_status"


@dataclass
class TaskStatus:
    task_id: str
    state: TaskState
    available: set[int] = field(default_factory=set)
    unavailable: set[int] = field(default_factory=set)
    raw: dict[str, Any] = field(default_factory=dict)


def create_task(client: ResearchApiClient, category: Category, ids: list[int]) -> str:
    """Submit up to 10,000 ids; the task id, as text."""
    if not ids or len(ids) > MAX_TASK_IDS:
        raise ValueError(f"a compliance task takes 1 to {MAX_TASK_IDS} ids, not {len(ids)}")
    file_data = "\n".join(str(int(i)) for i in ids).encode()
    return _offered(
        lambda: client.post(
            CREATE_PATH,
            CREATE_ENDPOINT,
            form={"category": category},
            files={"file_data": ("ids.txt", file_data, "text/plain")},
            parse=_task_id,
        )
    )


def task_status(client: ResearchApiClient, task_id: str, sent: set[int]) -> TaskStatus:
    """The task's state and what it decided about the ids in `sent` (what we submitted)."""
    return _offered(
        lambda: client.post(
            STATUS_PATH,
            STATUS_ENDPOINT,
            json_body={"task_id": int(task_id)},
            parse=lambda payload: (parse_task_status(task_id, payload, sent), 1),
        )
    )


def _offered(call):
    try:
        return call()
    except ApiFault as fault:
        if not_offered(fault):
            raise ComplianceNotOffered(str(fault), fault.status_code, fault.error_code) from None
        raise


def not_offered(fault: ApiFault) -> bool:
    """A 404, or a refusal about permission or scope: the account has no batch compliance."""
    if fault.status_code == 404:
        return True
    words = f"{fault.error_code or ''} {fault}".lower()
    refusal = isinstance(fault, RequestRejected) or fault.status_code == 403
    return refusal and any(w in words for w in ("permission", "scope", "not permitted"))


def _task_id(payload: dict[str, Any]) -> tuple[str, int]:
    task_id = (payload.get("data") or {}).get("task_id")
    if isinstance(task_id, bool) or not str(task_id or "").strip().isdigit():
        raise MalformedTaskStatus(f"no task id in the answer: {task_id!r}", 200, "no_task_id")
    return str(task_id).strip(), 0


def parse_task_status(task_id: str, payload: dict[str, Any], sent: set[int]) -> TaskStatus:
    """Read a status answer (shape undocumented: see the module docstring)."""
    data = payload.get("data") or {}
    word = next((str(data[k]).lower() for k in STATE_KEYS if data.get(k) is not None), "")
    state: TaskState = (
        "done" if word in DONE_WORDS else "failed" if word in FAILED_WORDS else "processing"
    )
    available = _ids(data, AVAILABLE_KEYS)
    unavailable = _ids(data, UNAVAILABLE_KEYS)
    stray = (available | unavailable) - sent
    if stray or available & unavailable:
        raise MalformedTaskStatus(
            f"task {task_id}: {len(stray)} ids we never sent, "
            f"{len(available & unavailable)} both available and not: nothing decided",
            200,
            "malformed_task_status",
        )
    if state != "done":
        available, unavailable = set(), set()
    return TaskStatus(task_id, state, available, unavailable, payload)


def _ids(data: dict[str, Any], keys: tuple[str, ...]) -> set[int]:
    found: set[int] = set()
    for key in keys:
        for value in data.get(key) or []:
            text = str(value).strip()
            if text.isdigit():
                found.add(int(text))
    return found

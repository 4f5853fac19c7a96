"""An OpenAI-compatible chat completions endpoint whose answers are functions of the input.

Every answer is valid against the requested JSON schema and marked as sandbox output: text fields
start with "[sandbox]" and `system_fingerprint` is "gettok-sandbox"; `llm_answers` makes them.
Faults (429 with Retry-After and optionally retry-after-ms, 500, stalls, refusals, invalid JSON)
follow `state.config.llm`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
import time
from typing import Any

import cv2
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gettok.sandbox.llm_answers import MARK, answer_for, describe_images

MODEL = "sandbox-vision"
FINGERPRINT = "gettok-sandbox"
TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def build_router(state) -> APIRouter:
    router = APIRouter()
    router.add_api_route("/v1/models", list_models, methods=["GET"])

    @router.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await _chat_completion(state, request)

    return router


def list_models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "gettok-sandbox"}],
    }


async def _chat_completion(state, request: Request):
    """Answer one request as the config asks: a canned answer, an injected fault, or the answer."""
    _count(state, "llm_requests")
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return _error(401, "missing API key", "invalid_api_key")
    try:
        body = await request.json()
        parts = _parts(body["messages"])
    except (ValueError, KeyError, TypeError) as exc:
        return _error(400, f"{MARK} malformed request: {exc}", "invalid_request_error")
    state.last_llm_request = body  # what the client asked (tests read its limits)
    canned = _next_canned(state)
    if canned is not None:
        return JSONResponse(canned.body, status_code=canned.status, headers=canned.headers)
    if body.get("model") != MODEL:  # as a real server does: a wrong name is a config error
        return _error(
            404,
            f"{MARK} the model {body.get('model')!r} does not exist: the sandbox serves "
            f"{MODEL!r} (set GETTOK_LLM_MODEL={MODEL})",
            "model_not_found",
        )
    failure = await _injected_failure(state)
    if failure is not None:
        return failure
    return _completion(state, body, parts)


async def _injected_failure(state) -> JSONResponse | None:
    """The error response of a fault the dice inject, or None; an injected stall waits longer
    than the client does, then answers."""
    faults = state.config.llm
    if state.chance(faults.rate_limit_429):
        _count(state, "llm_429")
        return _error(
            429,
            f"{MARK} rate limit reached",
            "rate_limit_exceeded",
            headers=_retry_after(faults.retry_after_s, faults.retry_after_ms),
        )
    if state.chance(faults.insufficient_quota):
        _count(state, "llm_insufficient_quota")
        return JSONResponse(INSUFFICIENT_QUOTA, status_code=429)
    if state.chance(faults.content_filter):
        _count(state, "llm_content_filter")
        return JSONResponse(CONTENT_FILTERED, status_code=400)
    if state.chance(faults.error_500):
        _count(state, "llm_500")
        return _error(500, f"{MARK} injected server error", "server_error")
    if state.chance(faults.timeout):
        _count(state, "llm_timeout")
        await asyncio.sleep(faults.timeout_s)  # longer than the client waits
    return None


def _completion(state, body: dict[str, Any], parts: dict[str, Any]) -> dict[str, Any]:
    """The chat completion: the answer (or a refusal, or a cut answer) with its token usage."""
    faults = state.config.llm
    refusal = state.chance(faults.refusal)
    # A corrective turn (the conversation already holds an answer) is answered correctly,
    # as a model that reads the validation error would; so both outcomes can be tested.
    first_turn = not any(m.get("role") == "assistant" for m in body["messages"])
    invalid = first_turn and state.chance(faults.invalid_json)
    schema = _schema(body.get("response_format"))
    content, refusal_text = _content(state, schema, parts, refusal, invalid)
    _count(state, "llm_answers")
    usage = _usage(state, body, parts, schema, content or refusal_text or "")
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
    return {
        "id": f"chatcmpl-sandbox-{digest}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal_text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


def _content(
    state, schema: dict[str, Any] | None, parts: dict[str, Any], refusal: bool, invalid: bool
) -> tuple[str | None, str | None]:
    """The message's content and refusal: a schema's answer, else a description of the images;
    `invalid` cuts the answer mid-object."""
    if refusal:
        _count(state, "llm_refusal")
        return None, f"{MARK} I can't help with that request."
    answer = answer_for(schema, parts) if schema is not None else None
    content = (
        json.dumps(answer, ensure_ascii=False)
        if answer is not None
        else (f"{MARK} {describe_images(parts['images'])}")
    )
    if invalid:
        _count(state, "llm_invalid_json")
        content = content[: max(1, len(content) // 2)]  # cut mid-object
    return content, None


def _usage(
    state,
    body: dict[str, Any],
    parts: dict[str, Any],
    schema: dict[str, Any] | None,
    completion: str,
) -> dict[str, int] | None:
    """Token usage as OpenAI counts it; None when the config drops it, as some servers do."""
    prompt_tokens = prompt_token_count(body["messages"], parts)
    if schema is not None:  # the schema is part of what the model reads
        prompt_tokens += len(TOKEN.findall(json.dumps(schema)))
    completion_tokens = len(TOKEN.findall(completion))
    if state.chance(state.config.llm.no_usage):
        _count(state, "llm_no_usage")
        return None
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


# The shapes the real services send (see tests/fixtures/openai/ for the sources).
INSUFFICIENT_QUOTA = {
    "error": {
        "message": f"{MARK} You exceeded your current quota, please check your plan and billing "
        "details.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}
CONTENT_FILTERED = {
    "error": {
        "message": f"{MARK} The response was filtered due to the prompt triggering the content "
        "management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": {"filtered": False, "severity": "safe"},
                "self_harm": {"filtered": False, "severity": "safe"},
                "sexual": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": True, "severity": "medium"},
            },
        },
    }
}


def _next_canned(state):
    """The next canned answer to serve, if any (each is served `times` times, in order)."""
    with state.lock:
        canned = state.config.llm.canned
        if not canned:
            return None
        answer = canned[0]
        if answer.times > 1:
            answer.times -= 1
        else:
            canned.pop(0)
    _count(state, "llm_canned")
    return answer


def _count(state, key: str) -> None:
    with state.lock:
        state.counters[key] += 1


def _retry_after(seconds: int, millis: int | None) -> dict[str, str]:
    headers = {"Retry-After": str(seconds)}
    if millis is not None:
        headers["retry-after-ms"] = str(millis)
    return headers


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None):
    body = {"error": {"message": message, "type": code, "code": code, "param": None}}
    return JSONResponse(body, status_code=status, headers=headers)


def _schema(response_format: Any) -> dict[str, Any] | None:
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        return response_format["json_schema"]["schema"]
    return None


def _parts(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The texts (system, user, assistant) and decoded images of a conversation."""
    texts, images = [], []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content or []:
            if part.get("type") == "text":
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                images.append(
                    (
                        _decode_image(part["image_url"]["url"]),
                        part["image_url"].get("detail", "auto"),
                    )
                )
    user = [m for m in messages if m.get("role") == "user"]
    first_user = user[0]["content"] if user else ""
    if not isinstance(first_user, str):
        first_user = "\n".join(p.get("text", "") for p in first_user if p.get("type") == "text")
    return {"texts": texts, "images": images, "prompt": first_user}


def _decode_image(url: str) -> np.ndarray:
    if not url.startswith("data:"):
        raise ValueError("the sandbox reads only data: image URLs")
    data = base64.b64decode(url.split(",", 1)[1], validate=True)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("an image could not be decoded")
    return image


def prompt_token_count(messages: list[dict[str, Any]], parts: dict[str, Any]) -> int:
    """Word-piece count of the text plus OpenAI's tile formula for each image."""
    tokens = 3 * len(messages) + sum(len(TOKEN.findall(t)) for t in parts["texts"])
    for image, detail in parts["images"]:
        height, width = image.shape[:2]
        if detail == "low":
            tokens += 85
            continue
        scale = min(1.0, 2048 / max(width, height))
        scale *= min(1.0, 768 / (min(width, height) * scale))
        tokens += 85 + 170 * math.ceil(width * scale / 512) * math.ceil(height * scale / 512)
    return tokens

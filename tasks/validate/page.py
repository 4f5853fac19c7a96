"""The coding page: a local web page where a coder watches each sampled video and codes it with
the keyboard. Every keypress is stored at once (reload loses nothing), per coder name.

Server-rendered HTML (`page_html`) with a little JavaScript for the shortcuts; media are served
only from the media directory and only the files of this sample.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gettok.db import session_scope
from gettok.tasks.validate import store
from gettok.tasks.validate.page_html import (
    BAD_NAME,
    START_FORM,
    done_count,
    is_done,
    page,
    page_state,
    video_body,
)

CODER_NAME = re.compile(r"^[\w.\- ]{1,64}$")
SCRIPT = Path(__file__).with_name("coding_page.js")
ACTIONS = ("label", "skip", "flag")


@dataclass(frozen=True)
class CodingSample:
    url: str
    campaign: str
    sample_id: int
    media_dir: Path


class CodingPage:
    """The handlers of one sample's page; the sample is read once, codes at every request."""

    def __init__(self, sample: CodingSample):
        with session_scope(sample.url) as session:
            campaign_id = store.campaign_row_id(session, sample.campaign)
            row = store.get_sample(session, campaign_id, sample.sample_id)
            self.kind, self.labels = row.kind, list(row.labels)
            self.videos = store.sampled_videos(session, sample.sample_id)
        self.sample = sample
        self.servable = {
            p for v in self.videos for p in (*v.media, *v.frames, v.audio) if p is not None
        }
        self.media_root = sample.media_dir.resolve()

    def codes(self, coder: str) -> dict:
        with session_scope(self.sample.url) as session:
            return store.coder_codes(session, self.sample.sample_id, coder)

    async def start(self, request: Request) -> Response:
        coder = request.query_params.get("coder", "").strip()
        if not coder:
            return HTMLResponse(page("Coder", START_FORM))
        if not CODER_NAME.match(coder):
            return HTMLResponse(page("Coder", START_FORM + BAD_NAME), status_code=400)
        codes = await run_in_threadpool(self.codes, coder)
        first = next((v.position for v in self.videos if not is_done(codes.get(v.item_id))), 1)
        return RedirectResponse(f"/code/{coder}/{first}", status_code=303)

    async def code_page(self, request: Request) -> Response:
        coder, position = request.path_params["coder"], request.path_params["position"]
        total = len(self.videos)
        if not CODER_NAME.match(coder) or not 1 <= position <= total:
            return HTMLResponse(page("Not found", "<p>No such video in this sample.</p>"), 404)
        codes = await run_in_threadpool(self.codes, coder)
        video = self.videos[position - 1]
        body = video_body(self.kind, self.labels, video, codes, coder, total)
        state = page_state(coder, video, self.labels, total)
        return HTMLResponse(page(f"{position}/{total}", body, state))

    async def save(self, request: Request) -> Response:
        try:
            payload = await request.json()
            coder, position, action = payload["coder"], int(payload["position"]), payload["action"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "send coder, position and action"}, 400)
        label = payload.get("label")
        if not CODER_NAME.match(str(coder)) or not 1 <= position <= len(self.videos):
            return JSONResponse({"error": "unknown coder name or position"}, 400)
        if action not in ACTIONS or (action == "label" and label not in self.labels):
            return JSONResponse(
                {"error": f"action must be label (one of {self.labels}), skip or flag"}, 400
            )
        item_id = self.videos[position - 1].item_id
        coded = await run_in_threadpool(self.store_code, item_id, coder, action, label)
        return JSONResponse({"coded": coded, "total": len(self.videos)})

    def store_code(self, item_id: int, coder: str, action: str, label: str | None) -> int:
        """Store one keypress (a flag keeps the label; a label or skip keeps the flag); returns
        how many videos this coder has coded or skipped."""
        with session_scope(self.sample.url) as session:
            current = store.coder_codes(session, self.sample.sample_id, coder).get(item_id)
            row = {
                "item_id": item_id,
                "coder": coder,
                "label": current.label if current else None,
                "skipped": bool(current and current.skipped),
                "flagged": bool(current and current.flagged),
                "source": "page",
            }
            if action == "flag":
                row["flagged"] = not row["flagged"]
            else:
                row.update(label=label if action == "label" else None, skipped=action == "skip")
            store.save_codes(session, [row])
            session.flush()
            return done_count(store.coder_codes(session, self.sample.sample_id, coder))

    async def media(self, request: Request) -> Response:
        relative = request.path_params["path"]
        path = (self.media_root / relative).resolve()
        if relative not in self.servable or not path.is_relative_to(self.media_root):
            return Response("not a file of this sample", status_code=404)
        if not path.is_file():
            return Response("not a file of this sample", status_code=404)
        return FileResponse(path)

    async def script(self, _request: Request) -> Response:
        return FileResponse(SCRIPT, media_type="text/javascript")


def coding_app(sample: CodingSample) -> Starlette:
    """The ASGI app for one sample (raises UnknownSample/UnknownCampaign before serving)."""
    handlers = CodingPage(sample)
    return Starlette(
        routes=[
            Route("/", handlers.start),
            Route("/code/{coder}/{position:int}", handlers.code_page),
            Route("/api/codes", handlers.save, methods=["POST"]),
            Route("/media/{path:path}", handlers.media),
            Route("/coding.js", handlers.script),
        ]
    )

"""The coding page: a local web page where a coder watches each sampled video and codes it with
the keyboard. Every keypress is stored at once (reload loses nothing), per coder name.

Server-rendered HTML with a little JavaScript for the shortcuts; media are served only from the
media directory and only the files of this sample. Blind kinds never show the model's label.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

from gettok.tasks.validate import store
from gettok.tasks.validate.kinds import checked_text, is_check
from gettok.tasks.validate.sheet import video_url
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gettok.db import session_scope

CODER_NAME = re.compile(r"^[\w.\- ]{1,64}$")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
SCRIPT = Path(__file__).with_name("coding_page.js")


@dataclass(frozen=True)
class CodingSample:
    url: str
    campaign: str
    sample_id: int
    media_dir: Path


def coding_app(sample: CodingSample) -> Starlette:
    """The ASGI app for one sample (raises UnknownSample/UnknownCampaign before serving)."""
    with session_scope(sample.url) as session:
        row = store.get_sample(
            session, store.campaign_row_id(session, sample.campaign), sample.sample_id
        )
        kind, labels = row.kind, list(row.labels)
        videos = store.sampled_videos(session, sample.sample_id)
    servable = {p for v in videos for p in (*v.media, *v.frames)}
    media_root = sample.media_dir.resolve()

    def load(coder: str) -> dict[int, object]:
        with session_scope(sample.url) as session:
            return store.coder_codes(session, sample.sample_id, coder)

    async def start(request: Request) -> Response:
        coder = request.query_params.get("coder", "").strip()
        if not coder:
            return HTMLResponse(_page("Coder", START_FORM))
        if not CODER_NAME.match(coder):
            return HTMLResponse(_page("Coder", START_FORM + BAD_NAME), status_code=400)
        codes = await run_in_threadpool(load, coder)
        first = next((v.position for v in videos if v.item_id not in codes), 1)
        return RedirectResponse(f"/code/{coder}/{first}", status_code=303)

    async def code_page(request: Request) -> Response:
        coder, position = request.path_params["coder"], request.path_params["position"]
        if not CODER_NAME.match(coder) or not 1 <= position <= len(videos):
            return HTMLResponse(_page("Not found", "<p>No such video in this sample.</p>"), 404)
        codes = await run_in_threadpool(load, coder)
        video = videos[position - 1]
        body = _video_body(kind, labels, video, codes, coder, len(videos))
        return HTMLResponse(_page(f"{position}/{len(videos)}", body, _state(coder, video, labels)))

    async def save(request: Request) -> Response:
        try:
            payload = await request.json()
            coder, position, action = payload["coder"], int(payload["position"]), payload["action"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "send coder, position and action"}, 400)
        label = payload.get("label")
        if not CODER_NAME.match(str(coder)) or not 1 <= position <= len(videos):
            return JSONResponse({"error": "unknown coder name or position"}, 400)
        if action not in ("label", "skip", "flag") or (action == "label" and label not in labels):
            return JSONResponse(
                {"error": f"action must be label (one of {labels}), skip or flag"}, 400
            )
        item_id = videos[position - 1].item_id
        coded = await run_in_threadpool(_store_code, sample, item_id, coder, action, label)
        return JSONResponse({"coded": coded, "total": len(videos)})

    async def media(request: Request) -> Response:
        relative = request.path_params["path"]
        path = (media_root / relative).resolve()
        if relative not in servable or not path.is_relative_to(media_root) or not path.is_file():
            return Response("not a file of this sample", status_code=404)
        return FileResponse(path)

    async def script(_request: Request) -> Response:
        return FileResponse(SCRIPT, media_type="text/javascript")

    return Starlette(
        routes=[
            Route("/", start),
            Route("/code/{coder}/{position:int}", code_page),
            Route("/api/codes", save, methods=["POST"]),
            Route("/media/{path:path}", media),
            Route("/coding.js", script),
        ]
    )


def _store_code(
    sample: CodingSample, item_id: int, coder: str, action: str, label: str | None
) -> int:
    """Store one keypress (a flag keeps the label; a label or skip keeps the flag); returns how
    many videos this coder has coded or skipped."""
    with session_scope(sample.url) as session:
        current = store.coder_codes(session, sample.sample_id, coder).get(item_id)
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
        return _done(store.coder_codes(session, sample.sample_id, coder))


def _done(codes: dict) -> int:
    return sum(1 for c in codes.values() if c.label is not None or c.skipped)


def _state(coder: str, video: store.SampledVideo, labels: list[str]) -> str:
    return json.dumps({"coder": coder, "position": video.position, "labels": labels})


def _page(title: str, body: str, state: str | None = None) -> str:
    script = (
        f'<div id="state" data-state="{escape(state)}"></div><script src="/coding.js"></script>'
        if state
        else ""
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)} · gettok coding</title><style>{STYLE}</style></head>"
        f"<body>{body}{script}</body></html>"
    )


def _video_body(kind, labels, video, codes, coder, total) -> str:
    mine = codes.get(video.item_id)
    chosen = "skip" if mine and mine.skipped else (mine.label if mine else None)
    buttons = "".join(
        f'<button data-label="{escape(label)}" class="{"chosen" if label == chosen else ""}">'
        f"<kbd>{i}</kbd> {escape(label)}</button>"
        for i, label in enumerate(labels, start=1)
    )
    texts = [("Caption", video.caption), ("Transcript", video.transcript)]
    texts.append(("On-screen text", video.onscreen_text))
    if is_check(kind):
        texts.insert(
            0,
            (
                f"The model's {kind.removesuffix('_check')} to judge",
                checked_text(kind, video.annotation),
            ),
        )
    sections = "".join(
        f"<section><h2>{escape(name)}</h2><p>{escape(text or '(none)')}</p></section>"
        for name, text in texts
    )
    return f"""
<header><b>Sample {video.position} of {total}</b> · coder {escape(coder)} ·
<span id="progress">{_done(codes)} of {total} coded</span>
<progress value="{_done(codes)}" max="{total}"></progress>
<span id="flag" class="{"on" if mine and mine.flagged else ""}">flagged</span></header>
<main><div class="media">{_media(video)}
<p><a href="{escape(video_url(video))}" target="_blank" rel="noopener">open on TikTok</a></p></div>
<div class="texts">{sections}
<nav id="labels">{buttons}<button data-action="skip" class="{"chosen" if chosen == "skip" else ""}">
<kbd>s</kbd> skip</button><button data-action="flag"><kbd>f</kbd> flag</button></nav>
<p class="keys">Keys: 1–{len(labels)} label and go on · s skip · f flag · ← → previous/next ·
, . previous/next image · space play/pause</p>
<p id="status" role="status"></p></div></main>"""


def _media(video: store.SampledVideo) -> str:
    files = video.media or video.frames
    images = [p for p in files if p.lower().endswith(IMAGE_SUFFIXES)]
    if files and not images:
        return (
            f'<video id="player" controls autoplay muted src="/media/{escape(files[0])}"></video>'
        )
    if not images:
        return "<p>No media stored for this video: open it on TikTok.</p>"
    slides = "".join(
        f'<img class="slide{" shown" if i == 0 else ""}" src="/media/{escape(p)}" '
        f'alt="image {i + 1}">'
        for i, p in enumerate(images)
    )
    return f'<div id="slideshow">{slides}</div><p>{len(images)} images</p>'


START_FORM = """<form method=get action="/"><label>Your name as coder
<input name=coder autofocus required></label><button>Start</button></form>"""
BAD_NAME = "<p>Use letters, digits, spaces, dots, dashes or underscores (at most 64).</p>"
STYLE = """body{font-family:system-ui,sans-serif;margin:1rem;max-width:70rem}
main{display:flex;gap:1.5rem}.media{flex:0 0 22rem}.media video,.media img{width:22rem}
.slide{display:none}.slide.shown{display:block}.texts{flex:1}section p{white-space:pre-wrap}
button{margin:.2rem;padding:.4rem .8rem;font-size:1rem}button.chosen{background:#2b6;color:#fff}
#flag{display:none;color:#b00}#flag.on{display:inline}.keys{color:#555;font-size:.9rem}"""

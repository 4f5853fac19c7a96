"""The coding page's HTML: one video with its texts, the label buttons and the progress.

Everything shown is escaped; blind kinds show nothing of the model's answer.
"""

from __future__ import annotations

import json
from html import escape
from urllib.parse import quote

from gettok.tasks.validate import store
from gettok.tasks.validate.kinds import checked_text, is_check
from gettok.tasks.validate.sheet import video_url

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def is_done(code) -> bool:
    """Coded or skipped: the coder has dealt with this video (a flag alone is not an answer)."""
    return code is not None and (code.label is not None or code.skipped)


def done_count(codes: dict) -> int:
    return sum(1 for c in codes.values() if is_done(c))


def page_state(coder: str, video: store.SampledVideo, labels: list[str], total: int) -> str:
    return json.dumps(
        {"coder": coder, "position": video.position, "labels": labels, "total": total}
    )


def page(title: str, body: str, state: str | None = None) -> str:
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


def video_body(kind, labels, video, codes, coder, total) -> str:
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
<span id="progress">{done_count(codes)} of {total} coded</span>
<progress value="{done_count(codes)}" max="{total}"></progress>
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
        source = f"/media/{escape(quote(files[0]))}"
        return f'<video id="player" controls preload="metadata" src="{source}"></video>'
    if not images:
        return "<p>No media stored for this video: open it on TikTok.</p>"
    slides = "".join(
        f'<img class="slide{" shown" if i == 0 else ""}" src="/media/{escape(quote(p))}" '
        f'alt="image {i + 1}">'
        for i, p in enumerate(images)
    )
    sound = (
        f'<audio id="player" controls src="/media/{escape(quote(video.audio))}"></audio>'
        if video.audio and video.media
        else ""
    )
    return f'<div id="slideshow">{slides}</div><p>{len(images)} images</p>{sound}'


START_FORM = """<form method=get action="/"><label>Your name as coder
<input name=coder autofocus required></label><button>Start</button></form>"""
BAD_NAME = "<p>Use letters, digits, spaces, dots, dashes or underscores (at most 64).</p>"
STYLE = """body{font-family:system-ui,sans-serif;margin:1rem;max-width:70rem}
main{display:flex;gap:1.5rem}.media{flex:0 0 22rem}.media video,.media img{width:22rem}
.slide{display:none}.slide.shown{display:block}.texts{flex:1}section p{white-space:pre-wrap}
button{margin:.2rem;padding:.4rem .8rem;font-size:1rem}button.chosen{background:#2b6;color:#fff}
#flag{display:none;color:#b00}#flag.on{display:inline}.keys{color:#555;font-size:.9rem}"""

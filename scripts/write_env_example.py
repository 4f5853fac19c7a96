"""Write `.env.example` from the Settings model, so it lists every setting with its default."""

import json
import sys
from pathlib import Path

from pydantic import SecretStr

from gettok.settings import Settings

SECTIONS = [
    ("Storage", ("data_dir", "database_url", "media_dir", "export_")),
    ("TikTok Research API and tiktok.com", ("tiktok_", "daily_request_budget", "window_days")),
    ("Downloads", ("download_",)),
    ("Transcription", ("whisper_", "transcription_")),
    ("Frames", ("frame_",)),
    ("LLM annotations (any OpenAI-compatible server)", ("openai_", "llm_", "sentiment_")),
    ("Watchlist alerts and face watch", ("smtp_", "watch_")),
    ("Sandbox", ("sandbox_",)),
]


def value(default) -> str:
    if default is None or isinstance(default, SecretStr):
        return ""
    if isinstance(default, list | dict | tuple):
        return json.dumps(default)
    return str(default)


def main() -> str:
    fields = dict(Settings.model_fields)
    lines = [
        "# Every gettok setting, with its default. Copy to .env and uncomment what you change.",
        "# The openai SDK's own OPENAI_API_KEY / OPENAI_BASE_URL are honoured too.",
        "",
    ]
    for title, prefixes in SECTIONS + [("Other", ("",))]:
        names = [n for n in fields if n.startswith(prefixes)]
        if not names:
            continue
        lines.append(f"# --- {title}")
        for name in names:
            info = fields.pop(name)
            default = info.default_factory() if info.default_factory else info.default
            secret = info.annotation is not None and "SecretStr" in str(info.annotation)
            if secret:
                lines.append("# (a secret: never printed, logged or stored)")
            lines.append(f"# GETTOK_{name.upper()}={value(default)}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".env.example")
    target.write_text(main())

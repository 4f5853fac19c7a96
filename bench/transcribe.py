"""Benchmark: gettok's batched transcription against the studies' loop, on the same clips and model.

Naive: one `WhisperModel.transcribe(path)` per file with default settings (what the studies ran).
Ours: `gettok.tasks.transcribe.whisper` as the transcribe stage runs it (decode with PyAV, VAD,
≤30 s windows of many clips batched together, language given, int8 on CPU / float16 on CUDA). Both
models are loaded and warmed up before timing; each side is timed `--repeats` times (default 1),
alternating, and the best run kept (the machine is shared). WER of both against the text espeak-ng
spoke.

    python bench/transcribe.py [--clips 12] [--min-s 15] [--max-s 60] [--clips-dir DIR]

Clips need espeak-ng; `--clips-dir` reuses a folder a previous run made (its manifest.json holds
the texts), e.g. on a machine without espeak-ng. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gettok.tasks.transcribe.audio import decode_clip, decode_clips  # noqa: E402
from gettok.tasks.transcribe.wer import word_error_rate  # noqa: E402
from gettok.tasks.transcribe.whisper import WhisperOptions, transcribe_clips  # noqa: E402
from gettok.tasks.transcribe.whisper_model import load_model, resolve_device, resolve_model  # noqa: E402

SENTENCES = [
    "The city council met on Tuesday to discuss the new budget for public schools and roads.",
    "Many residents asked questions about taxes and the price of drinking water.",
    "Farmers in the northern valley say the rain came late this year.",
    "The harvest of potatoes and corn will be smaller than last season.",
    "Prices at the central market have been rising every week since January.",
    "A young musician plays the guitar in the main square every evening.",
    "People stop to listen, and some of them dance while the sun goes down.",
    "The president spoke on television about the economy and promised new hospitals.",
    "Opposition leaders said the plan was too expensive and asked for a public debate.",
    "Students organized a march to protest the closing of the university library.",
    "They carried signs and sang songs while the police watched from across the street.",
    "Yesterday the football team won the final match by two goals.",
    "Fans celebrated in the streets until late at night.",
    "The captain thanked his mother and his coach in a short interview.",
    "Heavy traffic blocked the highway to the airport for more than three hours.",
    "Doctors at the regional hospital are asking for more nurses and medicine.",
    "The teachers union will vote on a strike at the end of the month.",
    "A small earthquake shook the coast this morning, but nobody was hurt.",
    "Tourists are returning to the old town now that the museums are open again.",
    "The new bridge over the river should be finished before the rainy season.",
    "Local radio stations are collecting food and blankets for families in the mountains.",
    "Congress has to listen to the people and not only to the usual few.",
    "Share this video so that everyone knows what happened in front of the palace.",
    "I do not support anyone, I just want peace and work for my family.",
    "The election commission published the final count late on Sunday night.",
    "Workers at the port stopped loading ships to demand better pay.",
    "Scientists found a new species of frog in the forest near the border.",
    "The mayor promised to clean the river and plant trees along its banks.",
]
WORDS_PER_S = 2.6  # espeak-ng at its default rate, measured on these sentences


def make_clips(folder: Path, count: int, min_s: float, max_s: float, seed: int) -> list[dict]:
    """Speech clips of about min_s..max_s seconds, their texts in `manifest.json`."""
    from gettok.sandbox.media import make_clip

    manifest = folder / "manifest.json"
    if manifest.exists():
        return json.loads(manifest.read_text())
    rng = random.Random(seed)
    clips = []
    for n in range(count):
        target_words = rng.uniform(min_s, max_s) * WORDS_PER_S
        sentences: list[str] = []
        while sum(len(s.split()) for s in sentences) < target_words:
            sentences.append(rng.choice(SENTENCES))
        text = " ".join(sentences)
        path = make_clip(
            folder / f"clip-{n:03d}.mp4", text=text, seed=n, width=128, height=224, fps=10
        )
        clips.append({"file": path.name, "text": text})
    manifest.write_text(json.dumps(clips, indent=1))
    return clips


def naive(model, paths: list[Path]) -> tuple[float, list[str]]:
    started, texts = time.perf_counter(), []
    for path in paths:
        segments, _info = model.transcribe(str(path))
        texts.append(" ".join(s.text.strip() for s in segments))
    return time.perf_counter() - started, texts


def ours(model, paths: list[Path], options: WhisperOptions) -> tuple[float, list[str]]:
    started = time.perf_counter()
    results = transcribe_clips(model, decode_clips(paths), options)
    return time.perf_counter() - started, [r.text for r in results]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--min-s", type=float, default=15.0)
    parser.add_argument("--max-s", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--clips-dir", type=Path, default=None)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--no-vad", action="store_true")
    parser.add_argument(
        "--compute-type", default="auto", help="ours only; auto: int8 CPU, fp16 GPU"
    )
    parser.add_argument("--repeats", type=int, default=1)
    return parser.parse_args(argv)


def best_times(naive_model, ours_model, paths: list[Path], options, repeats: int):
    """Each side timed `repeats` times, alternating; the best seconds and the last texts."""
    naive_s, ours_s = float("inf"), float("inf")
    for _ in range(repeats):
        seconds, naive_texts = naive(naive_model, paths)
        naive_s = min(naive_s, seconds)
        seconds, our_texts = ours(ours_model, paths, options)
        ours_s = min(ours_s, seconds)
    return naive_s, naive_texts, ours_s, our_texts


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from faster_whisper import WhisperModel

    folder = (
        args.clips_dir
        or Path(tempfile.gettempdir()) / f"gettok-bench-transcribe-{args.seed}-{args.clips}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    clips = make_clips(folder, args.clips, args.min_s, args.max_s, args.seed)
    paths = [folder / c["file"] for c in clips]
    references = [c["text"] for c in clips]
    audio_s = sum(decode_clip(p).shape[0] for p in paths) / 16_000

    options = WhisperOptions(
        model=args.model, beam_size=args.beam_size, batch_size=args.batch_size,
        vad=not args.no_vad, language="en", compute_type=args.compute_type,
    )  # fmt: skip
    device, compute_type = resolve_device(options.device, options.compute_type)
    ours_model = load_model(options)
    naive_model = WhisperModel(resolve_model(args.model))  # all defaults, as the studies
    naive(naive_model, paths[:1])  # warm-up, untimed
    ours(ours_model, paths[:1], options)

    naive_s, naive_texts, ours_s, our_texts = best_times(
        naive_model, ours_model, paths, options, args.repeats
    )
    result = {
        "bench": "transcribe",
        "clips": len(paths),
        "audio_s": round(audio_s, 1),
        "model": args.model,
        "device": device,
        "compute_type": compute_type,
        "beam_size": options.beam_size,
        "batch_size": options.batch_size,
        "vad": options.vad,
        "cpu_count": os.cpu_count(),
        "seconds": round(ours_s, 2),
        "seconds_naive": round(naive_s, 2),
        "audio_s_per_s": round(audio_s / ours_s, 1),
        "audio_s_per_s_naive": round(audio_s / naive_s, 1),
        "videos_per_hour": round(len(paths) / ours_s * 3600),
        "videos_per_hour_naive": round(len(paths) / naive_s * 3600),
        "speedup_vs_naive": round(naive_s / ours_s, 2),
        "wer": round(word_error_rate(references, our_texts), 4),
        "wer_naive": round(word_error_rate(references, naive_texts), 4),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

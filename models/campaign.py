"""A campaign: what to collect (query, region, dates) and how to label it (stance target).

Campaigns are TOML files (see `campaigns/`). Loading one validates everything a run depends on,
so a typo fails at once with the field named, not three days into a backfill.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tomllib
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gettok.models.regions import ISO_3166_ALPHA2

# The earliest day the Research API indexes (TikTok's research data starts in 2016).
EARLIEST_DATE = date(2016, 1, 1)

Operation = Literal["EQ", "IN", "GT", "GTE", "LT", "LTE"]
FieldName = Literal[
    "create_date",
    "username",
    "region_code",
    "video_id",
    "hashtag_name",
    "keyword",
    "music_id",
    "effect_id",
    "video_length",
]
VideoLength = Literal["SHORT", "MID", "LONG", "EXTRA_LONG"]


# Joiners shape emoji sequences and Persian or Indic words: part of a term, kept.
JOINERS = {"\u200c", "\u200d"}


def clean_term(value: str) -> str:
    """A search term as the API compares it: NFC, without NULs or invisible format characters
    (U+200F RLM, U+200B ZWSP, U+FEFF...; joiners kept), no surrounding space."""
    text = unicodedata.normalize("NFC", value)
    return "".join(
        ch for ch in text if ch != "\x00" and (unicodedata.category(ch) != "Cf" or ch in JOINERS)
    ).strip()


class CampaignError(ValueError):
    """A campaign file that cannot be used; the message names the file and the field."""


class Condition(BaseModel):
    """One condition of the API's query language."""

    model_config = ConfigDict(extra="forbid")

    operation: Operation = "IN"
    field_name: FieldName
    field_values: list[str] = Field(min_length=1)

    @field_validator("field_values", mode="before")
    @classmethod
    def _as_strings(cls, values: Any) -> list[str]:
        if not isinstance(values, list):
            values = [values]
        cleaned = [str(v).replace("\x00", "").strip() for v in values]
        return [v for v in cleaned if v]


class Query(BaseModel):
    """What to search for. Selectors are ORed; region and length are ANDed; `exclude_*` are NOTed.

    `and`, `or` and `not` take raw API conditions for anything the shorthand cannot say.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    region_codes: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    hashtags: list[str] = Field(default_factory=list)
    usernames: list[str] = Field(default_factory=list)
    music_ids: list[int] = Field(default_factory=list)
    effect_ids: list[int] = Field(default_factory=list)
    video_length: list[VideoLength] = Field(default_factory=list)
    exclude_keywords: list[str] = Field(default_factory=list)
    exclude_hashtags: list[str] = Field(default_factory=list)
    and_: list[Condition] = Field(default_factory=list, alias="and")
    or_: list[Condition] = Field(default_factory=list, alias="or")
    not_: list[Condition] = Field(default_factory=list, alias="not")

    @field_validator("keywords", "hashtags", "usernames", "exclude_keywords", "exclude_hashtags")
    @classmethod
    def _clean_terms(cls, values: list[str], info) -> list[str]:
        # The Ecuador term list has trailing spaces; '#' is not part of a hashtag name; a term
        # pasted from a web page may carry invisible marks (RLM, ZWSP) that match nothing.
        seen: dict[str, None] = {}
        for v in values:
            term = clean_term(v).lstrip("#").strip()
            if info.field_name in ("hashtags", "exclude_hashtags") and ("#" in term or " " in term):
                raise ValueError(
                    f"{v!r} is not one hashtag name: write each hashtag as its own entry, "
                    "without '#' or spaces inside"
                )
            if term:
                seen.setdefault(term, None)
        return list(seen)

    @field_validator("region_codes")
    @classmethod
    def _valid_regions(cls, values: list[str]) -> list[str]:
        codes = []
        for v in values:
            code = v.strip().upper()
            if code not in ISO_3166_ALPHA2:
                raise ValueError(
                    f"{v!r} is not an ISO 3166-1 alpha-2 region code (e.g. 'PE', 'EC')"
                )
            codes.append(code)
        return codes

    @model_validator(mode="after")
    def _selects_something(self) -> Query:
        if not self.to_api().get("or") and not self.and_:
            # A region alone would match every video of a country: never what a study wants,
            # and it spends the daily quota in minutes.
            raise ValueError(
                "the query selects nothing: give keywords, hashtags, usernames, music_ids, "
                "effect_ids or an explicit [[query.and]]/[[query.or]] condition"
            )
        return self

    def to_api(self) -> dict[str, list[dict[str, Any]]]:
        """The `query` object of the video query request body."""

        def cond(field: str, values: list) -> dict[str, Any]:
            return {
                "operation": "IN",
                "field_name": field,
                "field_values": [str(v) for v in values],
            }

        and_ = [c.model_dump() for c in self.and_]
        if self.region_codes:
            and_.insert(0, cond("region_code", self.region_codes))
        if self.video_length:
            and_.append(cond("video_length", self.video_length))
        or_ = [c.model_dump() for c in self.or_]
        for field, values in (
            ("keyword", self.keywords),
            ("hashtag_name", self.hashtags),
            ("username", self.usernames),
            ("music_id", self.music_ids),
            ("effect_id", self.effect_ids),
        ):
            if values:
                or_.append(cond(field, values))
        not_ = [c.model_dump() for c in self.not_]
        if self.exclude_keywords:
            not_.append(cond("keyword", self.exclude_keywords))
        if self.exclude_hashtags:
            not_.append(cond("hashtag_name", self.exclude_hashtags))
        query: dict[str, list[dict[str, Any]]] = {"and": and_, "or": or_, "not": not_}
        return {k: v for k, v in query.items() if v} or query


class Stance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str = Field(min_length=1)
    labels: list[str] = Field(default_factory=lambda: ["support", "no support", "neutral"])

    @field_validator("labels")
    @classmethod
    def _distinct(cls, labels: list[str]) -> list[str]:
        cleaned = [label.strip() for label in labels if label.strip()]
        if len(cleaned) < 2 or len(set(cleaned)) != len(cleaned):
            raise ValueError("stance needs at least two distinct labels")
        return cleaned


TargetKind = Literal["face", "image", "description"]


class WatchTarget(BaseModel):
    """Someone or something to alert on, defined by examples (files or folders of pictures)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,62}$")
    kind: TargetKind = "face"
    examples: list[Path] = Field(default_factory=list)  # relative to the campaign file
    negatives: list[Path] = Field(default_factory=list)  # faces that must not match
    description: str | None = None  # what the vision LLM looks for (kind "description")
    threshold: float | None = Field(None, gt=0, le=2)  # face distance; None: from the examples

    @model_validator(mode="after")
    def _has_what_its_kind_needs(self) -> WatchTarget:
        if self.kind in ("face", "image") and not self.examples:
            raise ValueError(f"target {self.name!r} ({self.kind}) needs examples")
        if self.kind == "description" and not (self.description or "").strip():
            raise ValueError(f"target {self.name!r} (description) needs a description")
        if self.kind != "face" and (self.negatives or self.threshold is not None):
            raise ValueError(f"target {self.name!r}: negatives and threshold are for faces")
        return self


class Watch(BaseModel):
    """The monitoring flow's targets (`[[watch.targets]]`), where alerts go, how often to look.

    `images` and `description` are the older shorthand for image and description targets.
    """

    model_config = ConfigDict(extra="forbid")

    targets: list[WatchTarget] = Field(default_factory=list)
    images: list[Path] = Field(default_factory=list)
    description: str | None = None
    webhook_url: str | None = None
    frames_per_second: float = Field(1.0, gt=0, le=30)  # the monitoring study looked at ~1/s
    digest: bool = False  # one email a day listing the matches, instead of one per match

    @model_validator(mode="after")
    def _distinct_names(self) -> Watch:
        names = [t.name for t in self.targets]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"watch target names must be distinct: {', '.join(twice)}")
        return self

    def resolve_paths(self, base: Path) -> list[str]:
        """Make example paths relative to `base` (the campaign's folder) absolute; the missing."""
        missing = []
        images = [
            p if p.is_absolute() or not (base / p).exists() else base / p for p in self.images
        ]
        missing += [f"images: {p}" for p in images if not p.exists()]
        self.images = images
        for target in self.targets:
            for field in ("examples", "negatives"):
                paths = [p if p.is_absolute() else base / p for p in getattr(target, field)]
                missing += [f"{target.name}.{field}: {p}" for p in paths if not p.exists()]
                setattr(target, field, paths)
        return missing


class Event(BaseModel):
    """Something that happened during the campaign, lettered on every timeline of the report."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date
    label: str = Field(min_length=1, max_length=40)  # short, for the legend table
    description: str = ""

    @field_validator("date", mode="before")
    @classmethod
    def _parse_date(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a date as YYYY-MM-DD") from exc
        return value


class ReportOptions(BaseModel):
    """`[report]`: what the report's analyses select and which models they use (all seeded)."""

    model_config = ConfigDict(extra="forbid")

    hashtags: list[str] = Field(default_factory=list)  # drawn over time; none: the top ones
    top_hashtags: int = Field(8, ge=1, le=30)
    topics: int = Field(8, ge=2, le=50)
    # A sentence-transformers model by name (or path): topics from its embeddings, clustered;
    # none: scikit-learn NMF on TF-IDF.
    topic_model: str | None = None
    # The clusters map's text embeddings; none: TF-IDF reduced by SVD.
    embedding_model: str | None = None
    map_videos: int = Field(5000, ge=10, le=200_000)  # seeded sample drawn on the map
    topic_fit_videos: int = Field(20_000, ge=10, le=1_000_000)  # seeded sample the model fits
    seed: int = 0

    @field_validator("hashtags")
    @classmethod
    def _tag_names(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(v.strip().lstrip("#").casefold() for v in values if v.strip()))


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,62}$")
    title: str = ""
    start_date: date
    end_date: date | None = None  # None: an ongoing campaign, collected by the daily schedule
    # The videos' expected language: a hint Whisper uses only when its detection is unsure,
    # or the language of every transcript with `force_language = true`.
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}$")
    force_language: bool = False
    query: Query
    stance: Stance | None = None
    watch: Watch | None = None
    # The pipeline also collects the comments of the N most commented videos (issue 14).
    comments_top_n: int | None = Field(None, ge=1)
    events: list[Event] = Field(default_factory=list)  # lettered A, B, ... in date order
    report: ReportOptions = Field(default_factory=ReportOptions)

    @field_validator("start_date", "end_date", mode="before")
    @classmethod
    def _parse_date(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a date as YYYY-MM-DD") from exc
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> Campaign:
        if self.start_date < EARLIEST_DATE:
            raise ValueError(f"start_date {self.start_date} is before {EARLIEST_DATE}")
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self

    @property
    def query_hash(self) -> str:
        body = json.dumps(self.query.to_api(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def api_request_body(self, start: date, end: date, max_count: int = 100) -> dict[str, Any]:
        """The body the video query endpoint receives for one window (dates as YYYYMMDD)."""
        return {
            "query": self.query.to_api(),
            "start_date": start.strftime("%Y%m%d"),
            "end_date": end.strftime("%Y%m%d"),
            "max_count": max_count,
        }


def load_campaign(path: str | Path) -> Campaign:
    """Read and validate a campaign TOML file; errors name the file and each bad field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CampaignError(f"{path}: no such campaign file") from exc
    except UnicodeDecodeError as exc:
        raise CampaignError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    if "\x00" in text:
        raise CampaignError(f"{path}: contains a NUL byte")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignError(f"{path}: not valid TOML: {exc}") from exc
    campaign = parse_campaign(data, source=str(path))
    missing = campaign.watch.resolve_paths(path.parent) if campaign.watch else []
    if missing:
        raise CampaignError(
            f"{path}: watch examples not found (paths are relative to the campaign file): "
            + "; ".join(missing)
        )
    return campaign


def parse_campaign(data: dict[str, Any], source: str = "campaign") -> Campaign:
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'campaign'}: {_message(err)}"
            for err in exc.errors()
        )
        raise CampaignError(f"{source}: {problems}") from None


def _message(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    return str(err["msg"]).removeprefix("Value error, ")

"""What a public export changes: no video known gone, no one named.

Usernames become a salted hash (at most), @handles in free text and hashtags are masked, and the
video id follows the chosen `--ids` policy. Whole columns at a time: the masking is one regular
expression over the column, the hashes one per distinct username.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import polars as pl
from pydantic import SecretStr

from gettok.tasks.export.columns import TEXT_COLUMNS, Column

# A handle after `@`, its fullwidth `＠` or small `﹫` forms, spaces allowed in between ("@ name").
MENTION = re.compile(r"[@\uff20\ufe6b][^\S\n]*[\w.]+")
# The same for polars (Rust's regex): its \w lacks the "other numbers" (², ½) Python's has.
MENTION_COLUMNS = r"[@\x{FF20}\x{FE6B}][^\S\n]*[\w\p{No}.]+"
GONE = ("private", "removed")


def user_hash(username: str | None, salt: SecretStr) -> str | None:
    if not username:
        return None
    key = salt.get_secret_value().encode()
    return hmac.new(key, username.casefold().encode(), hashlib.sha256).hexdigest()[:16]


def video_hash(video_id: int, salt: SecretStr) -> str:
    key = salt.get_secret_value().encode()
    return hmac.new(key, str(video_id).encode(), hashlib.sha256).hexdigest()[:16]


def mask_mentions(text: str) -> str:
    return MENTION.sub("@user", text)


def published(table: pl.DataFrame) -> pl.DataFrame:
    """The videos a public export may carry: known gone at any stage (pruned, or found private
    or removed at download) never goes out."""
    gone = pl.col("download_status").is_in(GONE).fill_null(False)
    return table.filter(pl.col("pruned_at").is_null() & ~gone)


def make_public(table: pl.DataFrame, columns: list[Column], salt: SecretStr | None) -> pl.DataFrame:
    """`table` (already `published`) with hashes and masks, as `columns`."""
    names = {c.name for c in columns}
    masked = [
        pl.col(name).str.replace_all(MENTION_COLUMNS, "@user")
        for name in TEXT_COLUMNS
        if name in names
    ]
    table = table.with_columns(
        *masked,
        hashtags=pl.col("hashtags").list.eval(
            pl.element().str.replace_all(MENTION_COLUMNS, "@user")
        ),
    )
    if "user_hash" in names and salt:
        users = table["username"].drop_nulls().unique().to_list()
        hashes = {u: user_hash(u, salt) for u in users}
        table = table.with_columns(
            user_hash=pl.col("username").replace_strict(hashes, default=None, return_dtype=pl.Utf8)
        )
    if "video_hash" in names and salt:
        ids = table["video_id"].to_list()
        table = table.with_columns(video_hash=pl.Series([video_hash(i, salt) for i in ids]))
    return table.select(pl.col(c.name).cast(c.dtype) for c in columns)

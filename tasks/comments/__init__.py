"""Comments and user info: what the Research API says around a campaign's videos (issue 14).

`collect_comments` pages `research/video/comment/list/` for the chosen videos (all, the top N by
comment_count, or given ids) up to the API's 1,000 per video, storing each page with its video's
cursor (`comments`, `comment_checkpoints`), so a rerun after kill -9 resumes where it stopped.
`fetch_user_info` records `research/user/info/` for the campaign's authors (`users`), cached for
N days, with a status for users the API will not describe. Both spend the same daily request
budget and ledger as the video query. `export_comments` writes the comments beside the videos'
export, pseudonymised in public exports.
"""

from gettok.lazy_exports import lazy_exports

# Read from their modules on first use: `gettok export` writes comments and must not import the
# Research API client that collecting them needs.
__getattr__ = lazy_exports(
    __name__,
    {"export_comments": "export", "collect_comments": "runs", "fetch_user_info": "users"},
)

__all__ = ["collect_comments", "export_comments", "fetch_user_info"]

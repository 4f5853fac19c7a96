"""Comments and user info: what the Research API says around a campaign's videos (issue 14).

`collect_comments` pages `research/video/comment/list/` for the chosen videos (all, the top N by
comment_count, or given ids) up to the API's 1,000 per video, storing each page with its video's
cursor (`comments`, `comment_checkpoints`), so a rerun after kill -9 resumes where it stopped.
`fetch_user_info` records `research/user/info/` for the campaign's authors (`users`), cached for
N days, with a status for users the API will not describe. Both spend the same daily request
budget and ledger as the video query. `export_comments` writes the comments beside the videos'
export, pseudonymised in public exports.
"""

from gettok.tasks.comments.export import export_comments
from gettok.tasks.comments.runs import collect_comments
from gettok.tasks.comments.users import fetch_user_info

__all__ = ["collect_comments", "export_comments", "fetch_user_info"]

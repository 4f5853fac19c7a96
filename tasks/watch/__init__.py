"""Watch: check new videos' frames for the campaign's watchlist targets (reference images by face
embedding, or a text description by the LLM) and alert on matches.

Records one `annotations` row (kind `watch_match`) per video and target, with the model or matcher
settings as provenance; a video that could not be checked is left for the next run.
"""

from gettok.tasks.watch.description import watch_for_description
from gettok.tasks.watch.watchlist import WatchResult, watch_for_image

__all__ = ["WatchResult", "watch_for_description", "watch_for_image"]

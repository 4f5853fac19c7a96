"""Export: the campaign's dataset as one table (parquet, CSV or JSON lines) with its dictionary.

Records nothing in the database: it writes `<campaign>[.public].<format>` and its data dictionary;
the public variant leaves out usernames (a salted hash at most), raw payloads, media paths and
pruned videos. A rerun that would write the same bytes counts as skipped.
"""

from gettok.tasks.export.dataset import (
    CampaignNotFound,
    ExportResult,
    campaign_id,
    campaign_table,
    export_dataset,
    export_frame,
)

__all__ = [
    "CampaignNotFound",
    "ExportResult",
    "campaign_id",
    "campaign_table",
    "export_dataset",
    "export_frame",
]

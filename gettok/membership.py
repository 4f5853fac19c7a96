"""Which videos belong to a campaign: the one selector every stage's queries start from.

A video joins a campaign when a collection window finds it (`campaign_videos` rows); a video the
prune stage removed stays a member (exports list it as pruned) but no stage works on it again.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from gettok.models.schema import Campaign, CampaignVideo, Video


def campaign_videos(campaign: str | int, *, with_pruned: bool = False) -> Select:
    """SELECT of the ids of the campaign's videos (by campaign name or row id), pruned ones left
    out unless `with_pruned`; use it as `X.video_id.in_(campaign_videos(name))`."""
    query = select(CampaignVideo.video_id)
    if isinstance(campaign, str):
        query = query.join(Campaign, Campaign.id == CampaignVideo.campaign_id).where(
            Campaign.name == campaign
        )
    else:
        query = query.where(CampaignVideo.campaign_id == campaign)
    if not with_pruned:
        query = query.join(Video, Video.id == CampaignVideo.video_id).where(
            Video.pruned_at.is_(None)
        )
    # Never borrow the outer query's `videos`: membership is decided inside this subquery alone.
    return query.correlate(None)

"""gettok: collect, download and enrich TikTok videos for computational social science."""

__version__ = "0.1.0"

"""Data models: what the Research API sends, campaigns, and the database schema."""

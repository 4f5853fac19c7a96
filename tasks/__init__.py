"""The work of each stage as plain functions, with thin Prefect task wrappers."""

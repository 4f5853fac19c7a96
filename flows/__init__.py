"""Prefect flows: each reads like the method section of a paper."""

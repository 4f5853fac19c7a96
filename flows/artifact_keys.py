"""Prefect artifact keys: only lowercase letters, digits and dashes are allowed."""


def artifact_key(prefix: str, name: str) -> str:
    """`prefix-name`, with every character Prefect refuses in a key turned into a dash."""
    return f"{prefix}-" + "".join(c if c.isalnum() else "-" for c in name.lower())

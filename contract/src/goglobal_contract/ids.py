"""Identifiers that sort by creation time (like UUIDv7), so `_id` order is cursor-pagination order."""

import secrets
import time

ID_PATTERN = r"^[0-9a-f]{32}$"


def new_id() -> str:
    """32 hex characters: 64 bits of nanosecond clock, then 64 random bits."""
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"

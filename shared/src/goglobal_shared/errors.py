"""Errors that decide what a consumer does with a record."""


class PermanentEventError(Exception):
    """The event is well formed but can never apply (illegal transition, unknown referral): dead-letter it."""

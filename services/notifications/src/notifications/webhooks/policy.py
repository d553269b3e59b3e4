"""What a delivery attempt's result means, when to try again, and when an endpoint is disabled. Pure."""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None  # None: no HTTP answer (timeout, connection error, a name that did not resolve)
    latency_ms: int
    error: str | None
    retry_after: str | None = None


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # timeouts, connection errors, 5xx, 429
    GIVE_UP = "give_up"  # other 4xx, 3xx (redirects are not followed)
    DISABLE = "disable"  # 410 Gone: the endpoint is retired


def classify(status_code: int | None) -> Verdict:
    """`None` means no HTTP answer (timeout, connection error)."""
    if status_code is None or status_code == 429 or status_code >= 500:
        return Verdict.RETRY
    if 200 <= status_code < 300:
        return Verdict.DELIVERED
    if status_code == 410:
        return Verdict.DISABLE
    return Verdict.GIVE_UP


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A `Retry-After` header (seconds or an HTTP date) as a delay; None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value.strip()))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(timedelta(0), when - now) if when.tzinfo else None


@dataclass(frozen=True)
class Schedule:
    delays_s: list[float]  # before attempt 1, 2, ... (the first is usually 0: immediately)
    scale: float = 1.0
    jitter: float = 0.1

    def next_attempt(
        self, attempts_made: int, now: datetime, server_asked: timedelta | None, rng: random.Random | None = None
    ) -> datetime | None:
        """When to try again after `attempts_made` attempts; None when the schedule is exhausted."""
        if attempts_made >= len(self.delays_s):
            return None
        base = self.delays_s[attempts_made] * self.scale
        spread = base * self.jitter
        delay = base + (rng or random).uniform(-spread, spread)
        if server_asked is not None:
            delay = max(delay, server_asked.total_seconds())
        return now + timedelta(seconds=max(0.0, delay))


def disable_reason(verdict: Verdict, failing_since: datetime, now: datetime, disable_after: timedelta) -> str | None:
    """Why a failing endpoint is disabled now: it answered 410 Gone, or it kept failing for `disable_after`."""
    since = failing_since if failing_since.tzinfo else failing_since.replace(tzinfo=now.tzinfo)
    if verdict is Verdict.DISABLE:
        return "the endpoint answered 410 Gone"
    if now - since >= disable_after:
        return f"every delivery failed since {since:%Y-%m-%d %H:%M} UTC"
    return None

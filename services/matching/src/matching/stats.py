"""How each lifecycle event changes a partner's statistics. Pure."""

from dataclasses import replace
from datetime import datetime

from matching.engine import PartnerStats


def offered(stats: PartnerStats, at: datetime) -> PartnerStats:
    return replace(stats, offers=stats.offers + 1, last_offered_at=at)


def expired(stats: PartnerStats) -> PartnerStats:
    return replace(stats, expired=stats.expired + 1)


def answered(stats: PartnerStats, hours: float, accepted: bool) -> PartnerStats:
    """An accept takes a capacity slot; both answers count towards response speed."""
    timing = replace(stats, responses=stats.responses + 1, response_hours_sum=stats.response_hours_sum + hours)
    if accepted:
        return replace(timing, accepted=stats.accepted + 1, open_referrals=stats.open_referrals + 1)
    return replace(timing, declined=stats.declined + 1)


def completed(stats: PartnerStats) -> PartnerStats:
    return replace(stats, completed=stats.completed + 1, open_referrals=max(0, stats.open_referrals - 1))


def released(stats: PartnerStats) -> PartnerStats:
    """The accepted referral was withdrawn or closed before completion: its slot frees up."""
    return replace(stats, open_referrals=max(0, stats.open_referrals - 1))


def rated(stats: PartnerStats, score: int) -> PartnerStats:
    return replace(stats, rating_sum=stats.rating_sum + score, rating_count=stats.rating_count + 1)

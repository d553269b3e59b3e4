"""The offer plan of one referral, as pure functions: who to offer next, and the events that say so."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from goglobal_shared.envelope import Envelope
from goglobal_shared.events import Candidate, EventPayload, ReferralMatched, ReferralOffered, ReferralUnmatched
from matching.engine import Match

SOURCE = "/goglobal/matching"


@dataclass(frozen=True)
class Decision:
    changes: dict[str, Any]
    events: list[Envelope]


def _wrap(referral_id: str, payload: EventPayload) -> Envelope:
    return Envelope.wrap(payload, source=SOURCE, subject=referral_id)


def first_plan(referral_id: str, ranked: list[Match], unmatched_reason: str, now: datetime) -> Decision:
    if not ranked:
        return Decision(
            {"status": "unmatched", "candidates": [], "offered": []},
            [_wrap(referral_id, ReferralUnmatched(referral_id=referral_id, reason=unmatched_reason, unmatched_at=now))],
        )
    candidates = [
        Candidate(partner_id=m.partner.id, partner_name=m.partner.name, score=m.score, reasons=m.reasons)
        for m in ranked
    ]
    windows = {m.partner.id: m.partner.response_window_hours for m in ranked}
    matched = _wrap(referral_id, ReferralMatched(referral_id=referral_id, candidates=candidates, matched_at=now))
    plan = {"status": "matched", "candidates": [c.model_dump() for c in candidates], "windows": windows, "offered": []}
    offer = next_offer(referral_id, plan, now)
    return Decision({**plan, **offer.changes}, [matched, *offer.events])


def next_offer(referral_id: str, plan: dict[str, Any], now: datetime) -> Decision:
    """Offers the best candidate not offered yet, or declares the referral unmatched."""
    remaining = [c for c in plan["candidates"] if c["partner_id"] not in plan["offered"]]
    if not remaining:
        reason = f"all {len(plan['offered'])} candidate(s) declined or did not answer"
        return Decision(
            {"status": "unmatched", "current_offer": None},
            [_wrap(referral_id, ReferralUnmatched(referral_id=referral_id, reason=reason, unmatched_at=now))],
        )
    chosen = remaining[0]
    return offer_to(
        referral_id,
        plan,
        chosen["partner_id"],
        chosen["partner_name"],
        plan.get("windows", {}).get(chosen["partner_id"], 48),
        now,
    )


def offer_to(
    referral_id: str, plan: dict[str, Any], partner_id: str, partner_name: str, window_hours: int, now: datetime
) -> Decision:
    offered = [*plan["offered"], partner_id]
    event = ReferralOffered(
        referral_id=referral_id,
        partner_id=partner_id,
        partner_name=partner_name,
        offered_at=now,
        respond_by=now + timedelta(hours=window_hours),
        round=len(offered),
    )
    return Decision({"status": "offered", "offered": offered, "current_offer": partner_id}, [_wrap(referral_id, event)])

"""Matching's reactions to referral lifecycle events; each handler is idempotent on its event."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from goglobal_shared.envelope import Envelope
from goglobal_shared.errors import PermanentEventError
from goglobal_shared.events import ReferralAssigned, ReferralDeclined, ReferralSubmitted
from matching.adapters.match_repository import MatchRepository
from matching.adapters.partner_directory import PartnerDirectory
from matching.engine import Request, rank
from matching.offers import Decision, first_plan, next_offer, offer_to


async def on_submitted(envelope: Envelope, directory: PartnerDirectory, plans: MatchRepository, now: datetime) -> None:
    submitted = envelope.data
    assert isinstance(submitted, ReferralSubmitted)
    need = submitted.need
    candidates = await directory.offering(need.service_category)
    languages = list(dict.fromkeys([*need.languages, *submitted.enterprise_languages]))
    ranked = rank(candidates, Request(need.service_category, list(need.target_markets), languages))
    reason = f"no active partner offers {need.service_category.value} in {', '.join(need.target_markets)}"
    decision = first_plan(submitted.referral_id, ranked, reason, now)
    await plans.create(
        submitted.referral_id, {**decision.changes, "submitted_event_id": envelope.id}, decision.events, now
    )


async def on_declined(envelope: Envelope, plans: MatchRepository, now: datetime) -> None:
    declined = envelope.data
    assert isinstance(declined, ReferralDeclined)

    def decide(plan: dict[str, Any]) -> Decision | None:
        if plan.get("current_offer") != declined.partner_id:
            return None  # already moved on (a redelivered decline)
        return next_offer(declined.referral_id, plan, now)

    await _change(plans, declined.referral_id, decide, now)


async def on_assigned(envelope: Envelope, directory: PartnerDirectory, plans: MatchRepository, now: datetime) -> None:
    assigned = envelope.data
    assert isinstance(assigned, ReferralAssigned)
    partner = await directory.get(assigned.partner_id)
    if partner is None or not partner.active:
        raise PermanentEventError(f"partner {assigned.partner_id} is not an active partner in the directory")

    def decide(plan: dict[str, Any]) -> Decision | None:
        if plan.get("status") != "unmatched":
            return None  # the assignment was already turned into an offer
        return offer_to(assigned.referral_id, plan, partner.id, partner.name, partner.response_window_hours, now)

    await _change(plans, assigned.referral_id, decide, now)


async def on_ended(envelope: Envelope, plans: MatchRepository, now: datetime) -> None:
    """Withdrawn or closed: no further offers."""

    def decide(plan: dict[str, Any]) -> Decision | None:
        return None if plan.get("status") == "ended" else Decision({"status": "ended", "current_offer": None}, [])

    await _change(plans, envelope.subject, decide, now)


async def _change(
    plans: MatchRepository, referral_id: str, decide: Callable[[dict[str, Any]], Decision | None], now: datetime
) -> None:
    if not await plans.change(referral_id, decide, now):
        raise PermanentEventError(f"no offer plan for referral {referral_id}")

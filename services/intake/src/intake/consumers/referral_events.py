"""Intake follows the matching service's decisions to keep each referral's status current."""

from collections.abc import Callable, Mapping
from datetime import datetime

from goglobal_shared.consumer import Handler
from goglobal_shared.enums import ReferralStatus
from goglobal_shared.envelope import Envelope
from goglobal_shared.errors import PermanentEventError
from goglobal_shared.events import ReferralMatched, ReferralUnmatched
from goglobal_shared.state_machine import IllegalTransition
from intake.adapters.referral_repository import ReferralNotFound, ReferralRepository


async def on_matched(envelope: Envelope, referrals: ReferralRepository, now: datetime) -> None:
    event = envelope.data
    assert isinstance(event, ReferralMatched)
    fields = {
        "matched_partner": {
            "partner_id": event.partner_id,
            "partner_name": event.partner_name,
            "score": event.score,
            "reasons": event.reasons,
        }
    }
    await _apply(referrals, envelope, ReferralStatus.MATCHED, fields, now)


async def on_unmatched(envelope: Envelope, referrals: ReferralRepository, now: datetime) -> None:
    event = envelope.data
    assert isinstance(event, ReferralUnmatched)
    await _apply(referrals, envelope, ReferralStatus.UNMATCHED, {"unmatched_reason": event.reason}, now)


async def _apply(
    referrals: ReferralRepository,
    envelope: Envelope,
    target: ReferralStatus,
    fields: Mapping[str, object],
    now: datetime,
) -> None:
    try:
        await referrals.apply(envelope.subject, envelope.id, target, fields, now)
    except (ReferralNotFound, IllegalTransition) as exc:
        raise PermanentEventError(f"{envelope.type} cannot apply to referral {envelope.subject}: {exc}") from exc


def handlers(referrals: ReferralRepository, clock: Callable[[], datetime]) -> dict[str, Handler]:
    async def matched(envelope: Envelope) -> None:
        await on_matched(envelope, referrals, clock())

    async def unmatched(envelope: Envelope) -> None:
        await on_unmatched(envelope, referrals, clock())

    return {ReferralMatched.event_type: matched, ReferralUnmatched.event_type: unmatched}

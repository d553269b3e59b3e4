"""On `referral.submitted`: pick a partner, store the decision with its event, let the relay publish it."""

from datetime import datetime

from goglobal_shared.envelope import Envelope
from goglobal_shared.events import ReferralMatched, ReferralSubmitted, ReferralUnmatched
from matching.adapters.match_repository import MatchRepository
from matching.adapters.partner_directory import PartnerDirectory
from matching.engine import pick_best

SOURCE = "/goglobal/matching"


async def on_submitted(
    envelope: Envelope, directory: PartnerDirectory, matches: MatchRepository, now: datetime
) -> None:
    submitted = envelope.data
    assert isinstance(submitted, ReferralSubmitted)
    candidates = await directory.offering(submitted.service_category)
    match = pick_best(candidates, submitted.service_category, submitted.target_markets)
    outcome: ReferralMatched | ReferralUnmatched
    if match is None:
        outcome = ReferralUnmatched(
            referral_id=submitted.referral_id,
            reason=f"no active partner offers {submitted.service_category.value} "
            f"in {', '.join(submitted.target_markets)}",
            unmatched_at=now,
        )
        decision: dict[str, object] = {"status": "unmatched", "submitted_event_id": envelope.id}
    else:
        outcome = ReferralMatched(
            referral_id=submitted.referral_id,
            partner_id=match.partner.id,
            partner_name=match.partner.name,
            score=match.score,
            reasons=match.reasons,
            matched_at=now,
        )
        decision = {
            "status": "matched",
            "partner_id": match.partner.id,
            "score": match.score,
            "reasons": match.reasons,
            "submitted_event_id": envelope.id,
        }
    event = Envelope.wrap(outcome, source=SOURCE, subject=submitted.referral_id)
    await matches.record(submitted.referral_id, decision, event, now)

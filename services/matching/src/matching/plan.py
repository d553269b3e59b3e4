"""The offer plan of one referral, pure: who holds an offer, until when, and what happens next.

Strategies: `sequential` keeps one offer open at a time; `parallel` keeps up to k open, the first acceptance
wins and the other offers are withdrawn. An offer's deadline is part of the plan document (`next_deadline`),
so the scheduler that fires expiries is a query over stored plans: a restart loses no deadline, and a
deadline fires once because expiring removes the offer in the same write that queues the event.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from goglobal_contract.enums import OfferStrategy
from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
from goglobal_contract.events import (
    Candidate as CandidateEvent,
)
from goglobal_contract.events import (
    OfferWithdrawalReason,
    ReferralExpired,
    ReferralMatched,
    ReferralOffered,
    ReferralOfferWithdrawn,
    ReferralUnmatched,
)
from matching.engine import Candidate, Partner

SOURCE = "/goglobal/matching"


class PlanStatus(StrEnum):
    OFFERING = "offering"
    ACCEPTED = "accepted"
    UNMATCHED = "unmatched"
    COMPLETED = "completed"
    ENDED = "ended"  # withdrawn by the enterprise or closed by an operator


@dataclass
class Offer:
    partner_id: str
    partner_name: str
    offered_at: datetime
    respond_by: datetime
    round: int


@dataclass
class Plan:
    referral_id: str
    request: dict[str, Any]  # what ranking needs again on a re-offer (see matching.engine.Request)
    strategy: OfferStrategy
    width: int
    status: PlanStatus = PlanStatus.OFFERING
    candidates: list[dict[str, Any]] = field(default_factory=list)
    offered: list[str] = field(default_factory=list)
    open_offers: list[Offer] = field(default_factory=list)
    offered_at: dict[str, datetime] = field(default_factory=dict)
    accepted_by: str | None = None
    version: int = 0
    pending: list[Envelope] = field(default_factory=list)

    @property
    def next_deadline(self) -> datetime | None:
        return min((o.respond_by for o in self.open_offers), default=None)

    @property
    def wants_offers(self) -> bool:
        return self.status is PlanStatus.OFFERING and len(self.open_offers) < self.width

    # -- offering ----------------------------------------------------------------------------------

    def first_ranking(self, ranked: list[Candidate], now: datetime) -> None:
        """Announces the ranking (explainable: scores and reasons) before the first offers go out."""
        self.candidates = [_candidate_doc(c) for c in ranked]
        if ranked:
            events = [CandidateEvent(**c) for c in self.candidates]
            self._emit(ReferralMatched(referral_id=self.referral_id, candidates=events, matched_at=now))

    def offer(self, ranked: list[Candidate], now: datetime, hour: timedelta) -> None:
        """Fills the open slots from `ranked` (best first); with none open and none left, the referral is unmatched."""
        for candidate in ranked:
            if not self.wants_offers:
                break
            if candidate.partner.id not in self.offered:
                self._offer(candidate.partner, now, hour)
        if self.status is PlanStatus.OFFERING and not self.open_offers:
            self.status = PlanStatus.UNMATCHED
            tried = len(self.offered)
            reason = (
                f"no partner left to offer after {tried} offer(s)"
                if tried
                else "no active partner with free capacity covers this need"
            )
            self._emit(ReferralUnmatched(referral_id=self.referral_id, reason=reason, unmatched_at=now))

    def assign(self, partner: Partner, now: datetime, hour: timedelta) -> bool:
        """An operator's choice for an unmatched referral: offered whatever the ranking says."""
        if self.status is not PlanStatus.UNMATCHED:
            return False
        self.status = PlanStatus.OFFERING
        self._offer(partner, now, hour)
        return True

    def _offer(self, partner: Partner, now: datetime, hour: timedelta) -> None:
        offer = Offer(partner.id, partner.name, now, now + hour * partner.response_window_hours, len(self.offered) + 1)
        self.open_offers.append(offer)
        self.offered.append(partner.id)
        self.offered_at[partner.id] = now
        self._emit(
            ReferralOffered(
                referral_id=self.referral_id,
                partner_id=partner.id,
                partner_name=partner.name,
                offered_at=now,
                respond_by=offer.respond_by,
                round=offer.round,
            )
        )

    # -- answers and deadlines ---------------------------------------------------------------------

    def expire_due(self, now: datetime) -> list[str]:
        due = [o for o in self.open_offers if o.respond_by <= now]
        for offer in due:
            self.open_offers.remove(offer)
            self._emit(
                ReferralExpired(
                    referral_id=self.referral_id,
                    partner_id=offer.partner_id,
                    offered_at=offer.offered_at,
                    expired_at=now,
                )
            )
        return [o.partner_id for o in due]

    def declined(self, partner_id: str) -> bool:
        offer = self._open(partner_id)
        if offer is None:
            return False
        self.open_offers.remove(offer)
        return True

    def accepted(self, partner_id: str, now: datetime) -> bool:
        """Intake decided who was first; every other open offer is withdrawn."""
        if self.accepted_by is not None or self.status in (PlanStatus.ENDED, PlanStatus.COMPLETED):
            return False
        self.status, self.accepted_by = PlanStatus.ACCEPTED, partner_id
        self._withdraw_open(OfferWithdrawalReason.ACCEPTED_ELSEWHERE, now, keep=partner_id)
        return True

    def ended(self, reason: OfferWithdrawalReason, now: datetime) -> bool:
        if self.status in (PlanStatus.ENDED, PlanStatus.COMPLETED):
            return False
        self.status = PlanStatus.ENDED
        self._withdraw_open(reason, now)
        return True

    def completed(self) -> bool:
        if self.status is PlanStatus.COMPLETED:
            return False
        self.status = PlanStatus.COMPLETED
        return True

    def _withdraw_open(self, reason: OfferWithdrawalReason, now: datetime, keep: str | None = None) -> None:
        for offer in [o for o in self.open_offers if o.partner_id != keep]:
            self._emit(
                ReferralOfferWithdrawn(
                    referral_id=self.referral_id, partner_id=offer.partner_id, reason=reason, withdrawn_at=now
                )
            )
        self.open_offers = []

    def _open(self, partner_id: str) -> Offer | None:
        return next((o for o in self.open_offers if o.partner_id == partner_id), None)

    def _emit(self, payload: EventPayload) -> None:
        self.pending.append(Envelope.wrap(payload, source=SOURCE, subject=self.referral_id))


def _candidate_doc(candidate: Candidate) -> dict[str, Any]:
    return {
        "partner_id": candidate.partner.id,
        "partner_name": candidate.partner.name,
        "score": candidate.score,
        "reasons": candidate.reasons,
    }

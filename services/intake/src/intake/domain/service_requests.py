"""The service-request aggregate: one enterprise request and the referral each of its needs became.

Pure: every command checks its guard, changes state through the shared state machine, appends an entry to
the referral's append-only history and queues the event that announces it, with what each partner concerned
is told of it (`partner_messages`). The repository saves the whole aggregate, events included, in one document
write (single-document atomicity; no multi-document transaction is needed).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from goglobal_contract.enums import ReferralStatus as S
from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
from goglobal_contract.events import (
    NeedDetails,
    OfferWithdrawalReason,
    ReferralAccepted,
    ReferralAssigned,
    ReferralClosed,
    ReferralCompleted,
    ReferralDeclined,
    ReferralRated,
    ReferralStarted,
    ReferralSubmitted,
    ReferralWithdrawn,
    SubmittedNeed,
)
from goglobal_contract.ids import new_id
from goglobal_contract.partner_events import (
    OfferExpiredForPartner,
    ReferralAcceptedByPartner,
    ReferralClosedByOperator,
    ReferralOfferedToPartner,
    ReferralRatedByEnterprise,
    ReferralWithdrawnByEnterprise,
)
from goglobal_contract.state_machine import TERMINAL, transition
from intake.domain.inputs.enterprise import EnterpriseProfile
from intake.domain.inputs.service_request import Completion, Decline, Need, Rating
from intake.domain.partner_messages import identity, need_summary, offers_withdrawn, profile_summary

SOURCE = "/goglobal/intake"


class DomainError(Exception):
    """A command that the rules refuse; the API turns it into 409 and says why."""


class NotAParty(DomainError):
    """The caller has no part in this referral (the API answers 404: it must not learn it exists)."""


@dataclass(frozen=True)
class Actor:
    """Who caused a change: `enterprise:<id>`, `partner:<id>`, `operator:<id>` or `service:<name>`."""

    label: str
    cause_id: str  # the HTTP request id or the event id that caused it


@dataclass(frozen=True)
class Offer:
    """Matching's decision to offer a referral to a partner, as intake records it."""

    referral_id: str
    partner_id: str
    offered_at: datetime
    respond_by: datetime
    round: int = 1


@dataclass
class Referral:
    id: str
    need: Need
    status: S = S.SUBMITTED
    offered_to: list[str] = field(default_factory=list)  # every partner it was ever offered to
    open_offers: list[str] = field(default_factory=list)  # partners that may accept now (several: parallel)
    offer_deadlines: dict[str, datetime] = field(default_factory=dict)  # every offer's respond-by time
    partner_id: str | None = None  # the partner that accepted
    candidates: list[dict[str, Any]] = field(default_factory=list)
    decline: dict[str, Any] | None = None
    completion: dict[str, Any] | None = None
    rating: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ServiceRequest:
    id: str
    enterprise_id: str
    enterprise_name: str
    created_at: datetime
    referrals: list[Referral]
    version: int = 0
    idempotency_key: str | None = None
    pending: list[Envelope] = field(default_factory=list)

    def referral(self, referral_id: str) -> Referral:
        for referral in self.referrals:
            if referral.id == referral_id:
                return referral
        raise KeyError(referral_id)

    @property
    def progress(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for referral in self.referrals:
            counts[referral.status.value] = counts.get(referral.status.value, 0) + 1
        return counts

    @property
    def status(self) -> str:
        """Combined progress: `open` while any referral is open, else `done`."""
        return "done" if all(r.status in TERMINAL for r in self.referrals) else "open"

    # -- commands -----------------------------------------------------------------------------------

    def accept(
        self, referral_id: str, partner_id: str, enterprise: EnterpriseProfile, actor: Actor, now: datetime
    ) -> None:
        """`enterprise` is the profile as it stands now: its consent decides whether the contact is shared."""
        ref = self._offered_to(referral_id, partner_id)
        others = [p for p in ref.open_offers if p != partner_id]
        self._move(ref, S.ACCEPTED, actor, now, "accepted the offer")
        ref.partner_id, ref.open_offers = partner_id, []
        self._emit(ref, ReferralAccepted(referral_id=ref.id, partner_id=partner_id, accepted_at=now))
        self._emit(
            ref,
            ReferralAcceptedByPartner(
                partner_id=partner_id,
                referral_id=ref.id,
                accepted_at=now,
                enterprise=identity(self.enterprise_id, enterprise),
            ),
        )
        self._emit_all(ref, offers_withdrawn(ref.id, others, OfferWithdrawalReason.ACCEPTED_ELSEWHERE, now))

    def decline(self, referral_id: str, partner_id: str, decline: Decline, actor: Actor, now: datetime) -> None:
        ref = self._offered_to(referral_id, partner_id)
        why = f"{partner_id} declined: {decline.reason.value} {decline.text}".strip()
        self._offer_ended(ref, partner_id, S.DECLINED, "declined", actor, now, why)
        ref.decline = decline.model_dump(mode="json")
        self._emit(
            ref,
            ReferralDeclined(
                referral_id=ref.id, partner_id=partner_id, reason=decline.reason, text=decline.text, declined_at=now
            ),
        )

    def start(self, referral_id: str, partner_id: str, actor: Actor, now: datetime) -> None:
        ref = self._accepted_by(referral_id, partner_id, "start")
        self._move(ref, S.IN_PROGRESS, actor, now, "started work")
        self._emit(ref, ReferralStarted(referral_id=ref.id, partner_id=partner_id, started_at=now))

    def complete(self, referral_id: str, partner_id: str, completion: Completion, actor: Actor, now: datetime) -> None:
        ref = self._accepted_by(referral_id, partner_id, "complete")
        self._move(ref, S.COMPLETED, actor, now, f"completed: {completion.outcome.value}")
        ref.completion = completion.model_dump(mode="json")
        self._emit(
            ref,
            ReferralCompleted(
                referral_id=ref.id,
                partner_id=partner_id,
                outcome=completion.outcome,
                notes=completion.notes,
                completed_at=now,
            ),
        )

    def rate(self, referral_id: str, rating: Rating, actor: Actor, now: datetime) -> None:
        ref = self.referral(referral_id)
        if ref.status is not S.COMPLETED:
            raise DomainError("only a completed referral can be rated")
        if ref.rating is not None:
            raise DomainError("this referral was already rated")
        assert ref.partner_id is not None
        ref.rating = {**rating.model_dump(mode="json"), "rated_at": now}
        self._record(ref, actor, now, "rated", ref.status, ref.status, f"{rating.score}/5")
        self._emit(
            ref,
            ReferralRated(
                referral_id=ref.id, partner_id=ref.partner_id, score=rating.score, comment=rating.comment, rated_at=now
            ),
        )
        self._emit(
            ref,
            ReferralRatedByEnterprise(
                partner_id=ref.partner_id, referral_id=ref.id, score=rating.score, comment=rating.comment, rated_at=now
            ),
        )

    def withdraw(self, referral_id: str, actor: Actor, now: datetime) -> None:
        ref = self.referral(referral_id)
        partner, open_offers = ref.partner_id or next(iter(ref.open_offers), None), ref.open_offers
        self._move(ref, S.WITHDRAWN, actor, now, "withdrawn by the enterprise")
        ref.open_offers = []
        self._emit(ref, ReferralWithdrawn(referral_id=ref.id, partner_id=partner, withdrawn_at=now))
        if ref.partner_id is not None:
            self._emit(
                ref, ReferralWithdrawnByEnterprise(partner_id=ref.partner_id, referral_id=ref.id, withdrawn_at=now)
            )
        self._emit_all(ref, offers_withdrawn(ref.id, open_offers, OfferWithdrawalReason.WITHDRAWN_BY_ENTERPRISE, now))

    def close(self, referral_id: str, reason: str, actor: Actor, now: datetime) -> None:
        ref = self.referral(referral_id)
        partner, open_offers = ref.partner_id or next(iter(ref.open_offers), None), ref.open_offers
        self._move(ref, S.CLOSED, actor, now, reason)
        ref.open_offers = []
        self._emit(ref, ReferralClosed(referral_id=ref.id, partner_id=partner, reason=reason, closed_at=now))
        if ref.partner_id is not None:
            self._emit(
                ref,
                ReferralClosedByOperator(partner_id=ref.partner_id, referral_id=ref.id, reason=reason, closed_at=now),
            )
        self._emit_all(ref, offers_withdrawn(ref.id, open_offers, OfferWithdrawalReason.CLOSED_BY_OPERATOR, now))

    def assign(self, referral_id: str, partner_id: str, actor: Actor, now: datetime) -> None:
        """An operator picks the partner for an unmatched referral; matching then offers it."""
        ref = self.referral(referral_id)
        if ref.status is not S.UNMATCHED:
            raise DomainError(f"only an unmatched referral can be assigned (it is {ref.status.value})")
        self._record(ref, actor, now, "assigned", ref.status, ref.status, f"assigned to {partner_id}")
        self._emit(ref, ReferralAssigned(referral_id=ref.id, partner_id=partner_id, assigned_at=now))

    # -- what matching decided ------------------------------------------------------------------------

    def matched(self, referral_id: str, candidates: list[dict[str, Any]], actor: Actor, now: datetime) -> bool:
        ref = self.referral(referral_id)
        if not self._open_for_offers(ref):
            return False
        self._move(ref, S.MATCHED, actor, now, f"{len(candidates)} candidate(s)")
        ref.candidates = candidates
        return True

    def unmatched(self, referral_id: str, reason: str, actor: Actor, now: datetime) -> bool:
        ref = self.referral(referral_id)
        if not self._open_for_offers(ref):
            return False
        self._move(ref, S.UNMATCHED, actor, now, reason)
        ref.open_offers = []
        return True

    def offered(self, offer: Offer, enterprise: EnterpriseProfile | None, actor: Actor, now: datetime) -> bool:
        """False when the offer came too late to matter (the referral was taken or ended meanwhile). The partner
        is told of it with the enterprise's anonymous profile as it stands now."""
        referral_id, partner_id = offer.referral_id, offer.partner_id
        ref = self.referral(referral_id)
        if not self._open_for_offers(ref) or partner_id in ref.open_offers:
            return False
        if ref.status is S.OFFERED:  # one more parallel offer
            self._record(ref, actor, now, "offered", ref.status, ref.status, f"also offered to {partner_id}")
        else:
            self._move(ref, S.OFFERED, actor, now, f"offered to {partner_id}")
        ref.open_offers.append(partner_id)
        ref.offer_deadlines[partner_id] = offer.respond_by
        if partner_id not in ref.offered_to:
            ref.offered_to.append(partner_id)
        self._emit(
            ref,
            ReferralOfferedToPartner(
                partner_id=partner_id,
                referral_id=ref.id,
                need=need_summary(ref.need),
                enterprise=profile_summary(enterprise),
                offered_at=offer.offered_at,
                respond_by=offer.respond_by,
                round=offer.round,
            ),
        )
        return True

    def expired(self, referral_id: str, partner_id: str, offered_at: datetime, actor: Actor, now: datetime) -> bool:
        ref = self.referral(referral_id)
        if partner_id not in ref.open_offers:
            return False  # it was accepted, declined or withdrawn first
        self._offer_ended(ref, partner_id, S.EXPIRED, "expired", actor, now, f"{partner_id} did not answer in time")
        self._emit(
            ref,
            OfferExpiredForPartner(partner_id=partner_id, referral_id=ref.id, offered_at=offered_at, expired_at=now),
        )
        return True

    def offer_withdrawn(
        self, referral_id: str, partner_id: str, why: OfferWithdrawalReason, actor: Actor, now: datetime
    ) -> bool:
        ref = self.referral(referral_id)
        if partner_id not in ref.open_offers:
            return False
        ref.open_offers.remove(partner_id)
        self._record(ref, actor, now, "offer_withdrawn", ref.status, ref.status, f"{partner_id}: {why.value}")
        self._emit_all(ref, offers_withdrawn(ref.id, [partner_id], why, now))
        return True

    # -- helpers ------------------------------------------------------------------------------------

    def has_applied(self, referral_id: str, cause_id: str) -> bool:
        return any(step["cause_id"] == cause_id for step in self.referral(referral_id).history)

    def _offered_to(self, referral_id: str, partner_id: str) -> Referral:
        ref = self.referral(referral_id)
        if partner_id not in ref.offered_to:
            raise NotAParty(referral_id)
        if ref.status is not S.OFFERED or partner_id not in ref.open_offers:
            raise DomainError(f"the offer to {partner_id} is not open (the referral is {ref.status.value})")
        return ref

    def _offer_ended(
        self, ref: Referral, partner_id: str, last: S, action: str, actor: Actor, now: datetime, why: str
    ) -> None:
        """One open offer ends; the referral leaves `offered` only when it was the last one."""
        ref.open_offers.remove(partner_id)
        if ref.open_offers:
            self._record(ref, actor, now, action, ref.status, ref.status, why)
        else:
            self._move(ref, last, actor, now, why)

    @staticmethod
    def _open_for_offers(ref: Referral) -> bool:
        return ref.status not in TERMINAL and ref.partner_id is None

    def _accepted_by(self, referral_id: str, partner_id: str, action: str) -> Referral:
        """The referral, if `partner_id` accepted it; else the partner is told what stands in its way (an open
        offer is not an acceptance; another partner accepted; its offer ended)."""
        ref = self.referral(referral_id)
        if partner_id not in ref.offered_to:
            raise NotAParty(referral_id)
        if ref.partner_id == partner_id:
            return ref
        if partner_id in ref.open_offers:
            raise DomainError(f"this referral is offered to you, not accepted: accept it first, then {action} it")
        if ref.partner_id is not None:
            raise DomainError(
                f"another partner accepted this referral: only the partner that accepted it can {action} it"
            )
        raise DomainError(
            f"your offer of this referral ended before you accepted it (declined, expired or withdrawn; the referral "
            f"is {ref.status.value}): only the partner that accepted a referral can {action} it"
        )

    def _move(self, ref: Referral, target: S, actor: Actor, now: datetime, why: str) -> None:
        current = ref.status
        try:
            ref.status = transition(current, target)
        except ValueError as exc:
            raise DomainError(str(exc)) from exc
        self._record(ref, actor, now, target.value, current, target, why)

    def _record(self, ref: Referral, actor: Actor, now: datetime, action: str, before: S, after: S, why: str) -> None:
        ref.history.append(
            {
                "at": now,
                "actor": actor.label,
                "action": action,
                "from": before.value,
                "to": after.value,
                "why": why,
                "cause_id": actor.cause_id,
            }
        )

    def _emit(self, ref: Referral, payload: EventPayload) -> None:
        self.pending.append(Envelope.wrap(payload, source=SOURCE, subject=ref.id))

    def _emit_all(self, ref: Referral, payloads: Sequence[EventPayload]) -> None:
        for payload in payloads:
            self._emit(ref, payload)


def request_id_of(referral_id: str) -> str:
    """A referral's id is its request's id with another last byte: the request is found without a lookup."""
    return referral_id[:-2] + "00"


def _new_request_ids(count: int) -> tuple[str, list[str]]:
    if not 1 <= count < 256:
        raise DomainError(f"a request has 1 to 255 needs, not {count}")
    request_id = new_id()[:-2] + "00"
    return request_id, [request_id[:-2] + f"{n:02x}" for n in range(1, count + 1)]


def submit(
    enterprise_id: str,
    enterprise: dict[str, Any],
    needs: list[Need],
    actor: Actor,
    now: datetime,
    idempotency_key: str | None = None,
) -> ServiceRequest:
    """A new request: one referral per need, each announced by its own `referral.submitted` event."""
    request_id, referral_ids = _new_request_ids(len(needs))
    request = ServiceRequest(
        id=request_id,
        enterprise_id=enterprise_id,
        enterprise_name=enterprise["legal_name_en"],
        created_at=now,
        referrals=[],
        idempotency_key=idempotency_key,
    )
    details = [NeedDetails.model_validate(need.model_dump(mode="json")) for need in needs]
    whole = [SubmittedNeed(referral_id=r, need=d) for r, d in zip(referral_ids, details, strict=True)]
    for position, (referral_id, need) in enumerate(zip(referral_ids, needs, strict=True)):
        ref = Referral(id=referral_id, need=need)
        request.referrals.append(ref)
        request._record(ref, actor, now, "submitted", S.SUBMITTED, S.SUBMITTED, "submitted by the enterprise")
        request._emit(
            ref,
            ReferralSubmitted(
                referral_id=ref.id,
                request_id=request.id,
                enterprise_id=enterprise_id,
                enterprise_name=enterprise["legal_name_en"],
                enterprise_sector=enterprise.get("sector"),
                enterprise_languages=enterprise.get("preferred_languages", []),
                need=details[position],
                submitted_at=now,
                request_needs=whole if position == 0 else [],
            ),
        )
    return request

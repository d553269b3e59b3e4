"""The steps the service tests share: parties registered through the use cases, and matching's decisions recorded
as intake's consumer records them (`intake.service_layer.decisions.record_decision`)."""

from datetime import timedelta

from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
from goglobal_contract.events import Candidate, ReferralMatched, ReferralOffered, ReferralUnmatched
from intake.api.deps import enterprises_of, partners_of, referrals_of, submissions_of
from intake.auth.keys import Principal, Role
from intake.domain.inputs.enterprise import EnterpriseProfile
from intake.domain.inputs.partner import PartnerProfile
from intake.domain.inputs.service_request import Need
from intake.service_layer.decisions import record_decision
from intake.service_layer.enterprises import Enterprises
from intake.service_layer.partners import Partners
from intake.service_layer.referrals import Referrals
from intake.service_layer.submissions import Submissions
from tests import factories
from tests.service.fakes import World

OPERATOR = Principal(Role.OPERATOR, "duty-officer", "0" * 16)
LEGAL = {"service_category": "legal", "target_markets": ["AE"], "description": "Dubai subsidiary"}


def partner_principal(partner_id: str) -> Principal:
    return Principal(Role.PARTNER, partner_id, "1" * 16)


def referrals(world: World) -> Referrals:
    return referrals_of(world.intake)


def submissions(world: World) -> Submissions:
    return submissions_of(world.intake)


def enterprises(world: World) -> Enterprises:
    return enterprises_of(world.intake)


def partners(world: World) -> Partners:
    return partners_of(world.intake)


async def register_enterprise(world: World, consent: bool = True) -> Principal:
    registered = await enterprises(world).register(EnterpriseProfile.model_validate(factories.enterprise(consent)))
    return Principal(Role.ENTERPRISE, registered.enterprise["_id"], registered.key.key_id)


async def register_partner(world: World, partner_id: str, active: bool = True) -> Principal:
    body = factories.partner(partner_id, ["legal"], ["AE"], active=active)
    profile = PartnerProfile.model_validate({k: v for k, v in body.items() if k != "id"})
    await partners(world).replace(partner_id, profile, OPERATOR.label)
    return partner_principal(partner_id)


async def submit_one(world: World, enterprise: Principal) -> str:
    """The referral of a new request with one legal need."""
    submitted = await submissions(world).submit(enterprise, [Need.model_validate(LEGAL)], "req-submit")
    return submitted.request.referrals[0].id


async def decide(world: World, payload: EventPayload, referral_id: str) -> Envelope:
    envelope = Envelope.wrap(payload, source="/goglobal/matching", subject=referral_id)
    await record_decision(world.requests, world.enterprises, world.intake.clock, envelope)
    return envelope


async def offer(world: World, referral_id: str, *partner_ids: str) -> None:
    """Matching ranks the partners and offers the referral to each of them (in parallel when several)."""
    now = world.intake.clock()
    candidates = [
        Candidate(partner_id=p, partner_name=p.title(), score=0.9, reasons=["legal in AE"]) for p in partner_ids
    ]
    await decide(world, ReferralMatched(referral_id=referral_id, candidates=candidates, matched_at=now), referral_id)
    for partner_id in partner_ids:
        offered = ReferralOffered(
            referral_id=referral_id,
            partner_id=partner_id,
            partner_name=partner_id.title(),
            offered_at=now,
            respond_by=now + timedelta(hours=48),
            round=1,
        )
        await decide(world, offered, referral_id)


async def unmatched(world: World, referral_id: str) -> None:
    now = world.intake.clock()
    reason = ReferralUnmatched(referral_id=referral_id, reason="no partner serves AE", unmatched_at=now)
    await decide(world, reason, referral_id)

"""What a partner is told about a referral, built from the state intake records. Pure.

Each message is queued by the aggregate in the same write that records the change it tells of, so a partner
only hears of what intake already holds: an offer it can accept at once, an enterprise profile as the API would
show it, contact details only when the enterprise consents at the moment of acceptance."""

from datetime import datetime

from goglobal_contract.events import ContactDetails, OfferWithdrawalReason
from goglobal_contract.partner_events import (
    EnterpriseIdentity,
    EnterpriseProfileSummary,
    NeedSummary,
    OfferWithdrawnFromPartner,
)
from intake.domain.inputs.enterprise import EnterpriseProfile
from intake.domain.inputs.service_request import Need


def need_summary(need: Need) -> NeedSummary:
    data = need.model_dump(mode="json")
    return NeedSummary.model_validate({k: v for k, v in data.items() if k in NeedSummary.model_fields})


def profile_summary(enterprise: EnterpriseProfile | None) -> EnterpriseProfileSummary:
    """Enough to judge fit, nothing that identifies the company."""
    if enterprise is None:
        return EnterpriseProfileSummary()
    return EnterpriseProfileSummary(
        sector=enterprise.sector,
        size_band=enterprise.size_band.value,
        hq_province=enterprise.hq_province,
        preferred_languages=list(enterprise.preferred_languages),
    )


def identity(enterprise_id: str, enterprise: EnterpriseProfile) -> EnterpriseIdentity:
    """Who the enterprise is, for the partner that accepted; the contact only with the enterprise's consent."""
    contact = enterprise.contact
    shared = enterprise.consent.share_contact_with_accepted_partners
    return EnterpriseIdentity(
        enterprise_id=enterprise_id,
        legal_name_zh=enterprise.legal_name_zh,
        legal_name_en=enterprise.legal_name_en,
        hq_province=enterprise.hq_province,
        hq_city=enterprise.hq_city,
        contact=ContactDetails(name=contact.name, email=str(contact.email), phone=contact.phone) if shared else None,
    )


def offers_withdrawn(
    referral_id: str, partners: list[str], reason: OfferWithdrawalReason, now: datetime
) -> list[OfferWithdrawnFromPartner]:
    return [
        OfferWithdrawnFromPartner(partner_id=p, referral_id=referral_id, reason=reason, withdrawn_at=now)
        for p in partners
    ]

"""What each role may see of a referral. Scoping lives here and in `intake.service_layer.referrals.visible`,
nowhere else."""

from typing import Any

from goglobal_shared.mongo import Document
from intake.api.schemas import EnterpriseSummary, ReferralView, ServiceRequestOut
from intake.auth.keys import Principal, Role
from intake.domain.service_requests import Referral, ServiceRequest


def _enterprise(
    principal: Principal, request: ServiceRequest, referral: Referral, enterprise: Document | None
) -> EnterpriseSummary:
    profile: dict[str, Any] = (enterprise or {}).get("profile", {})
    summary = EnterpriseSummary(
        sector=profile.get("sector"), size_band=profile.get("size_band"), hq_province=profile.get("hq_province")
    )
    accepted_by_caller = principal.role is Role.PARTNER and referral.partner_id == principal.subject_id
    if principal.role is not Role.PARTNER or accepted_by_caller:
        summary.id = request.enterprise_id
        summary.legal_name_zh = profile.get("legal_name_zh")
        summary.legal_name_en = profile.get("legal_name_en")
    consented = profile.get("consent", {}).get("share_contact_with_accepted_partners", False)
    if principal.role is not Role.PARTNER or (accepted_by_caller and consented):
        summary.contact = profile.get("contact")
    return summary


def referral_view(
    principal: Principal, request: ServiceRequest, referral: Referral, enterprise: Document | None
) -> ReferralView:
    is_partner = principal.role is Role.PARTNER
    return ReferralView(
        id=referral.id,
        request_id=request.id,
        status=referral.status,
        need=referral.need,
        enterprise=_enterprise(principal, request, referral, enterprise),
        partner_id=referral.partner_id if not is_partner or referral.partner_id == principal.subject_id else None,
        open_offers=[p for p in referral.open_offers if not is_partner or p == principal.subject_id],
        candidates=referral.candidates if principal.role is Role.OPERATOR else None,
        decline=referral.decline if not is_partner else None,
        completion=referral.completion if not is_partner or referral.partner_id == principal.subject_id else None,
        rating=referral.rating if not is_partner or referral.partner_id == principal.subject_id else None,
        submitted_at=request.created_at,
    )


def request_view(principal: Principal, request: ServiceRequest, enterprise: Document | None) -> ServiceRequestOut:
    return ServiceRequestOut(
        id=request.id,
        enterprise_id=request.enterprise_id,
        status=request.status,
        progress=request.progress,
        referrals=[referral_view(principal, request, r, enterprise) for r in request.referrals],
        created_at=request.created_at,
    )


def history_view(principal: Principal, referral: Referral) -> list[dict[str, Any]]:
    """The audit trail as the caller may read it: a partner does not learn who else was offered the referral,
    nor (before it accepted) which enterprise is behind it."""
    if principal.role is not Role.PARTNER:
        return referral.history
    accepted = referral.partner_id == principal.subject_id
    others = [p for p in referral.offered_to if p != principal.subject_id]
    return [_redacted(step, principal.subject_id, accepted, others) for step in referral.history]


def _redacted(step: dict[str, Any], partner_id: str, accepted: bool, others: list[str]) -> dict[str, Any]:
    actor: str = step["actor"]
    if actor.startswith("partner:") and actor != f"partner:{partner_id}":
        actor = "partner"
    elif actor.startswith("enterprise:") and not accepted:
        actor = "enterprise"
    why: str = step["why"]
    for other in others:
        why = why.replace(other, "another partner")
    return {**step, "actor": actor, "why": why}

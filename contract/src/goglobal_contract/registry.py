"""Every event type this system publishes, by CloudEvents `type`: what consumers validate against and
what `make docs` turns into JSON Schemas and the AsyncAPI document."""

from goglobal_contract.event_base import EventPayload
from goglobal_contract.events import (
    ApiKeyRevoked,
    EnterpriseUpserted,
    PartnerUpserted,
    ReferralAccepted,
    ReferralAssigned,
    ReferralClosed,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralMatched,
    ReferralOffered,
    ReferralOfferWithdrawn,
    ReferralRated,
    ReferralStarted,
    ReferralSubmitted,
    ReferralUnmatched,
    ReferralWithdrawn,
)
from goglobal_contract.notification_events import NOTIFICATION_PAYLOADS
from goglobal_contract.partner_events import PARTNER_PAYLOADS

REFERRAL_PAYLOADS: tuple[type[EventPayload], ...] = (
    ReferralSubmitted, ReferralMatched, ReferralUnmatched, ReferralOffered, ReferralExpired, ReferralOfferWithdrawn,
    ReferralAccepted, ReferralDeclined, ReferralStarted, ReferralCompleted, ReferralRated, ReferralWithdrawn,
    ReferralClosed, ReferralAssigned,
)  # fmt: skip
DIRECTORY_PAYLOADS: tuple[type[EventPayload], ...] = (PartnerUpserted, EnterpriseUpserted)
API_KEY_PAYLOADS: tuple[type[EventPayload], ...] = (ApiKeyRevoked,)

PAYLOADS: dict[str, type[EventPayload]] = {
    cls.event_type: cls
    for cls in (*REFERRAL_PAYLOADS, *DIRECTORY_PAYLOADS, *API_KEY_PAYLOADS, *NOTIFICATION_PAYLOADS, *PARTNER_PAYLOADS)
}

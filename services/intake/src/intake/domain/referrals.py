"""Referral write model for intake: building a new referral and applying lifecycle events. No I/O."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from goglobal_shared.enums import ServiceCategory
from goglobal_shared.envelope import Envelope
from goglobal_shared.events import ReferralSubmitted

SOURCE = "/goglobal/intake"


@dataclass(frozen=True)
class NewReferral:
    enterprise_name: str
    service_category: ServiceCategory
    target_markets: list[str]
    description: str


def submit(request: NewReferral, now: datetime) -> tuple[str, Envelope]:
    """A new referral id and the event announcing it."""
    referral_id = uuid.uuid4().hex
    event = ReferralSubmitted(
        referral_id=referral_id,
        enterprise_name=request.enterprise_name,
        service_category=request.service_category,
        target_markets=list(dict.fromkeys(request.target_markets)),
        description=request.description,
        submitted_at=now,
    )
    return referral_id, Envelope.wrap(event, source=SOURCE, subject=referral_id)

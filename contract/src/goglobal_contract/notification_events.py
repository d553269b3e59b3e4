"""Events of the notifications service (topic `goglobal.notifications`, key = recipient id), and the
redelivery command intake sends it on behalf of operators and partners."""

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from goglobal_contract.event_base import TYPE_PREFIX, EventPayload

NOTIFICATION_PREFIX = TYPE_PREFIX + "notification."


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class RecipientType(StrEnum):
    PARTNER = "partner"
    ENTERPRISE = "enterprise"
    OPERATORS = "operators"


class Attempt(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    at: datetime
    status_code: int | None = None
    latency_ms: int = Field(ge=0)
    error: str | None = None


class NotificationCreated(EventPayload):
    """An inbox item for a recipient (every partner and enterprise notification gets one)."""

    event_type: ClassVar[str] = NOTIFICATION_PREFIX + "created.v1"

    notification_id: str
    recipient_type: RecipientType
    recipient_id: str
    referral_id: str | None = None
    kind: str = Field(description="the partner or lifecycle event type it tells about")
    title: str
    body: str
    created_at: datetime


class DeliveryOutcome(EventPayload):
    """Base of the two outcomes: everything a delivery list shows."""

    delivery_id: str
    channel: Channel
    recipient_type: RecipientType
    recipient_id: str
    event_id: str = Field(description="the id of the event delivered (the webhook-id)")
    delivered_type: str = Field(description="the type of the event delivered")
    referral_id: str | None = None
    target: str = Field(description="webhook URL or e-mail address")
    attempts: list[Attempt] = Field(max_length=20)
    at: datetime


class NotificationDelivered(DeliveryOutcome):
    event_type: ClassVar[str] = NOTIFICATION_PREFIX + "delivered.v1"


class NotificationFailed(DeliveryOutcome):
    """An attempt failed; `final` when no retry is left (schedule exhausted, a 4xx, or the endpoint disabled)."""

    event_type: ClassVar[str] = NOTIFICATION_PREFIX + "failed.v1"

    final: bool
    next_attempt_at: datetime | None = None


class EndpointDisabled(EventPayload):
    event_type: ClassVar[str] = NOTIFICATION_PREFIX + "endpoint_disabled.v1"

    partner_id: str
    url: str
    reason: str
    disabled_at: datetime


class RedeliveryRequested(EventPayload):
    """Intake asks notifications to deliver again: given deliveries, or every failed one since a time."""

    event_type: ClassVar[str] = NOTIFICATION_PREFIX + "redelivery_requested.v1"

    request_id: str
    delivery_ids: list[str] = Field(default_factory=list, max_length=1000)
    partner_id: str | None = None
    failed_since: datetime | None = None
    requested_by: str
    requested_at: datetime


NOTIFICATION_PAYLOADS: tuple[type[EventPayload], ...] = (
    NotificationCreated, NotificationDelivered, NotificationFailed, EndpointDisabled, RedeliveryRequested,
)  # fmt: skip

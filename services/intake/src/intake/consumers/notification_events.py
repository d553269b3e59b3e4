"""Intake follows the notifications service to show inboxes, delivery logs and disabled endpoints."""

from goglobal_contract.envelope import Envelope
from goglobal_contract.notification_events import (
    EndpointDisabled,
    NotificationCreated,
    NotificationDelivered,
    NotificationFailed,
)
from goglobal_shared.router import EventRouter
from intake.adapters.notification_views import NotificationViews


def router(views: NotificationViews) -> EventRouter:
    """Inbox items are inserted under their notification id, and a delivery's state only moves to more attempts:
    a repeat of either is a no-op with no processed log."""

    async def created(event: NotificationCreated, envelope: Envelope) -> None:
        await views.created(event)

    async def delivered(event: NotificationDelivered, envelope: Envelope) -> None:
        await views.delivered(event)

    async def failed(event: NotificationFailed, envelope: Envelope) -> None:
        await views.failed(event)

    async def disabled(event: EndpointDisabled, envelope: Envelope) -> None:
        await views.endpoint_disabled(event)

    routes = EventRouter()
    routes.on(NotificationCreated, created, self_deduplicating=True)
    routes.on(NotificationDelivered, delivered, self_deduplicating=True)
    routes.on(NotificationFailed, failed, self_deduplicating=True)
    routes.on(EndpointDisabled, disabled)
    return routes

"""Intake follows the notifications service to show inboxes, delivery logs and disabled endpoints."""

from goglobal_shared.consumer import Handler
from goglobal_shared.envelope import Envelope
from goglobal_shared.notification_events import (
    EndpointDisabled,
    NotificationCreated,
    NotificationDelivered,
    NotificationFailed,
)
from intake.adapters.notification_views import NotificationViews

# Inbox items are inserted under their notification id, and a delivery's state only moves to more attempts: a
# repeat is a no-op with no log.
SELF_DEDUPLICATING = frozenset(t.event_type for t in (NotificationCreated, NotificationDelivered, NotificationFailed))


def handlers(views: NotificationViews) -> dict[str, Handler]:
    async def created(envelope: Envelope) -> None:
        assert isinstance(envelope.data, NotificationCreated)
        await views.created(envelope.data)

    async def outcome(envelope: Envelope) -> None:
        assert isinstance(envelope.data, NotificationDelivered | NotificationFailed)
        await views.outcome(envelope.data)

    async def disabled(envelope: Envelope) -> None:
        assert isinstance(envelope.data, EndpointDisabled)
        await views.endpoint_disabled(envelope.data)

    return {
        NotificationCreated.event_type: created,
        NotificationDelivered.event_type: outcome,
        NotificationFailed.event_type: outcome,
        EndpointDisabled.event_type: disabled,
    }

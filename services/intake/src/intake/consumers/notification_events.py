"""Intake follows the notifications service to show inboxes, delivery logs and disabled endpoints."""

from dataclasses import dataclass, field

from goglobal_contract.envelope import Envelope
from goglobal_contract.notification_events import (
    EndpointDisabled,
    NotificationCreated,
    NotificationDelivered,
    NotificationFailed,
)
from goglobal_shared.mongo import Document
from goglobal_shared.router import EventRouter, PayloadDispatch
from intake.adapters import notification_views
from intake.adapters.notification_views import NotificationViews


@dataclass
class Projections:
    """What a poll's notification events change: inbox items to add, delivery states to keep."""

    inbox: list[NotificationCreated] = field(default_factory=list)
    deliveries: list[Document] = field(default_factory=list)

    async def write(self, views: NotificationViews) -> None:
        await views.add_to_inbox(self.inbox)
        await views.keep_latest(self.deliveries)


COLLECT: PayloadDispatch[Projections, None] = PayloadDispatch()
COLLECT.on(NotificationCreated, lambda event, into: into.inbox.append(event))
COLLECT.on(NotificationDelivered, lambda event, into: into.deliveries.append(notification_views.delivered(event)))
COLLECT.on(NotificationFailed, lambda event, into: into.deliveries.append(notification_views.failed(event)))


def router(views: NotificationViews) -> EventRouter:
    """Inbox items are inserted under their notification id, and a delivery's state only moves to more attempts:
    a repeat of either is a no-op with no processed log."""

    async def project(event: NotificationCreated | NotificationDelivered | NotificationFailed, _: Envelope) -> None:
        changes = Projections()
        COLLECT(event, changes)
        await changes.write(views)

    async def disabled(event: EndpointDisabled, envelope: Envelope) -> None:
        await views.endpoint_disabled(event)

    routes = EventRouter()
    routes.on([NotificationCreated, NotificationDelivered, NotificationFailed], project, self_deduplicating=True)
    routes.on(EndpointDisabled, disabled)
    return routes


@dataclass(frozen=True)
class ProjectionBatch:
    """A poll's inbox items in one insert and its delivery states in one bulk write (the batch form of `router`:
    the same writes, fewer round trips)."""

    views: NotificationViews
    types: frozenset[str] = COLLECT.types

    async def __call__(self, envelopes: list[Envelope]) -> list[Exception | None]:
        changes = Projections()
        for envelope in envelopes:
            COLLECT(envelope.data, changes)
        await changes.write(self.views)
        return [None] * len(envelopes)

"""Wires the notifications service's real adapters. Called from the app lifespan, never at import time."""

from dataclasses import dataclass
from datetime import UTC, datetime

from goglobal_shared.consumer import EventConsumer, ProcessedEvents
from goglobal_shared.envelope import Envelope
from goglobal_shared.events import ReferralOffered
from goglobal_shared.runtime import ServiceRuntime, connect
from notifications.adapters.notification_repository import NotificationRepository
from notifications.consumers.referral_offered import on_offered
from notifications.settings import NotificationsSettings


@dataclass
class Notifications:
    runtime: ServiceRuntime
    notifications: NotificationRepository

    async def stop(self) -> None:
        await self.runtime.stop()


async def bootstrap(settings: NotificationsSettings) -> Notifications:
    conn = await connect(settings, [settings.referrals_topic])
    db = conn.mongo[settings.database]
    notifications = NotificationRepository(db["notifications"])
    await notifications.ensure_indexes()

    async def offered(envelope: Envelope) -> None:
        await on_offered(envelope, notifications, datetime.now(UTC))

    handlers = {ReferralOffered.event_type: offered}
    events = EventConsumer(conn.consumer, conn.producer, handlers, ProcessedEvents(db["processed_events"]))
    runtime = ServiceRuntime(settings, conn, events, relay=None)
    runtime.start()
    return Notifications(runtime, notifications)

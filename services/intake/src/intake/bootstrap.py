"""Wires intake's real adapters. Called from the app lifespan, never at import time."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from goglobal_shared.consumer import EventConsumer, ProcessedEvents
from goglobal_shared.envelope import Envelope
from goglobal_shared.kafka import publish
from goglobal_shared.outbox import OutboxRelay
from goglobal_shared.runtime import ServiceRuntime, connect
from intake.adapters.referral_repository import ReferralRepository
from intake.consumers.referral_events import handlers
from intake.settings import IntakeSettings


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Intake:
    runtime: ServiceRuntime
    referrals: ReferralRepository
    relay: OutboxRelay
    clock: Callable[[], datetime] = utcnow

    async def stop(self) -> None:
        await self.runtime.stop()


async def bootstrap(settings: IntakeSettings) -> Intake:
    topic = settings.referrals_topic
    conn = await connect(settings, [topic])
    db = conn.mongo[settings.database]
    referrals = ReferralRepository(db["referrals"])
    await referrals.ensure_indexes()

    async def publish_referral_event(envelope: Envelope) -> None:
        await publish(conn.producer, topic, envelope)

    relay = OutboxRelay(db["referrals"], publish_referral_event)
    processed = ProcessedEvents(db["processed_events"])
    events = EventConsumer(conn.consumer, conn.producer, handlers(referrals, utcnow), processed)
    runtime = ServiceRuntime(settings, conn, events, relay)
    runtime.start()
    return Intake(runtime, referrals, relay)

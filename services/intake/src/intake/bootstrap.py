"""Wires intake's real adapters. Called from the app lifespan, never at import time."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from goglobal_shared.consumer import EventConsumer, ProcessedEvents
from goglobal_shared.envelope import Envelope
from goglobal_shared.kafka import publish
from goglobal_shared.locks import DocumentLocks
from goglobal_shared.outbox import OutboxRelay, Publish
from goglobal_shared.runtime import ServiceRuntime, connect
from intake.adapters.api_key_repository import ApiKeyRepository
from intake.adapters.enterprise_repository import EnterpriseRepository
from intake.adapters.idempotency_repository import IdempotencyRepository
from intake.adapters.partner_repository import PartnerRepository
from intake.adapters.service_request_repository import ServiceRequestRepository
from intake.consumers.matching_events import handlers
from intake.settings import IntakeSettings


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Intake:
    settings: IntakeSettings
    runtime: ServiceRuntime
    requests: ServiceRequestRepository
    enterprises: EnterpriseRepository
    partners: PartnerRepository
    api_keys: ApiKeyRepository
    idempotency: IdempotencyRepository
    relays: list[OutboxRelay]
    clock: Callable[[], datetime] = utcnow

    def wake_relays(self) -> None:
        for relay in self.relays:
            relay.wake()

    async def stop(self) -> None:
        await self.runtime.stop()


def _publisher(producer: AIOKafkaProducer, topic: str) -> Publish:
    async def send(envelope: Envelope) -> None:
        await publish(producer, topic, envelope)

    return send


async def bootstrap(settings: IntakeSettings) -> Intake:
    conn = await connect(settings, [settings.referrals_topic], produces=[settings.partners_topic])
    db = conn.mongo[settings.database]
    locks = DocumentLocks(db["locks"])
    requests = ServiceRequestRepository(db["service_requests"], locks)
    enterprises = EnterpriseRepository(db["enterprises"], locks)
    partners = PartnerRepository(db["partners"], locks)
    api_keys = ApiKeyRepository(db["api_keys"])
    for repo in (requests, enterprises, partners, api_keys):
        await repo.ensure_indexes()
    relays = [
        OutboxRelay(requests.collection, _publisher(conn.producer, settings.referrals_topic), locks),
        OutboxRelay(partners.collection, _publisher(conn.producer, settings.partners_topic), locks),
    ]
    processed = ProcessedEvents(db["processed_events"])
    events = EventConsumer(conn.consumer, conn.producer, handlers(requests, utcnow), processed)
    runtime = ServiceRuntime(settings, conn, events, relays[0])
    runtime.start()
    runtime.loops.start(relays[1], relays[1].run(), "partner-outbox-relay")
    return Intake(
        settings,
        runtime,
        requests,
        enterprises,
        partners,
        api_keys,
        IdempotencyRepository(db["idempotency_keys"]),
        relays,
    )

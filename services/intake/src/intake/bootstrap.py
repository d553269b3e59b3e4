"""Wires intake's real adapters. Called from the app lifespan, never at import time."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo.asynchronous.collection import AsyncCollection

from goglobal_shared.consumer import EventConsumer, ProcessedEvents, make_consumer
from goglobal_shared.enums import ReferralStatus
from goglobal_shared.envelope import Envelope
from goglobal_shared.kafka import enqueue
from goglobal_shared.locks import DocumentLocks
from goglobal_shared.metrics import REFERRALS
from goglobal_shared.mongo import Document
from goglobal_shared.outbox import OutboxRelay, Publish
from goglobal_shared.runtime import ServiceRuntime, connect
from goglobal_shared.sampler import MetricsSampler, Sample, outbox
from goglobal_shared.settings import dead_letter_topic
from intake.adapters.api_key_repository import ApiKeyRepository
from intake.adapters.dead_letters import DeadLetterRepository
from intake.adapters.enterprise_repository import EnterpriseRepository
from intake.adapters.idempotency_repository import IdempotencyRepository
from intake.adapters.notification_views import NotificationViews
from intake.adapters.partner_repository import PartnerRepository
from intake.adapters.service_request_repository import ServiceRequestRepository
from intake.consumers.dead_letters import DeadLetterCollector
from intake.consumers.matching_events import handlers as matching_handlers
from intake.consumers.notification_events import handlers as notification_handlers
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
    notifications: NotificationViews
    dead_letters: DeadLetterRepository
    relays: list[OutboxRelay]
    clock: Callable[[], datetime] = utcnow

    def wake_relay(self, collection: AsyncCollection[Document]) -> None:
        """Publish `collection`'s new events now rather than at the next poll. Only its relay: waking them all
        would cost every request a query per idle outbox."""
        for relay in self.relays:
            if relay.collection.name == collection.name:
                relay.wake()

    async def stop(self) -> None:
        await self.runtime.stop()


def _publisher(producer: AIOKafkaProducer, topic: str) -> Publish:
    async def send(envelope: Envelope) -> Awaitable[None]:
        return await enqueue(producer, topic, envelope)

    return send


async def bootstrap(settings: IntakeSettings) -> Intake:
    notifications_topic = settings.topic("goglobal.notifications")
    conn = await connect(
        settings,
        [settings.referrals_topic, notifications_topic],
        produces=[settings.partners_topic, settings.enterprises_topic],
    )
    db = conn.mongo[settings.database]
    locks = DocumentLocks(db["locks"])
    requests = ServiceRequestRepository(db["service_requests"], locks)
    enterprises = EnterpriseRepository(db["enterprises"], locks)
    partners = PartnerRepository(db["partners"], locks)
    api_keys = ApiKeyRepository(db["api_keys"])
    views = NotificationViews(db["inbox"], db["deliveries"], db["endpoints"], db["commands"])
    for repo in (requests, enterprises, partners, api_keys, views):
        await repo.ensure_indexes()
    relays = [
        OutboxRelay(requests.collection, _publisher(conn.producer, settings.referrals_topic), locks),
        OutboxRelay(partners.collection, _publisher(conn.producer, settings.partners_topic), locks),
        OutboxRelay(enterprises.collection, _publisher(conn.producer, settings.enterprises_topic), locks),
        OutboxRelay(views.commands, _publisher(conn.producer, notifications_topic), locks),
    ]
    routes = {**matching_handlers(requests, utcnow), **notification_handlers(views)}
    events = EventConsumer(conn.consumer, conn.producer, routes, ProcessedEvents(db["processed_events"]))
    runtime = ServiceRuntime(settings, conn, events, relays[0])
    runtime.start(samples=[outbox(relay.collection) for relay in relays[1:]])
    # Counting referrals by status reads every request: on its own, slower clock, not with the cheap gauges.
    funnel = MetricsSampler([referral_counts(requests.collection)], settings.funnel_sample_interval_s)
    runtime.loops.start(funnel, funnel.run(), "funnel-sampler")
    for number, relay in enumerate(relays[1:], start=2):
        runtime.loops.start(relay, relay.run(), f"outbox-relay-{number}")
    dead_letters = DeadLetterRepository(db["dead_letters"])
    await dead_letters.ensure_indexes()
    collector = DeadLetterCollector(_dead_letter_consumer(settings, notifications_topic), dead_letters)
    await collector.consumer.start()
    runtime.loops.start(collector, collector.run(), "dead-letter-collector")
    runtime.on_stop(collector.consumer.stop)
    idempotency = IdempotencyRepository(db["idempotency_keys"])
    return Intake(
        settings, runtime, requests, enterprises, partners, api_keys, idempotency, views, dead_letters, relays
    )


def referral_counts(collection: AsyncCollection[Document]) -> Sample:
    """Referrals by status, for the funnel dashboards (a scan of statuses only)."""

    async def sample() -> None:
        counts = dict.fromkeys((s.value for s in ReferralStatus), 0)
        async for doc in collection.find({}, projection={"referrals.status": 1}):
            for referral in doc.get("referrals", []):
                counts[referral["status"]] = counts.get(referral["status"], 0) + 1
        for status, count in counts.items():
            REFERRALS.labels(status).set(count)

    return sample


def _dead_letter_consumer(settings: IntakeSettings, notifications_topic: str) -> AIOKafkaConsumer:
    topics = [settings.referrals_topic, settings.partners_topic, settings.enterprises_topic, notifications_topic]
    return make_consumer(
        settings.kafka_bootstrap_servers,
        f"{settings.consumer_group}-dead-letters",
        [dead_letter_topic(t) for t in topics],
        client_id="intake-dead-letters",
        security=settings.kafka_security,
    )

"""Wires intake's real adapters. Called from the app lifespan, never at import time."""

from collections.abc import Awaitable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from goglobal_contract.envelope import Envelope
from goglobal_shared.consumer import Batches, EventConsumer, make_consumer
from goglobal_shared.kafka import enqueue
from goglobal_shared.metrics import REFERRALS
from goglobal_shared.mongo import Document
from goglobal_shared.runtime import ServiceRuntime, connect
from goglobal_shared.sampler import MetricsSampler, Sample, outbox
from goglobal_shared.settings import dead_letter_topic
from goglobal_shared.store import ProcessedEvents
from goglobal_shared.store.outbox import OutboxRelay, Publish
from intake.adapters.api_key_repository import ApiKeyRepository
from intake.adapters.dead_letters import DeadLetterRepository
from intake.adapters.enterprise_repository import EnterpriseRepository
from intake.adapters.idempotency_repository import IdempotencyRepository
from intake.adapters.notification_views import NotificationViews
from intake.adapters.partner_repository import PartnerRepository
from intake.adapters.service_request_repository import ServiceRequestRepository
from intake.auth.cache import VerifiedKeyCache
from intake.auth.revocations import follow_revocations
from intake.components import Intake, utcnow
from intake.console.session import COLLECTION as SESSIONS
from intake.console.session import SessionStore
from intake.consumers.dead_letters import DeadLetterCollector
from intake.consumers.matching_events import DecisionBatch
from intake.consumers.matching_events import router as decisions_router
from intake.consumers.notification_events import ProjectionBatch
from intake.consumers.notification_events import router as notifications_router
from intake.recent_reads import RecentReads
from intake.settings import IntakeSettings


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
    # One relay per collection that holds events, publishing to that collection's topic; each repository hands
    # its relay the events it wrote.
    relays = [
        OutboxRelay(db[name], _publisher(conn.producer, topic))
        for name, topic in (
            ("service_requests", settings.referrals_topic),
            ("partners", settings.partners_topic),
            ("enterprises", settings.enterprises_topic),
            ("commands", notifications_topic),
            ("api_keys", settings.api_keys_topic),
        )
    ]
    requests_relay, partners_relay, enterprises_relay, commands_relay, api_keys_relay = relays
    requests = ServiceRequestRepository(requests_relay.collection, requests_relay.written)
    recent_enterprises: RecentReads[Document] = RecentReads(settings.enterprise_cache_ttl_s)
    enterprises = EnterpriseRepository(enterprises_relay.collection, enterprises_relay.written, recent_enterprises)
    partners = PartnerRepository(partners_relay.collection, partners_relay.written)
    key_cache = VerifiedKeyCache(settings.api_key_cache_ttl_s, settings.api_key_cache_max_entries)
    api_keys = ApiKeyRepository(api_keys_relay.collection, api_keys_relay.written, key_cache)
    views = NotificationViews(
        db["inbox"], db["deliveries"], db["endpoints"], commands_relay.collection, commands_relay.written
    )
    for repo in (requests, enterprises, partners, api_keys, views):
        await repo.ensure_indexes()
    routes = decisions_router(requests, enterprises, utcnow)
    routes.include(notifications_router(views))
    batches = Batches((DecisionBatch(requests, enterprises, utcnow), ProjectionBatch(views)))
    events = EventConsumer(
        conn.consumer,
        conn.producer,
        routes.handlers,
        ProcessedEvents(db["processed_events"]),
        batch=batches,
        self_deduplicating=routes.self_deduplicating,
    )
    runtime = ServiceRuntime(settings, conn, events, relays[0])
    await follow_revocations(settings, runtime, key_cache)
    runtime.start(samples=[outbox(relay) for relay in relays[1:]])
    # Counting referrals by status reads every request: on its own, slower clock, not with the cheap gauges.
    funnel = MetricsSampler([referral_counts(requests)], settings.funnel_sample_interval_s)
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
    sessions = SessionStore(db[SESSIONS])
    return Intake(
        settings, runtime, requests, enterprises, partners, api_keys, idempotency, views, dead_letters, sessions
    )


def referral_counts(requests: ServiceRequestRepository) -> Sample:
    """Referrals by status, for the funnel dashboards (a scan of each request's status summary)."""

    async def sample() -> None:
        for status, count in (await requests.referral_counts()).items():
            REFERRALS.labels(status).set(count)

    return sample


def _dead_letter_consumer(settings: IntakeSettings, notifications_topic: str) -> AIOKafkaConsumer:
    topics = [
        settings.referrals_topic,
        settings.partners_topic,
        settings.enterprises_topic,
        notifications_topic,
        settings.api_keys_topic,
    ]
    return make_consumer(
        settings.kafka_bootstrap_servers,
        f"{settings.consumer_group}-dead-letters",
        [dead_letter_topic(t) for t in topics],
        client_id="intake-dead-letters",
        security=settings.kafka_security,
    )

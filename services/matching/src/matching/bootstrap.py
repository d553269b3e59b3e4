"""Wires matching's real adapters. Called from the app lifespan, never at import time."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import TypeAdapter

from goglobal_contract.envelope import Envelope
from goglobal_shared.consumer import EventConsumer
from goglobal_shared.health import Check
from goglobal_shared.kafka import enqueue
from goglobal_shared.metrics import OFFERS_PAST_DEADLINE, OPEN_OFFERS
from goglobal_shared.runtime import STALE_POLL_S, ServiceRuntime, connect
from goglobal_shared.sampler import Sample
from goglobal_shared.store import ProcessedEvents
from goglobal_shared.store.outbox import OutboxRelay
from matching.adapters.directory_follower import DirectoryFollower, make_follower_consumer
from matching.adapters.partner_stats import PartnerStatsRepository
from matching.adapters.plan_repository import PlanRepository
from matching.consumers.referral_events import SubmissionBatch, router
from matching.engine import DirectoryIndex, Partner
from matching.scheduler import ExpiryScheduler
from matching.service import MatchingService
from matching.settings import MatchingSettings


@dataclass
class Matching:
    runtime: ServiceRuntime
    service: MatchingService
    follower: DirectoryFollower
    scheduler: ExpiryScheduler

    async def stop(self) -> None:
        await self.runtime.stop()


def utcnow() -> datetime:
    return datetime.now(UTC)


def _seed(index: DirectoryIndex, settings: MatchingSettings) -> None:
    if settings.seed_partners_file is not None:
        for partner in TypeAdapter(list[Partner]).validate_json(settings.seed_partners_file.read_bytes()):
            index.upsert(partner, 0)  # any directory event (version >= 1) replaces it


async def bootstrap(settings: MatchingSettings) -> Matching:
    referrals_topic = settings.referrals_topic
    conn = await connect(settings, [referrals_topic], produces=[settings.partners_topic])
    db = conn.mongo[settings.database]

    async def publish_decision(envelope: Envelope) -> Awaitable[None]:
        return await enqueue(conn.producer, referrals_topic, envelope)

    relay = OutboxRelay(db["plans"], publish_decision)
    plans = PlanRepository(relay.collection, relay.written)
    await plans.ensure_indexes()
    index = DirectoryIndex()
    _seed(index, settings)
    follower = DirectoryFollower(
        make_follower_consumer(
            settings.kafka_bootstrap_servers, settings.partners_topic, settings.service_name, settings.kafka_security
        ),
        conn.producer,
        index,
    )
    await follower.consumer.start()
    await follower.catch_up()
    history = PartnerStatsRepository(db["partner_stats"])
    service = MatchingService(plans, history, index, settings.offer_policy, utcnow)
    scheduler = ExpiryScheduler(service, settings.scheduler_interval_s)
    routes = router(service)
    events = EventConsumer(
        conn.consumer,
        conn.producer,
        routes.handlers,
        ProcessedEvents(db["processed_events"]),
        batch=SubmissionBatch(service),
        self_deduplicating=routes.self_deduplicating,
    )
    runtime = ServiceRuntime(settings, conn, events, relay, extra_checks=_checks(follower, scheduler))
    runtime.start(samples=[offer_counts(plans, utcnow)])
    runtime.loops.start(follower, follower.run(), "directory-follower")
    runtime.on_stop(follower.consumer.stop)
    runtime.loops.start(scheduler, scheduler.run(), "expiry-scheduler")
    return Matching(runtime, service, follower, scheduler)


def offer_counts(plans: PlanRepository, clock: Callable[[], datetime]) -> Sample:
    async def sample() -> None:
        open_count, past = await plans.open_offers(clock())
        OPEN_OFFERS.set(open_count)
        OFFERS_PAST_DEADLINE.set(past)

    return sample


def _checks(follower: DirectoryFollower, scheduler: ExpiryScheduler) -> dict[str, Check]:
    # The follower runs only once it has caught up (bootstrap awaits `catch_up` first): running means loaded.
    return {"directory": follower.loop.readiness(STALE_POLL_S), "expiry_scheduler": scheduler.loop.readiness()}

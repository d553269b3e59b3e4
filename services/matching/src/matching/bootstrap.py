"""Wires matching's real adapters. Called from the app lifespan, never at import time."""

from dataclasses import dataclass
from datetime import UTC, datetime

from goglobal_shared.consumer import EventConsumer, ProcessedEvents
from goglobal_shared.envelope import Envelope
from goglobal_shared.events import ReferralSubmitted
from goglobal_shared.kafka import publish
from goglobal_shared.outbox import OutboxRelay
from goglobal_shared.runtime import ServiceRuntime, connect
from matching.adapters.match_repository import MatchRepository
from matching.adapters.partner_directory import PartnerDirectory, load_partner_file
from matching.consumers.referral_submitted import on_submitted
from matching.settings import MatchingSettings


@dataclass
class Matching:
    runtime: ServiceRuntime

    async def stop(self) -> None:
        await self.runtime.stop()


async def bootstrap(settings: MatchingSettings) -> Matching:
    topic = settings.referrals_topic
    conn = await connect(settings, [topic])
    db = conn.mongo[settings.database]
    directory = PartnerDirectory(db["partners"])
    matches = MatchRepository(db["matches"])
    await directory.ensure_indexes()
    await matches.ensure_indexes()
    if settings.seed_partners_file is not None:
        await directory.upsert(load_partner_file(settings.seed_partners_file))

    async def submitted(envelope: Envelope) -> None:
        await on_submitted(envelope, directory, matches, datetime.now(UTC))

    async def publish_outcome(envelope: Envelope) -> None:
        await publish(conn.producer, topic, envelope)

    relay = OutboxRelay(matches.collection, publish_outcome)
    handlers = {ReferralSubmitted.event_type: submitted}
    events = EventConsumer(conn.consumer, conn.producer, handlers, ProcessedEvents(db["processed_events"]))
    runtime = ServiceRuntime(settings, conn, events, relay)
    runtime.start()
    return Matching(runtime)

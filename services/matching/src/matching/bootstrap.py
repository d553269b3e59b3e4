"""Wires matching's real adapters. Called from the app lifespan, never at import time."""

from dataclasses import dataclass
from datetime import UTC, datetime

from goglobal_shared.consumer import EventConsumer, Handler, ProcessedEvents
from goglobal_shared.envelope import Envelope
from goglobal_shared.events import (
    PartnerUpserted,
    ReferralAssigned,
    ReferralClosed,
    ReferralDeclined,
    ReferralSubmitted,
    ReferralWithdrawn,
)
from goglobal_shared.kafka import publish
from goglobal_shared.locks import DocumentLocks
from goglobal_shared.outbox import OutboxRelay
from goglobal_shared.runtime import ServiceRuntime, connect
from matching.adapters.match_repository import MatchRepository
from matching.adapters.partner_directory import PartnerDirectory, load_partner_file
from matching.consumers.partner_events import on_partner_upserted
from matching.consumers.referral_events import on_assigned, on_declined, on_ended, on_submitted
from matching.settings import MatchingSettings


@dataclass
class Matching:
    runtime: ServiceRuntime

    async def stop(self) -> None:
        await self.runtime.stop()


def utcnow() -> datetime:
    return datetime.now(UTC)


def handlers(directory: PartnerDirectory, plans: MatchRepository, relay: OutboxRelay) -> dict[str, Handler]:
    async def submitted(envelope: Envelope) -> None:
        await on_submitted(envelope, directory, plans, utcnow())
        relay.wake()

    async def declined(envelope: Envelope) -> None:
        await on_declined(envelope, plans, utcnow())
        relay.wake()

    async def assigned(envelope: Envelope) -> None:
        await on_assigned(envelope, directory, plans, utcnow())
        relay.wake()

    async def ended(envelope: Envelope) -> None:
        await on_ended(envelope, plans, utcnow())

    async def partner(envelope: Envelope) -> None:
        await on_partner_upserted(envelope, directory)

    return {
        ReferralSubmitted.event_type: submitted,
        ReferralDeclined.event_type: declined,
        ReferralAssigned.event_type: assigned,
        ReferralWithdrawn.event_type: ended,
        ReferralClosed.event_type: ended,
        PartnerUpserted.event_type: partner,
    }


async def bootstrap(settings: MatchingSettings) -> Matching:
    referrals_topic = settings.referrals_topic
    conn = await connect(settings, [referrals_topic, settings.partners_topic])
    db = conn.mongo[settings.database]
    locks = DocumentLocks(db["locks"])
    directory = PartnerDirectory(db["partners"])
    plans = MatchRepository(db["matches"], locks)
    await directory.ensure_indexes()
    await plans.ensure_indexes()
    if settings.seed_partners_file is not None:
        await directory.seed(load_partner_file(settings.seed_partners_file))

    async def publish_outcome(envelope: Envelope) -> None:
        await publish(conn.producer, referrals_topic, envelope)

    relay = OutboxRelay(plans.collection, publish_outcome, locks)
    processed = ProcessedEvents(db["processed_events"])
    events = EventConsumer(conn.consumer, conn.producer, handlers(directory, plans, relay), processed)
    runtime = ServiceRuntime(settings, conn, events, relay)
    runtime.start()
    return Matching(runtime)

"""Wires the notifications service's real adapters. Called from the app lifespan, never at import time."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from goglobal_contract.envelope import Envelope
from goglobal_contract.notification_events import (
    EndpointDisabled,
    NotificationDelivered,
    NotificationFailed,
    RecipientType,
)
from goglobal_contract.partner_events import partner_topic
from goglobal_shared.consumer import EventConsumer
from goglobal_shared.kafka import ensure_topics, publish
from goglobal_shared.runtime import ServiceRuntime, connect
from goglobal_shared.store import ProcessedEvents
from notifications.adapters.deliveries import DeliveryRepository
from notifications.adapters.directory import Directory
from notifications.adapters.referrals import ReferralProjection
from notifications.consumers.lifecycle import Lifecycle, router
from notifications.dispatcher import Dispatcher
from notifications.email.smtp import SmtpConfig
from notifications.endpoints import EndpointHealth
from notifications.fanout import SOURCE
from notifications.handoff import Handoff
from notifications.notifier import Notifier
from notifications.settings import NotificationsSettings
from notifications.webhooks.policy import Schedule
from notifications.webhooks.sender import make_client

log = logging.getLogger(__name__)


@dataclass
class Notifications:
    runtime: ServiceRuntime
    dispatcher: Dispatcher
    lifecycle: Lifecycle

    async def stop(self) -> None:
        await self.runtime.stop()


def utcnow() -> datetime:
    return datetime.now(UTC)


class PartnerTopics:
    """Creates each partner's topic on first use (partners are added while the system runs)."""

    def __init__(self, producer: AIOKafkaProducer, settings: NotificationsSettings) -> None:
        self.producer = producer
        self.settings = settings
        self.known: set[str] = set()

    async def publish(self, partner_id: str, envelope: Envelope) -> None:
        topic = partner_topic(self.settings.topic_prefix, partner_id)
        if topic not in self.known:
            await ensure_topics(self.settings.kafka_bootstrap_servers, [topic], security=self.settings.kafka_security)
            self.known.add(topic)
        await publish(self.producer, topic, envelope)


def smtp_config(settings: NotificationsSettings) -> SmtpConfig | None:
    if settings.smtp_host is None:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_sender,
        username=settings.smtp_username,
        password=password,
        start_tls=settings.smtp_start_tls,
    )


async def bootstrap(settings: NotificationsSettings) -> Notifications:
    notifications_topic = settings.topic("goglobal.notifications")
    consumed = [settings.referrals_topic, settings.partners_topic, settings.enterprises_topic, notifications_topic]
    conn = await connect(settings, consumed)
    db = conn.mongo[settings.database]
    directory = Directory(db["partners"], db["enterprises"], db["endpoints"])
    deliveries = DeliveryRepository(db["deliveries"])
    await deliveries.ensure_indexes()
    topics = PartnerTopics(conn.producer, settings)

    async def to_notifications(envelope: Envelope) -> None:
        await publish(conn.producer, notifications_topic, envelope)

    async def emit(payload: NotificationDelivered | NotificationFailed | EndpointDisabled) -> None:
        subject = payload.partner_id if isinstance(payload, EndpointDisabled) else payload.recipient_id
        await to_notifications(Envelope.wrap(payload, source=SOURCE, subject=subject))

    handoff = Handoff()
    notifier = Notifier(
        directory,
        deliveries,
        topics.publish,
        to_notifications,
        settings.portal_url,
        utcnow,
        handoff,
        email_enabled=settings.smtp_host is not None,
    )
    if settings.smtp_host is None:
        log.warning("e-mail is off: GOGLOBAL_SMTP_HOST is not set, so partners and enterprises get no e-mail")

    async def on_disabled(partner_id: str, url: str, reason: str, when: datetime) -> None:
        disabled = EndpointDisabled(partner_id=partner_id, url=url, reason=reason, disabled_at=when)
        await emit(disabled)
        cause_event = Envelope.wrap(disabled, source=SOURCE, subject=partner_id)
        await notifier.email_partner(partner_id, "endpoint_disabled", disabled.model_dump(mode="json"), cause_event)
        body = f"Webhook deliveries to {url} are paused: {reason}. Fix the endpoint, then ask for a redelivery."
        cause = f"endpoint-disabled:{partner_id}:{when.isoformat()}"
        await notifier.notice(
            RecipientType.PARTNER, partner_id, "endpoint_disabled", "Webhook endpoint disabled", body, cause
        )
        await notifier.notice(
            RecipientType.OPERATORS,
            "operators",
            "endpoint_disabled_operators",
            f"Webhook endpoint of {partner_id} disabled",
            body,
            cause,
        )

    endpoints = EndpointHealth(
        db["endpoints"], deliveries, timedelta(seconds=settings.endpoint_disable_after_s), on_disabled
    )
    schedule = Schedule(settings.retry_schedule_s, settings.retry_time_scale, settings.retry_jitter)
    dispatcher = Dispatcher(
        deliveries,
        directory,
        endpoints,
        make_client(settings.webhook_timeout_s),
        schedule,
        settings.webhook_master_key.get_secret_value(),
        smtp_config(settings),
        emit,
        utcnow,
        handoff,
        settings.dispatcher_interval_s,
        settings.allow_private_webhook_targets,
    )
    lifecycle = Lifecycle(
        directory, ReferralProjection(db["referrals"]), deliveries, endpoints, notifier, utcnow, dispatcher.wake
    )
    routes = router(lifecycle, emails_enterprises=settings.smtp_host is not None)
    processed = ProcessedEvents(db["processed_events"])
    events = EventConsumer(
        conn.consumer, conn.producer, routes.handlers, processed, self_deduplicating=routes.self_deduplicating
    )
    runtime = ServiceRuntime(
        settings, conn, events, relay=None, extra_checks={"dispatcher": dispatcher.loop.readiness()}
    )
    runtime.start()
    runtime.loops.start(dispatcher, dispatcher.run(), "dispatcher")
    runtime.on_stop(dispatcher.http.aclose)
    return Notifications(runtime, dispatcher, lifecycle)

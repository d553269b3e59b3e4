"""Wires the notifications service's real adapters. Called from the app lifespan, never at import time."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from goglobal_shared.consumer import EventConsumer
from goglobal_shared.runtime import ServiceRuntime, connect
from goglobal_shared.store import ProcessedEvents
from notifications.adapters.deliveries import DeliveryRepository
from notifications.adapters.directory import Directory
from notifications.adapters.endpoints import EndpointRepository
from notifications.adapters.publisher import KafkaPublisher
from notifications.adapters.referrals import ReferralProjection
from notifications.consumers.lifecycle import ForwardBatch, router
from notifications.dispatcher import Dispatcher
from notifications.email.smtp import SmtpConfig, SmtpMailer
from notifications.handoff import Handoff
from notifications.service import DeliveryPolicy, NotificationService
from notifications.settings import NotificationsSettings
from notifications.webhooks.policy import Schedule
from notifications.webhooks.sender import HttpWebhooks, make_client

log = logging.getLogger(__name__)


@dataclass
class Notifications:
    runtime: ServiceRuntime
    dispatcher: Dispatcher
    service: NotificationService

    async def stop(self) -> None:
        await self.runtime.stop()


def utcnow() -> datetime:
    return datetime.now(UTC)


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


def delivery_policy(settings: NotificationsSettings) -> DeliveryPolicy:
    return DeliveryPolicy(
        schedule=Schedule(settings.retry_schedule_s, settings.retry_time_scale, settings.retry_jitter),
        master_key=settings.webhook_master_key.get_secret_value(),
        disable_after=timedelta(seconds=settings.endpoint_disable_after_s),
        portal_url=settings.portal_url,
    )


async def bootstrap(settings: NotificationsSettings) -> Notifications:
    notifications_topic = settings.topic("goglobal.notifications")
    consumed = [settings.referrals_topic, settings.partners_topic, settings.enterprises_topic, notifications_topic]
    conn = await connect(settings, consumed)
    db = conn.mongo[settings.database]
    deliveries = DeliveryRepository(db["deliveries"])
    await deliveries.ensure_indexes()
    publisher = KafkaPublisher(
        conn.producer,
        settings.kafka_bootstrap_servers,
        settings.kafka_security,
        settings.topic_prefix,
        notifications_topic,
    )
    smtp = smtp_config(settings)
    if smtp is None:
        log.warning("e-mail is off: GOGLOBAL_SMTP_HOST is not set, so partners and enterprises get no e-mail")
    webhooks = HttpWebhooks(make_client(settings.webhook_timeout_s), settings.allow_private_webhook_targets)
    handoff = Handoff()
    service = NotificationService(
        directory=Directory(db["partners"], db["enterprises"], db["endpoints"]),
        referrals=ReferralProjection(db["referrals"]),
        deliveries=deliveries,
        endpoints=EndpointRepository(db["endpoints"]),
        publisher=publisher,
        webhooks=webhooks,
        mailer=SmtpMailer(smtp) if smtp else None,
        dispatcher=handoff,
        policy=delivery_policy(settings),
        clock=utcnow,
    )
    dispatcher = Dispatcher(service, handoff, settings.dispatcher_interval_s)
    routes = router(service, emails_enterprises=smtp is not None)
    processed = ProcessedEvents(db["processed_events"])
    events = EventConsumer(
        conn.consumer,
        conn.producer,
        routes.handlers,
        processed,
        batch=ForwardBatch(service),
        self_deduplicating=routes.self_deduplicating,
    )
    runtime = ServiceRuntime(
        settings, conn, events, relay=None, extra_checks={"dispatcher": dispatcher.loop.readiness()}
    )
    runtime.start()
    runtime.loops.start(dispatcher, dispatcher.run(), "dispatcher")
    runtime.on_stop(webhooks.aclose)
    return Notifications(runtime, dispatcher, service)

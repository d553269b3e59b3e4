"""Notifications' use cases, each written once: fan out what happened (a partner event intake recorded goes out
on every channel the partner has; a lifecycle event e-mails its enterprise, with consent), keep the projections,
deliver a webhook or an e-mail (retried on the stored schedule), and disable an endpoint that keeps failing.

One event's path reads top to bottom here: `forward` publishes to the partner's topic and inbox, creates the
webhook delivery claimed and hands it to this process's dispatcher, whose loop calls `deliver`, which attempts
it and concludes (outcome event, retry, endpoint health, `disable_endpoint`). The edges (the consumer's router,
the dispatcher's loop) only decode and call; every dependency is a port (`notifications.ports`); what a port
refuses (`notifications.errors`) becomes an attempt's verdict in `_post_webhook` and `_send_email`.

At-least-once, and idempotent on the cause: deliveries, inbox items and e-mails have ids derived from it, so
handling a cause twice creates nothing twice, and the partner dedupes what it gets twice on the event's id."""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from goglobal_contract.envelope import Envelope, to_structured_json
from goglobal_contract.events import EnterpriseUpserted, PartnerUpserted, ReferralAccepted, ReferralSubmitted
from goglobal_contract.notification_events import (
    Attempt,
    EndpointDisabled,
    NotificationDelivered,
    NotificationFailed,
    RecipientType,
    RedeliveryRequested,
)
from goglobal_contract.partner_events import PartnerEvent
from goglobal_shared.metrics import DELIVERIES
from goglobal_shared.webhook_secrets import signing_secrets
from notifications import records
from notifications.email.render import choose_language, render
from notifications.errors import PartnerNotKnownYet, PermanentEmailError, TargetRefused, TransientEmailError
from notifications.fanout import SOURCE, derived_id, enterprise_messages
from notifications.ports import (
    Clock,
    Deliveries,
    Directory,
    DispatchQueue,
    Endpoints,
    Mailer,
    Publisher,
    Referrals,
    Webhooks,
)
from notifications.records import DELIVERED, DISABLED, FAILED, PENDING, Document
from notifications.webhooks.policy import AttemptResult, Schedule, Verdict, classify, disable_reason, retry_after
from notifications.webhooks.signing import webhook_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    schedule: Schedule
    master_key: str  # derives every partner's signing secret
    disable_after: timedelta  # an endpoint failing this long is disabled
    portal_url: str


@dataclass
class NotificationService:
    directory: Directory
    referrals: Referrals
    deliveries: Deliveries
    endpoints: Endpoints
    publisher: Publisher
    webhooks: Webhooks
    # None: no SMTP server, so nothing could be sent. No e-mail delivery is created then: each would only fail,
    # cost a database write and an outcome event, and crowd the delivery logs.
    mailer: Mailer | None
    dispatcher: DispatchQueue
    policy: DeliveryPolicy
    clock: Clock

    # -- fan out -----------------------------------------------------------------------------------

    async def forward(self, event: PartnerEvent, envelope: Envelope) -> None:
        """What intake recorded for a partner goes out, unchanged, on every channel the partner has."""
        if await self.forward_many([(event, envelope)]):
            raise PartnerNotKnownYet(event.partner_id)

    async def forward_many(self, told: list[tuple[PartnerEvent, Envelope]]) -> list[str]:
        """`forward` for a poll's partner events at once, with one directory read: the partners' topics and inboxes
        are published side by side (each partner's events in their order) and the webhook deliveries created in
        one write. Returns the ids of the events held back, all those of a partner the directory does not hold yet
        (to be tried again: nothing of them went out)."""
        partners = await self.directory.partners(sorted({event.partner_id for event, _ in told}))
        known = [(event, envelope) for event, envelope in told if event.partner_id in partners]
        await asyncio.gather(*(self._publish(group) for group in _by_partner(known).values()))
        webhooks = [
            (self._webhook_delivery(partners[event.partner_id], envelope), partners[event.partner_id])
            for event, envelope in known
            if partners[event.partner_id].get("webhook_url")
        ]
        await self._hand_over(webhooks)
        for event, envelope in known:
            kind = records.partner_kind(envelope)
            await self._email_partner(partners[event.partner_id], kind, event.model_dump(mode="json"), envelope)
        return [envelope.id for event, envelope in told if event.partner_id not in partners]

    async def _hand_over(self, webhooks: list[tuple[Document, Document]]) -> None:
        """Creates the webhook deliveries and hands them to this process's dispatcher. One that exists already and
        was never attempted (a forward that failed after writing it, and is run again) is handed over again rather
        than left to its lease: at worst the partner gets it twice, under the same webhook-id."""
        created = await self.deliveries.create_many([delivery for delivery, _ in webhooks])
        existing = [delivery["_id"] for delivery, _ in webhooks if delivery["_id"] not in created]
        unattempted = {
            d["_id"]: d
            for d in await self.deliveries.get_many(existing)
            if d["status"] == PENDING and not d["attempts"]
        }
        for delivery, partner in webhooks:
            if delivery["_id"] in created:
                self.dispatcher.put(delivery, partner)
            elif delivery["_id"] in unattempted:
                self.dispatcher.put(unattempted[delivery["_id"]], partner)

    async def _publish(self, told: list[tuple[PartnerEvent, Envelope]]) -> None:
        """One partner's events, in order: each on the partner's topic and as an inbox item, side by side."""
        for event, envelope in told:
            kind = records.partner_kind(envelope)
            item = records.inbox_item(
                RecipientType.PARTNER,
                event.partner_id,
                envelope.subject,
                envelope.id,
                kind,
                records.title(kind, envelope.subject),
                records.body(event),
                self.clock(),
            )
            await asyncio.gather(
                self.publisher.to_partner(event.partner_id, envelope), self.publisher.notification(item)
            )

    async def referral_submitted(self, event: ReferralSubmitted, envelope: Envelope) -> None:
        await self.referrals.submitted(event)
        await self.tell_enterprise(envelope)

    async def referral_accepted(self, event: ReferralAccepted, envelope: Envelope) -> None:
        await self.referrals.accepted(event.referral_id, event.partner_id)
        await self.tell_enterprise(envelope)

    async def tell_enterprise(self, envelope: Envelope) -> None:
        """The e-mails a lifecycle event sends its enterprise (`fanout.enterprise_messages` decides which)."""
        referral = await self.referrals.get(envelope.subject)
        enterprise = await self.directory.enterprise(referral.enterprise_id) if referral else None
        if enterprise is None:
            return
        accepted_by = await self.directory.partner(referral.accepted_by) if referral and referral.accepted_by else None
        partner_name = accepted_by["name"] if accepted_by else None
        language = choose_language(enterprise["preferred_languages"])
        for message in enterprise_messages(envelope, referral, enterprise, partner_name):
            await self._queue_email(
                derived_id(message.dedupe_key, message.enterprise_id, "email"),
                RecipientType.ENTERPRISE,
                message.enterprise_id,
                enterprise["contact"]["email"],
                message.kind,
                language,
                {**message.context, "portal_url": self.policy.portal_url},
                envelope,
            )

    async def partner_changed(self, event: PartnerUpserted) -> None:
        await self.directory.apply_partner(event)

    async def enterprise_changed(self, event: EnterpriseUpserted) -> None:
        await self.directory.apply_enterprise(event)

    async def redeliver(self, asked: RedeliveryRequested) -> None:
        """Operators or a partner asked to deliver again: a disabled endpoint gets a new chance, and the failed or
        held deliveries asked for go out now."""
        if asked.partner_id:
            await self.endpoints.enable(asked.partner_id)
        else:
            await self.endpoints.enable_all()
        await self.deliveries.reschedule(asked.delivery_ids, asked.partner_id, asked.failed_since, self.clock())
        self.dispatcher.wake()

    # -- deliver -----------------------------------------------------------------------------------

    async def due(self) -> list[Document]:
        return await self.deliveries.due(self.clock())

    async def claim_and_deliver(self, due: Document) -> bool:
        """False when another replica has it, or it changed since it was read due."""
        delivery = await self.deliveries.claim(due, self.clock())
        if delivery is None:
            return False
        await self.deliver(delivery)
        return True

    async def deliver(self, delivery: Document, partner: Document | None = None) -> None:
        """One attempt of a delivery this process holds (claimed), and what it leads to. `partner`: the directory
        entry the delivery was addressed from, if the caller holds it."""
        now = self.clock()
        if delivery["channel"] != "webhook":
            result, verdict = await self._send_email(delivery)
            await self._conclude(delivery, result, verdict, now)
            return
        endpoint = await self.endpoints.state(delivery["recipient_id"])
        if endpoint is not None and endpoint.get("disabled"):
            await self.deliveries.record(delivery, _note(now, "endpoint disabled"), DISABLED, None, now)
            return
        result, verdict = await self._post_webhook(delivery, now, partner)
        await self._conclude(delivery, result, verdict, now, failing=endpoint is not None)

    # -- endpoint health ---------------------------------------------------------------------------

    async def disable_endpoint(self, partner_id: str, url: str, reason: str, when: datetime) -> None:
        """Its pending webhooks wait (as `disabled`) for a redelivery; the partner and operators are told."""
        await self.deliveries.hold_webhooks(partner_id, when)
        disabled = EndpointDisabled(partner_id=partner_id, url=url, reason=reason, disabled_at=when)
        cause = Envelope.wrap(disabled, source=SOURCE, subject=partner_id)
        await self.publisher.notification(cause)
        partner = await self.directory.partner(partner_id)
        if partner is not None:
            await self._email_partner(partner, "endpoint_disabled", disabled.model_dump(mode="json"), cause)
        body = f"Webhook deliveries to {url} are paused: {reason}. Fix the endpoint, then ask for a redelivery."
        notice_id = f"endpoint-disabled:{partner_id}:{when.isoformat()}"
        for recipient_type, recipient_id, kind, title in (
            (RecipientType.PARTNER, partner_id, "endpoint_disabled", "Webhook endpoint disabled"),
            (
                RecipientType.OPERATORS,
                "operators",
                "endpoint_disabled_operators",
                f"Webhook endpoint of {partner_id} disabled",
            ),
        ):
            item_id = derived_id(notice_id, recipient_id, kind)
            await self.publisher.notification(
                records.inbox_item(recipient_type, recipient_id, None, item_id, kind, title, body, when)
            )

    async def _endpoint_failed(self, partner_id: str, url: str, verdict: Verdict, now: datetime) -> None:
        record = await self.endpoints.failing(partner_id, url, now)
        if record.get("disabled"):
            return
        reason = disable_reason(verdict, record["failing_since"], now, self.policy.disable_after)
        if reason and await self.endpoints.disable(record, reason, now):
            await self.disable_endpoint(partner_id, url, reason, now)

    # -- steps -------------------------------------------------------------------------------------

    def _webhook_delivery(self, partner: Document, envelope: Envelope) -> Document:
        """Always pending: `deliver` looks at the endpoint's health when it attempts (and holds the delivery as
        `disabled` if the endpoint is), so it is not read here as well. Created claimed, to be handed to this
        process's dispatcher and go out at once."""
        return records.claimed(
            records.new_delivery(
                f"{envelope.id}:webhook",
                "webhook",
                RecipientType.PARTNER,
                partner["_id"],
                partner["webhook_url"],
                envelope,
                self.clock(),
                body=to_structured_json(envelope).decode(),
            )
        )

    async def _email_partner(self, partner: Document, kind: str, context: dict[str, Any], cause: Envelope) -> None:
        address = partner.get("delivery_email") or partner.get("contact_email")
        if address:
            context = {**context, "partner_name": partner["name"], "portal_url": self.policy.portal_url}
            language = choose_language(partner.get("languages", []))
            partner_id = partner["_id"]
            await self._queue_email(
                f"{cause.id}:email", RecipientType.PARTNER, partner_id, address, kind, language, context, cause
            )

    async def _queue_email(
        self,
        delivery_id: str,
        recipient_type: RecipientType,
        recipient_id: str,
        address: str,
        kind: str,
        language: str,
        context: dict[str, Any],
        cause: Envelope,
    ) -> None:
        if self.mailer is None:
            return
        delivery = records.new_delivery(
            delivery_id,
            "email",
            recipient_type,
            recipient_id,
            address,
            cause,
            self.clock(),
            kind=kind,
            language=language,
            context=context,
        )
        if await self.deliveries.create(delivery):
            self.dispatcher.wake()  # the dispatcher's query for due deliveries finds it at once

    async def _post_webhook(
        self, delivery: Document, now: datetime, partner: Document | None
    ) -> tuple[AttemptResult, Verdict]:
        if partner is None:
            partner = await self.directory.partner(delivery["recipient_id"]) or {}
        secrets = signing_secrets(
            self.policy.master_key,
            delivery["recipient_id"],
            partner.get("webhook_secret_generation", 1),
            partner.get("previous_secret_valid_until"),
            now,
        )
        body = delivery["body"].encode()
        headers = webhook_headers(delivery["event_id"], secrets, now, body, delivery.get("traceparent"))
        try:
            result = await self.webhooks.post(delivery["target"], body, headers)
        except TargetRefused as exc:
            return AttemptResult(None, 0, str(exc)[:500]), Verdict.GIVE_UP
        return result, classify(result.status_code)

    async def _send_email(self, delivery: Document) -> tuple[AttemptResult, Verdict]:
        started = time.monotonic()
        if self.mailer is None:
            return AttemptResult(None, 0, "e-mail is not configured (GOGLOBAL_SMTP_HOST)"), Verdict.GIVE_UP
        try:
            rendered = render(delivery["kind"], delivery["language"], delivery["context"])
        except Exception as exc:  # a template problem: retrying would fail the same way
            log.exception("e-mail %s cannot be built", delivery["_id"])
            return AttemptResult(None, _ms(started), f"cannot build the e-mail: {exc}"[:500]), Verdict.GIVE_UP
        try:
            message_id = delivery["_id"].replace(":", ".")  # the same on every retry: receivers spot repeats
            await self.mailer.send(delivery["target"], rendered, message_id, delivery["language"])
        except TransientEmailError as exc:
            return AttemptResult(None, _ms(started), str(exc)[:500]), Verdict.RETRY
        except PermanentEmailError as exc:
            return AttemptResult(None, _ms(started), str(exc)[:500]), Verdict.GIVE_UP
        return AttemptResult(250, _ms(started), None), Verdict.DELIVERED

    async def _conclude(
        self, delivery: Document, result: AttemptResult, verdict: Verdict, now: datetime, failing: bool = False
    ) -> None:
        """Records the attempt, publishes its outcome, and keeps the endpoint's health. `failing`: the endpoint had
        failed before this attempt (a success clears that)."""
        note = {"at": now, "status_code": result.status_code, "latency_ms": result.latency_ms, "error": result.error}
        DELIVERIES.labels(delivery["channel"], verdict.value).inc()
        if verdict is Verdict.DELIVERED:
            saved = await self.deliveries.record(delivery, note, DELIVERED, None, now)
            if failing:
                await self.endpoints.succeeded(delivery["recipient_id"])
            await self._outcome(NotificationDelivered(**_outcome(saved, now)))
            return
        next_at = self._next_attempt(delivery, result, now) if verdict is Verdict.RETRY else None
        saved = await self.deliveries.record(delivery, note, PENDING if next_at else FAILED, next_at, now)
        await self._outcome(NotificationFailed(**_outcome(saved, now), final=next_at is None, next_attempt_at=next_at))
        if delivery["channel"] == "webhook":
            await self._endpoint_failed(delivery["recipient_id"], delivery["target"], verdict, now)
        log.info(
            "delivery %s attempt failed (%s)%s",
            delivery["_id"],
            result.error,
            f", next at {next_at:%H:%M:%S}" if next_at else ", no retry left",
        )

    def _next_attempt(self, delivery: Document, result: AttemptResult, now: datetime) -> datetime | None:
        round_start = delivery.get("round_started_at")
        made = sum(1 for a in delivery["attempts"] if round_start is None or a["at"] >= round_start) + 1
        return self.policy.schedule.next_attempt(made, now, retry_after(result.retry_after, now))

    async def _outcome(self, outcome: NotificationDelivered | NotificationFailed) -> None:
        await self.publisher.notification(Envelope.wrap(outcome, source=SOURCE, subject=outcome.recipient_id))


def _by_partner(told: list[tuple[PartnerEvent, Envelope]]) -> dict[str, list[tuple[PartnerEvent, Envelope]]]:
    groups: dict[str, list[tuple[PartnerEvent, Envelope]]] = {}
    for event, envelope in told:
        groups.setdefault(event.partner_id, []).append((event, envelope))
    return groups


def _note(now: datetime, error: str) -> dict[str, Any]:
    return {"at": now, "status_code": None, "latency_ms": 0, "error": error}


def _outcome(delivery: Document, now: datetime) -> dict[str, Any]:
    return {
        "delivery_id": delivery["_id"],
        "channel": delivery["channel"],
        "recipient_type": delivery["recipient_type"],
        "recipient_id": delivery["recipient_id"],
        "event_id": delivery["event_id"],
        "delivered_type": delivery["delivered_type"],
        "referral_id": delivery.get("referral_id"),
        "target": delivery["target"],
        "attempts": [Attempt.model_validate(a) for a in delivery["attempts"]],
        "at": now,
    }


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)

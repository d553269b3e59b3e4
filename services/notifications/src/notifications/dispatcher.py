"""Delivers what is due: webhooks and e-mails, with retries on the stored schedule, endpoint health, and an
outcome event for every attempt (intake shows them in the delivery lists)."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from goglobal_contract.notification_events import Attempt, EndpointDisabled, NotificationDelivered, NotificationFailed
from goglobal_shared.metrics import DELIVERIES
from goglobal_shared.periodic import LoopOwner, Outcome, PeriodicTask
from goglobal_shared.webhook_secrets import signing_secrets
from notifications.adapters.deliveries import DELIVERED, DISABLED, FAILED, PENDING, DeliveryRepository
from notifications.adapters.directory import Directory
from notifications.email.render import render
from notifications.email.smtp import PermanentEmailError, SmtpConfig, TransientEmailError, build_message, send
from notifications.endpoints import EndpointHealth
from notifications.handoff import Handoff
from notifications.webhooks.policy import Schedule, Verdict, classify, retry_after
from notifications.webhooks.sender import AttemptResult, TargetRefused, attempt, check_target

log = logging.getLogger(__name__)

Emit = Callable[[NotificationDelivered | NotificationFailed | EndpointDisabled], Awaitable[None]]


@dataclass
class Dispatcher(LoopOwner):
    deliveries: DeliveryRepository
    directory: Directory
    endpoints: EndpointHealth
    http: httpx.AsyncClient
    schedule: Schedule
    master_key: str
    smtp: SmtpConfig | None
    emit: Emit
    clock: Callable[[], datetime]
    handoff: Handoff
    interval_s: float = 0.5
    allow_private_targets: bool = False
    attempts: int = 0
    loop: PeriodicTask = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Attempts what is handed over as it comes (the task's hand-over); queries for due deliveries on the clock,
        or when asked (its step)."""
        self.loop = PeriodicTask(
            "delivery dispatcher",
            self._due_pass,
            self.interval_s,
            hand_over=self._attempt_handed,
            wakeup=self.handoff.wakeup,
        )

    def wake(self) -> None:
        self.handoff.wake()

    async def _attempt_handed(self) -> Outcome:
        """Deliveries created claimed by this process: attempted with no claim and no read of the partner. One
        that crashes stays claimed until its lease ends, then is due again."""
        handed = self.handoff.take()
        if not handed:
            return Outcome.IDLE
        done = await asyncio.gather(*(self._attempt(d, partner) for d, partner in handed), return_exceptions=True)
        for (delivery, _), result in zip(handed, done, strict=True):
            if isinstance(result, BaseException):
                log.error("delivery %s attempt crashed; due again after its lease", delivery["_id"], exc_info=result)
        return Outcome.DONE

    async def _due_pass(self) -> None:
        await self.deliver_due()

    async def deliver_due(self) -> int:
        due = await self.deliveries.due(self.clock())
        done = await asyncio.gather(*(self._claimed(delivery) for delivery in due), return_exceptions=True)
        for delivery, result in zip(due, done, strict=True):
            if isinstance(result, BaseException):
                log.error("delivery %s attempt crashed; it stays due", delivery["_id"], exc_info=result)
        return sum(r for r in done if isinstance(r, int))

    async def _claimed(self, due: dict[str, Any]) -> int:
        delivery = await self.deliveries.claim(due, self.clock())
        if delivery is None:
            return 0  # another replica has it, or it changed since it was read
        await self._attempt(delivery)
        return 1

    async def _attempt(self, delivery: dict[str, Any], partner: dict[str, Any] | None = None) -> None:
        """`partner`: the directory entry the delivery was addressed from, if the caller holds it."""
        now = self.clock()
        failing = False
        if delivery["channel"] == "webhook":
            endpoint = await self.endpoints.state(delivery["recipient_id"])
            if endpoint is not None and endpoint.get("disabled"):
                await self.deliveries.record(delivery, _note(now, "endpoint disabled"), DISABLED, None, now)
                return
            failing = endpoint is not None
            result, verdict = await self._webhook(delivery, now, partner)
        else:
            result, verdict = await self._email(delivery)
        self.attempts += 1
        await self._conclude(delivery, result, verdict, now, failing)

    async def _webhook(
        self, delivery: dict[str, Any], now: datetime, partner: dict[str, Any] | None
    ) -> tuple[AttemptResult, Verdict]:
        if partner is None:
            partner = await self.directory.partner(delivery["recipient_id"]) or {}
        try:
            await check_target(delivery["target"], self.allow_private_targets)
        except TargetRefused as exc:
            return AttemptResult(None, 0, str(exc)[:500]), Verdict.GIVE_UP
        except OSError as exc:  # the name did not resolve: often a passing DNS failure, so try again later
            return AttemptResult(None, 0, str(exc)[:500]), Verdict.RETRY
        secrets = signing_secrets(
            self.master_key,
            delivery["recipient_id"],
            partner.get("webhook_secret_generation", 1),
            partner.get("previous_secret_valid_until"),
            now,
        )
        trace = {"traceparent": delivery["traceparent"]} if delivery.get("traceparent") else None
        body = delivery["body"].encode()
        result = await attempt(self.http, delivery["target"], body, delivery["event_id"], secrets, now, trace)
        return result, classify(result.status_code)

    async def _email(self, delivery: dict[str, Any]) -> tuple[AttemptResult, Verdict]:
        started = time.monotonic()
        if self.smtp is None:
            return AttemptResult(None, 0, "e-mail is not configured (GOGLOBAL_SMTP_HOST)"), Verdict.GIVE_UP
        try:
            rendered = render(delivery["kind"], delivery["language"], delivery["context"])
            message_id = delivery["_id"].replace(":", ".")
            message = build_message(self.smtp, delivery["target"], rendered, message_id, delivery["language"])
        except Exception as exc:  # a template or address problem: retrying would fail the same way
            log.exception("e-mail %s cannot be built", delivery["_id"])
            return AttemptResult(None, _ms(started), f"cannot build the e-mail: {exc}"[:500]), Verdict.GIVE_UP
        try:
            await send(self.smtp, message)
        except TransientEmailError as exc:
            return AttemptResult(None, _ms(started), str(exc)[:500]), Verdict.RETRY
        except PermanentEmailError as exc:
            return AttemptResult(None, _ms(started), str(exc)[:500]), Verdict.GIVE_UP
        return AttemptResult(250, _ms(started), None), Verdict.DELIVERED

    async def _conclude(
        self, delivery: dict[str, Any], result: AttemptResult, verdict: Verdict, now: datetime, failing: bool = False
    ) -> None:
        """`failing`: the endpoint had failed before this attempt (a success clears that)."""
        note = {"at": now, "status_code": result.status_code, "latency_ms": result.latency_ms, "error": result.error}
        DELIVERIES.labels(delivery["channel"], verdict.value).inc()
        if verdict is Verdict.DELIVERED:
            saved = await self.deliveries.record(delivery, note, DELIVERED, None, now)
            if failing:
                await self.endpoints.succeeded(delivery["recipient_id"])
            await self.emit(NotificationDelivered(**_outcome(saved, now)))
            return
        next_at = self._next(delivery, result, now) if verdict is Verdict.RETRY else None
        saved = await self.deliveries.record(delivery, note, PENDING if next_at else FAILED, next_at, now)
        await self.emit(NotificationFailed(**_outcome(saved, now), final=next_at is None, next_attempt_at=next_at))
        if delivery["channel"] == "webhook":
            await self.endpoints.failed(delivery["recipient_id"], delivery["target"], verdict, now)
        log.info(
            "delivery %s attempt failed (%s)%s",
            delivery["_id"],
            result.error,
            f", next at {next_at:%H:%M:%S}" if next_at else ", no retry left",
        )

    def _next(self, delivery: dict[str, Any], result: AttemptResult, now: datetime) -> datetime | None:
        round_start = delivery.get("round_started_at")
        made = sum(1 for a in delivery["attempts"] if round_start is None or a["at"] >= round_start) + 1
        return self.schedule.next_attempt(made, now, retry_after(result.retry_after, now))


def _note(now: datetime, error: str) -> dict[str, Any]:
    return {"at": now, "status_code": None, "latency_ms": 0, "error": error}


def _outcome(delivery: dict[str, Any], now: datetime) -> dict[str, Any]:
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

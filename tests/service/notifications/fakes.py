"""In-memory fakes of notifications' ports (`notifications.ports`), with the semantics of the real adapters:
deliveries are unique by id and changed by compare-and-set on their version, the directory keeps the highest
version of each entry (and a new webhook URL clears the endpoint's health record), an endpoint is disabled by
exactly one compare-and-set. The publisher, the webhooks and the mailer record what they were given."""

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
from goglobal_contract.events import EnterpriseUpserted, PartnerUpserted, ReferralSubmitted
from goglobal_shared.store import ConcurrentUpdate
from goglobal_shared.store.aggregates import MAX_RETRIES
from notifications.email.render import RenderedEmail
from notifications.errors import EmailError, TargetRefused
from notifications.fanout import Referral
from notifications.records import DISABLED, FAILED, LEASE, PENDING, Document
from notifications.webhooks.policy import AttemptResult

P = TypeVar("P", bound=EventPayload)


def _cas(store: dict[str, Document], current: Document, fields: Document) -> bool:
    """`goglobal_shared.store.aggregates.replace_versioned`: applies only on the version read."""
    stored = store.get(current["_id"])
    if stored is None or stored.get("version", 0) != current.get("version", 0):
        return False
    store[current["_id"]] = copy.deepcopy({**current, **fields, "version": current.get("version", 0) + 1})
    return True


@dataclass
class FakeEndpoints:
    records: dict[str, Document] = field(default_factory=dict)

    async def state(self, partner_id: str) -> Document | None:
        return copy.deepcopy(self.records.get(partner_id))

    async def failing(self, partner_id: str, url: str, now: datetime) -> Document:
        fresh = {"_id": partner_id, "url": url, "failing_since": now, "disabled": False, "version": 1}
        return copy.deepcopy(self.records.setdefault(partner_id, fresh))

    async def disable(self, record: Document, reason: str, now: datetime) -> bool:
        return _cas(self.records, record, {"disabled": True, "disabled_at": now, "reason": reason})

    async def succeeded(self, partner_id: str) -> None:
        if not self.records.get(partner_id, {}).get("disabled", True):
            del self.records[partner_id]

    async def enable(self, partner_id: str) -> None:
        self.records.pop(partner_id, None)

    async def enable_all(self) -> None:
        self.records = {k: r for k, r in self.records.items() if not r["disabled"]}


@dataclass
class FakeDirectory:
    endpoints: FakeEndpoints
    held: dict[str, Document] = field(default_factory=dict)  # partners by id
    enterprises: dict[str, Document] = field(default_factory=dict)

    async def partner(self, partner_id: str) -> Document | None:
        return copy.deepcopy(self.held.get(partner_id))

    async def partners(self, partner_ids: list[str]) -> dict[str, Document]:
        return {i: copy.deepcopy(self.held[i]) for i in partner_ids if i in self.held}

    async def enterprise(self, enterprise_id: str) -> Document | None:
        return copy.deepcopy(self.enterprises.get(enterprise_id))

    async def apply_partner(self, event: PartnerUpserted) -> None:
        before = self.held.get(event.partner_id)
        if _newer(self.held, event.partner_id, event.model_dump(mode="python"), event.version) and (
            before is None or before.get("webhook_url") != event.webhook_url
        ):
            await self.endpoints.enable(event.partner_id)  # a new URL is a new endpoint

    async def apply_enterprise(self, event: EnterpriseUpserted) -> None:
        _newer(self.enterprises, event.enterprise_id, event.model_dump(mode="python"), event.version)


def _newer(store: dict[str, Document], doc_id: str, doc: Document, version: int) -> bool:
    if store.get(doc_id, {}).get("version", 0) >= version:
        return False
    store[doc_id] = {**doc, "_id": doc_id, "version": version}
    return True


@dataclass
class FakeReferrals:
    referrals: dict[str, Referral] = field(default_factory=dict)

    async def submitted(self, event: ReferralSubmitted) -> None:
        need = event.need.model_dump(mode="json")
        self.referrals.setdefault(
            event.referral_id, Referral(event.referral_id, event.request_id, event.enterprise_id, need)
        )

    async def accepted(self, referral_id: str, partner_id: str) -> None:
        if referral_id in self.referrals:
            r = self.referrals[referral_id]
            self.referrals[referral_id] = Referral(r.referral_id, r.request_id, r.enterprise_id, r.need, partner_id)

    async def get(self, referral_id: str) -> Referral | None:
        return self.referrals.get(referral_id)


@dataclass
class FakeDeliveries:
    stored: dict[str, Document] = field(default_factory=dict)

    async def create(self, delivery: Document) -> bool:
        if delivery["_id"] in self.stored:
            return False
        self.stored[delivery["_id"]] = copy.deepcopy(delivery)
        return True

    async def create_many(self, deliveries: list[Document]) -> set[str]:
        return {d["_id"] for d in deliveries if await self.create(d)}

    async def get_many(self, delivery_ids: list[str]) -> list[Document]:
        return [copy.deepcopy(self.stored[i]) for i in delivery_ids if i in self.stored]

    async def due(self, now: datetime, limit: int = 50) -> list[Document]:
        due = [d for d in self.stored.values() if d["status"] == PENDING and d["next_attempt_at"] <= now]
        return copy.deepcopy(due[:limit])

    async def claim(self, due: Document, now: datetime) -> Document | None:
        if not _cas(self.stored, due, {"next_attempt_at": now + LEASE}):
            return None
        return copy.deepcopy(self.stored[due["_id"]])

    async def record(
        self, delivery: Document, attempt: Document, status: str, next_attempt_at: datetime | None, now: datetime
    ) -> Document:
        for _ in range(MAX_RETRIES):
            changes = {
                "attempts": [*delivery["attempts"], attempt],
                "status": status,
                "next_attempt_at": next_attempt_at,
                "updated_at": now,
            }
            if _cas(self.stored, delivery, changes):
                return copy.deepcopy(self.stored[delivery["_id"]])
            delivery = copy.deepcopy(self.stored[delivery["_id"]])
        raise ConcurrentUpdate(delivery["_id"])

    async def reschedule(
        self, delivery_ids: list[str], partner_id: str | None, failed_since: datetime | None, now: datetime
    ) -> int:
        changes = {"status": PENDING, "next_attempt_at": now, "round_started_at": now, "updated_at": now}
        chosen = [
            d
            for d in list(self.stored.values())
            if d["status"] in (FAILED, DISABLED)
            and (not delivery_ids or d["_id"] in delivery_ids)
            and (not partner_id or d["recipient_id"] == partner_id)
            and (not failed_since or d["updated_at"] >= failed_since)
        ]
        return sum(_cas(self.stored, d, changes) for d in chosen)

    async def hold_webhooks(self, partner_id: str, now: datetime) -> int:
        changes = {"status": DISABLED, "next_attempt_at": None, "updated_at": now}
        held = [
            d
            for d in list(self.stored.values())
            if (d["recipient_id"], d["channel"], d["status"]) == (partner_id, "webhook", PENDING)
        ]
        return sum(_cas(self.stored, d, changes) for d in held)

    def of(self, channel: str) -> list[Document]:
        return [d for d in self.stored.values() if d["channel"] == channel]


@dataclass
class FakePublisher:
    """What reached each partner's topic, and `goglobal.notifications`."""

    partner_topics: dict[str, list[Envelope]] = field(default_factory=dict)
    notifications: list[Envelope] = field(default_factory=list)

    async def to_partner(self, partner_id: str, envelope: Envelope) -> None:
        self.partner_topics.setdefault(partner_id, []).append(envelope)

    async def notification(self, envelope: Envelope) -> None:
        self.notifications.append(envelope)

    def published(self, kind: type[P]) -> list[P]:
        return [e.data for e in self.notifications if isinstance(e.data, kind)]


@dataclass(frozen=True)
class Post:
    url: str
    body: bytes
    headers: Mapping[str, str]


@dataclass
class FakeWebhooks:
    """Answers each POST with the next of `answers` (200 once they run out)."""

    answers: list[int] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # URLs a webhook must never reach

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        if url in self.refused:
            raise TargetRefused(f"{url} is not a public address")
        self.posts.append(Post(url, body, dict(headers)))
        status = self.answers.pop(0) if self.answers else 200
        return AttemptResult(status, 1, None if status < 300 else f"HTTP {status}")


@dataclass
class FakeMailer:
    sent: list[tuple[str, RenderedEmail, str]] = field(default_factory=list)
    failures: list[EmailError] = field(default_factory=list)

    async def send(self, to: str, rendered: RenderedEmail, message_id: str, language: str) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((to, rendered, message_id))


@dataclass
class FakeDispatcher:
    """`handoff.Handoff` as the use cases see it."""

    handed: list[tuple[Document, Document]] = field(default_factory=list)
    wakes: int = 0

    def put(self, delivery: Document, partner: Document) -> None:
        self.handed.append((delivery, partner))

    def wake(self) -> None:
        self.wakes += 1

    def take(self) -> list[tuple[Document, Document]]:
        handed, self.handed = self.handed, []
        return handed

"""In-memory stores and runtime for the service tier, with the semantics the real adapters document:

- every save is a compare-and-set on the record's version (a writer that lost a race reads again and re-decides,
  at most `MAX_RETRIES` times), and hands out copies, so nothing is shared with a caller by reference;
- unique keys: an enterprise's credit code, a partner's id, a service request's (enterprise, Idempotency-Key);
- idempotency records claim, replay, refuse another body and take over a stale lock as `IdempotencyRepository`;
- the events a write queues are "published" in the order written (`Outbox`), as the outbox relay would;
- a read yields to the event loop, as real I/O does, so concurrent use cases interleave and race.
"""

import asyncio
import copy
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Generic, TypeVar

from goglobal_contract.enums import ReferralStatus
from goglobal_contract.envelope import Envelope
from goglobal_contract.ids import new_id
from goglobal_shared.health import Check
from goglobal_shared.runtime import BackgroundLoops
from goglobal_shared.store import ConcurrentUpdate
from goglobal_shared.store.aggregates import MAX_RETRIES
from intake.adapters.idempotency_repository import LOCK, RETENTION, Claim, StoredResponse
from intake.auth.keys import IssuedKey, KeyInfo, Principal, Role, issue_key, parse_key, secret_matches
from intake.components import Intake
from intake.console.session import LIFETIME, ConsoleSession, Flash
from intake.domain.inputs.enterprise import EnterpriseProfile, patched, profile_of
from intake.domain.inputs.partner import PartnerProfile
from intake.domain.service_requests import ServiceRequest, request_id_of
from intake.service_layer.ports import (
    AlreadyStored,
    Clock,
    Command,
    Decide,
    Headers,
    LetterFilter,
    NotStored,
    Record,
    RequestFilter,
    Saved,
)
from intake.settings import IntakeSettings

T = TypeVar("T")


@dataclass
class Outbox:
    """What the relays would have published, in the order it was written."""

    events: list[Envelope] = field(default_factory=list)

    def of_type(self, event_type: str) -> list[Envelope]:
        return [e for e in self.events if e.type == event_type]


async def _io() -> None:
    await asyncio.sleep(0)


class Versioned(Generic[T]):
    """Records under their id with a version; `save` is a compare-and-set on the version read."""

    def __init__(self) -> None:
        self._records: dict[str, tuple[int, T]] = {}

    def read(self, record_id: str) -> tuple[int, T] | None:
        found = self._records.get(record_id)
        return (found[0], copy.deepcopy(found[1])) if found else None

    def insert(self, record_id: str, value: T) -> bool:
        if record_id in self._records:
            return False
        self._records[record_id] = (1, copy.deepcopy(value))
        return True

    def save(self, record_id: str, version_read: int, value: T) -> bool:
        current = self._records.get(record_id)
        if current is None or current[0] != version_read:
            return False
        self._records[record_id] = (version_read + 1, copy.deepcopy(value))
        return True

    def values(self) -> list[T]:
        return [copy.deepcopy(value) for _, value in self._records.values()]

    def items(self) -> list[tuple[str, T]]:
        return [(record_id, copy.deepcopy(value)) for record_id, (_, value) in self._records.items()]

    async def change(self, record_id: str, decide: Callable[[T, int], Awaitable[T | None]]) -> tuple[int, T] | None:
        """Reads, lets `decide` return the new value (None: no change), and saves it unless another writer came
        first, in which case it reads and decides again. Returns the version and value as stored."""
        for _ in range(MAX_RETRIES):
            found = self.read(record_id)
            if found is None:
                return None
            version, value = found
            await _io()
            changed = await decide(value, version)
            if changed is None:
                return version, value
            if self.save(record_id, version, changed):
                return version + 1, changed
        raise ConcurrentUpdate(record_id)


class RequestDocs(Versioned[ServiceRequest]):
    """Requests whose queued events go out exactly when their write is accepted (the document outbox)."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__()
        self.outbox = outbox

    def insert(self, record_id: str, value: ServiceRequest) -> bool:
        return self._publishing(value, 1, partial(super().insert, record_id, value))

    def save(self, record_id: str, version_read: int, value: ServiceRequest) -> bool:
        return self._publishing(value, version_read + 1, partial(super().save, record_id, version_read, value))

    def _publishing(self, request: ServiceRequest, version: int, write: Callable[[], bool]) -> bool:
        pending, request.pending, request.version = request.pending, [], version
        if not write():
            request.pending = pending  # not written: the caller reads again and decides anew
            return False
        self.outbox.events.extend(pending)
        return True


class FakeRequests:
    def __init__(self, outbox: Outbox) -> None:
        self.docs = RequestDocs(outbox)
        self.keys: dict[tuple[str, str], str] = {}  # the unique index on (enterprise, Idempotency-Key)

    async def add(self, request: ServiceRequest, now: datetime) -> ServiceRequest:
        if request.idempotency_key:
            earlier = self.keys.get((request.enterprise_id, request.idempotency_key))
            if earlier is not None:
                return await self.get(earlier)
            self.keys[(request.enterprise_id, request.idempotency_key)] = request.id
        if not self.docs.insert(request.id, request):
            raise RuntimeError(f"service request {request.id} exists already")
        return request

    async def get(self, request_id: str) -> ServiceRequest:
        found = self.docs.read(request_id)
        if found is None:
            raise NotStored(request_id)
        return found[1]

    async def by_referral(self, referral_id: str) -> ServiceRequest:
        request = await self.get(request_id_of(referral_id))
        if not any(r.id == referral_id for r in request.referrals):
            raise NotStored(referral_id)
        return request

    async def mutate(self, referral_id: str, command: Command, clock: Clock) -> ServiceRequest:
        async def decide(request: ServiceRequest, version: int) -> ServiceRequest | None:
            if not any(r.id == referral_id for r in request.referrals):
                raise NotStored(referral_id)
            return request if await command(request) else None

        saved = await self.docs.change(request_id_of(referral_id), decide)
        if saved is None:
            raise NotStored(referral_id)
        return saved[1]

    async def mutate_many(self, request_ids: list[str], decide: Decide, clock: Clock) -> set[str]:
        read = {rid: found for rid in request_ids if (found := self.docs.read(rid)) is not None}
        changed = await decide({rid: request for rid, (_, request) in read.items()})
        return {rid for rid, request in changed.items() if not self.docs.save(rid, read[rid][0], request)}

    async def page(
        self, chosen: RequestFilter, limit: int, after: str | None, include_after: bool = False
    ) -> list[ServiceRequest]:
        found = sorted(self.docs.values(), key=lambda r: r.id, reverse=True)
        return [r for r in found if _chosen(r, chosen) and _below(r.id, after, include_after)][:limit]

    async def referral_documents(self, status: ReferralStatus | None = None) -> list[Record]:
        requests = [r for r in self.docs.values() if status is None or r.progress.get(status.value)]
        return [{"_id": r.id, "enterprise_name": r.enterprise_name, "referrals": _referral_docs(r)} for r in requests]


def _chosen(request: ServiceRequest, chosen: RequestFilter) -> bool:
    if chosen.enterprise_id is not None and request.enterprise_id != chosen.enterprise_id:
        return False
    if chosen.partner_id is not None:  # a partner's page is filtered by status by its caller
        return any(chosen.partner_id in r.offered_to for r in request.referrals)
    return chosen.status is None or request.progress.get(chosen.status.value, 0) > 0


def _below(request_id: str, after: str | None, include_after: bool) -> bool:
    return after is None or request_id < after or (include_after and request_id == after)


def _referral_docs(request: ServiceRequest) -> list[Record]:
    return [{"id": r.id, "status": r.status.value, "history": r.history} for r in request.referrals]


class FakeEnterprises:
    def __init__(self) -> None:
        self.docs: Versioned[Record] = Versioned()

    async def register(self, profile: EnterpriseProfile, now: datetime) -> Record:
        if any(doc["profile"]["uscc"] == profile.uscc for doc in self.docs.values()):
            raise AlreadyStored(profile.uscc)
        enterprise_id = new_id()
        doc = {"_id": enterprise_id, "profile": profile.model_dump(mode="json"), "created_at": now, "updated_at": now}
        self.docs.insert(enterprise_id, doc)
        return {**doc, "version": 1}

    async def get(self, enterprise_id: str) -> Record | None:
        await _io()
        found = self.docs.read(enterprise_id)
        return {**found[1], "version": found[0]} if found else None

    async def recent(self, enterprise_id: str) -> Record | None:
        return await self.get(enterprise_id)  # a cache of no age: what a single replica sees after its own change

    async def profile(self, enterprise_id: str) -> EnterpriseProfile | None:
        return profile_of(await self.get(enterprise_id))

    async def profiles(self, enterprise_ids: list[str]) -> dict[str, EnterpriseProfile | None]:
        return {enterprise_id: await self.profile(enterprise_id) for enterprise_id in enterprise_ids}

    async def update(self, enterprise_id: str, changes: dict[str, Any], now: datetime) -> Record | None:
        async def decide(doc: Record, version: int) -> Record:
            profile = EnterpriseProfile.model_validate(patched(doc["profile"], changes))
            return {**doc, "profile": profile.model_dump(mode="json"), "updated_at": now}

        saved = await self.docs.change(enterprise_id, decide)
        return {**saved[1], "version": saved[0]} if saved else None


class FakePartners:
    def __init__(self) -> None:
        self.docs: Versioned[Record] = Versioned()

    async def get(self, partner_id: str) -> Record | None:
        found = self.docs.read(partner_id)
        return {**found[1], "version": found[0]} if found else None

    async def upsert(self, partner_id: str, profile: PartnerProfile, actor: str, now: datetime) -> Saved:
        fresh = {
            "_id": partner_id,
            "profile": profile.model_dump(mode="json"),
            "created_at": now,
            "updated_at": now,
            "webhook_secret": {"generation": 1, "previous_valid_until": None},
            "audit": [{"at": now, "actor": actor, "action": "created"}],
        }
        if self.docs.insert(partner_id, fresh):
            return Saved({**fresh, "version": 1}, created=True)

        async def decide(doc: Record, version: int) -> Record:
            action = "deactivated" if doc["profile"]["active"] and not profile.active else "updated"
            return _audited(doc, {"profile": profile.model_dump(mode="json")}, actor, action, now)

        return await self._saved(partner_id, decide)

    async def rotate_secret(
        self, partner_id: str, previous_valid_until: datetime, actor: str, now: datetime
    ) -> Saved | None:
        async def decide(doc: Record, version: int) -> Record:
            secret = {
                "generation": doc["webhook_secret"]["generation"] + 1,
                "previous_valid_until": previous_valid_until,
            }
            return _audited(doc, {"webhook_secret": secret}, actor, "rotated the webhook secret", now)

        return await self._saved(partner_id, decide) if self.docs.read(partner_id) else None

    async def page(self, limit: int, after: str | None, active: bool | None) -> list[Record]:
        docs = sorted(self.docs.values(), key=lambda d: str(d["_id"]))
        chosen = [d for d in docs if (after is None or d["_id"] > after) and active in (None, d["profile"]["active"])]
        return chosen[:limit]

    async def names(self, partner_ids: list[str]) -> dict[str, str]:
        return {d["_id"]: d["profile"]["name"] for d in self.docs.values() if d["_id"] in partner_ids}

    async def _saved(self, partner_id: str, decide: Callable[[Record, int], Awaitable[Record | None]]) -> Saved:
        saved = await self.docs.change(partner_id, decide)
        assert saved is not None
        return Saved({**saved[1], "version": saved[0]}, created=False)


def _audited(doc: Record, fields: Record, actor: str, action: str, now: datetime) -> Record:
    return {**doc, **fields, "updated_at": now, "audit": [*doc["audit"], {"at": now, "actor": actor, "action": action}]}


class FakeApiKeys:
    def __init__(self) -> None:
        self.docs: Versioned[Record] = Versioned()

    async def create(
        self, role: Role, subject_id: str, name: str, now: datetime, expires_at: datetime | None = None
    ) -> IssuedKey:
        key = issue_key()
        doc = {"secret_hash": key.secret_hash, "role": role, "subject_id": subject_id, "name": name}
        self.docs.insert(key.key_id, {**doc, "created_at": now, "expires_at": expires_at, "revoked_at": None})
        return key

    async def authenticate(self, presented: str, now: datetime) -> Principal | None:
        parsed = parse_key(presented)
        found = self.docs.read(parsed[0]) if parsed else None
        if parsed is None or found is None:
            return None
        doc = found[1]
        if doc["revoked_at"] is not None or not secret_matches(parsed[1], doc["secret_hash"]):
            return None
        if doc["expires_at"] is not None and doc["expires_at"] <= now:
            return None
        return Principal(doc["role"], doc["subject_id"], parsed[0])

    async def get(self, key_id: str) -> KeyInfo | None:
        found = self.docs.read(key_id)
        return _info(key_id, found[1]) if found else None

    async def for_subject(self, role: Role, subject_id: str) -> list[KeyInfo]:
        return [_info(k, d) for k, d in self.docs.items() if d["role"] is role and d["subject_id"] == subject_id]

    async def revoke(self, key_id: str, now: datetime) -> bool:
        revoked = False

        async def decide(doc: Record, version: int) -> Record | None:
            nonlocal revoked
            revoked = doc["revoked_at"] is None
            return {**doc, "revoked_at": now} if revoked else None

        await self.docs.change(key_id, decide)
        return revoked


def _info(key_id: str, doc: Record) -> KeyInfo:
    return KeyInfo(
        key_id, doc["role"], doc["subject_id"], doc["name"], doc["created_at"], doc["expires_at"], doc["revoked_at"]
    )


class FakeIdempotency:
    def __init__(self) -> None:
        self.records: dict[str, Record] = {}

    async def claim(self, record_id: str, fingerprint: str, now: datetime) -> tuple[Claim, StoredResponse | None]:
        doc = self.records.get(record_id)
        if doc is None or doc["created_at"] < now - RETENTION:
            self.records[record_id] = {
                "fingerprint": fingerprint,
                "state": "in_progress",
                "created_at": now,
                "locked_until": now + LOCK,
            }
            return Claim.NEW, None
        if doc["fingerprint"] != fingerprint:
            return Claim.MISMATCH, None
        if doc["state"] == "done":
            return Claim.REPLAY, doc["response"]
        if doc["locked_until"] > now:
            return Claim.IN_PROGRESS, None
        doc["locked_until"] = now + LOCK  # a crashed request's lock expired: this retry takes over
        return Claim.NEW, None

    async def lookup(self, record_id: str, fingerprint: str, now: datetime) -> tuple[Claim, StoredResponse | None]:
        doc = self.records.get(record_id)
        if doc is None or doc["created_at"] < now - RETENTION or doc["state"] != "done":
            return Claim.NEW, None
        if doc["fingerprint"] != fingerprint:
            return Claim.MISMATCH, None
        return Claim.REPLAY, doc["response"]

    async def store(self, record_id: str, fingerprint: str, response: StoredResponse, now: datetime) -> None:
        doc = self.records.get(record_id)
        # The answer to another request under the key never replaces the first one (unless that one expired).
        if doc is None or doc["fingerprint"] == fingerprint or doc["created_at"] < now - RETENTION:
            self.records[record_id] = {
                "fingerprint": fingerprint,
                "created_at": now,
                "state": "done",
                "response": response,
            }

    async def complete(self, record_id: str, response: StoredResponse) -> None:
        self.records[record_id].update(state="done", response=response)

    async def release(self, record_id: str) -> None:
        if self.records.get(record_id, {}).get("state") == "in_progress":
            del self.records[record_id]


class FakeNotifications:
    """Inboxes and deliveries as notifications' events would have projected them (tests put them in)."""

    def __init__(self) -> None:
        self.inbox: dict[str, Record] = {}
        self.deliveries: dict[str, Record] = {}
        self.commands: list[Envelope] = []

    async def inbox_page(
        self, recipient_id: str, unread_only: bool, limit: int, before: datetime | None
    ) -> list[Record]:
        items = [
            i
            for i in self.inbox.values()
            if i["recipient_id"] == recipient_id
            and not (unread_only and i["read_at"])
            and (before is None or i["created_at"] < before)
        ]
        return sorted(items, key=lambda i: i["created_at"], reverse=True)[:limit]

    async def mark_read(self, recipient_id: str, notification_id: str, now: datetime) -> Record | None:
        item = self.inbox.get(notification_id)
        if item is None or item["recipient_id"] != recipient_id:
            return None
        item["read_at"] = item["read_at"] or now
        return dict(item)

    async def delivery_page(self, query: Record, limit: int, before: datetime | None) -> list[Record]:
        found = [d for d in self.deliveries.values() if all(d.get(k) == v for k, v in query.items())]
        found = [d for d in found if before is None or d["updated_at"] < before]
        return sorted(found, key=lambda d: d["updated_at"], reverse=True)[:limit]

    async def delivery(self, delivery_id: str) -> Record | None:
        return self.deliveries.get(delivery_id)

    async def webhook_states(self) -> list[Record]:
        return [d for d in self.deliveries.values() if d["channel"] == "webhook" and d["recipient_type"] == "partner"]

    async def command(self, command_id: str, event: Envelope, now: datetime) -> None:
        self.commands.append(event)


class FakeDeadLetters:
    def __init__(self) -> None:
        self.letters: dict[str, Record] = {}

    async def page(self, where: LetterFilter, limit: int) -> list[Record]:
        found = sorted(await self.matching(where), key=lambda d: d["dead_lettered_at"], reverse=True)
        return found[:limit]

    async def get(self, letter_id: str) -> Record | None:
        return self.letters.get(letter_id)

    async def matching(self, where: LetterFilter, limit: int = 10_000) -> list[Record]:
        wanted = {"original_topic": where.topic, "error_class": where.error_class, "status": where.status}
        found = [d for d in self.letters.values() if all(v in (None, d.get(k)) for k, v in wanted.items())]
        return [d for d in found if where.since is None or d["dead_lettered_at"] >= where.since][:limit]

    async def replayed(self, letter_id: str, by: str, at: datetime, result: str) -> None:
        letter = self.letters[letter_id]
        letter["replays"] = [*letter.get("replays", []), {"by": by, "at": at, "result": result}]
        letter["status"] = "replayed" if result == "sent" else "open"


class FakeSessions:
    def __init__(self) -> None:
        self.sessions: dict[str, ConsoleSession] = {}

    async def create(self, key_id: str, principal: str, now: datetime) -> str:
        token = new_id()
        self.sessions[token] = ConsoleSession(token, key_id, principal, now, now + LIFETIME, new_id())
        return token

    async def get(self, token: str | None, now: datetime) -> ConsoleSession | None:
        session = self.sessions.get(token or "")
        return session if session is not None and session.expires_at > now else None

    async def delete(self, session: ConsoleSession) -> None:
        self.sessions.pop(session.token_hash, None)

    async def set_flash(self, session: ConsoleSession, kind: str, text: str) -> None:
        self.sessions[session.token_hash] = dataclasses.replace(session, flash=Flash(kind, text))

    async def take_flash(self, session: ConsoleSession) -> Flash | None:
        self.sessions[session.token_hash] = dataclasses.replace(session, flash=None)
        return session.flash


@dataclass
class FakeProducer:
    """Records what a dead-letter replay sends."""

    sent: list[tuple[str, bytes | None]] = field(default_factory=list)

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, headers: Headers | None = None
    ) -> None:
        self.sent.append((topic, value))


@dataclass
class FakeConnections:
    producer: FakeProducer = field(default_factory=FakeProducer)


@dataclass
class FakeRuntime:
    """Health checks report the fakes as up; background loops (the console's sampler) run and stop as for real."""

    loops: BackgroundLoops = field(default_factory=BackgroundLoops)
    connections: FakeConnections = field(default_factory=FakeConnections)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def checks(self) -> Mapping[str, Check]:
        async def up() -> None:
            return None

        return {"database": up, "kafka": up, "consumer": up}

    def on_stop(self, close: Callable[[], Awaitable[None]]) -> None:
        self.closers.append(close)

    async def stop(self) -> None:
        await self.loops.stop(timeout_s=1.0)
        for close in self.closers:
            await close()


@dataclass
class World:
    """One intake made of fakes, and what its stores published."""

    intake: Intake
    outbox: Outbox
    requests: FakeRequests
    enterprises: FakeEnterprises
    partners: FakePartners
    api_keys: FakeApiKeys


def fake_intake(settings: IntakeSettings, clock: Clock) -> World:
    outbox = Outbox()
    requests, enterprises, partners, keys = FakeRequests(outbox), FakeEnterprises(), FakePartners(), FakeApiKeys()
    intake = Intake(
        settings,
        FakeRuntime(),
        requests,
        enterprises,
        partners,
        keys,
        FakeIdempotency(),
        FakeNotifications(),
        FakeDeadLetters(),
        FakeSessions(),
        clock,
    )
    return World(intake, outbox, requests, enterprises, partners, keys)

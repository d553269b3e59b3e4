"""The stores the use cases need, as protocols of only the methods they call. The MongoDB repositories of
`intake.adapters` implement them; `tests/service/fakes.py` holds in-memory ones with the same semantics."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from goglobal_contract.enums import ReferralStatus
from goglobal_contract.envelope import Envelope
from intake.auth.keys import IssuedKey, KeyInfo, Role
from intake.domain.inputs.enterprise import EnterpriseProfile
from intake.domain.inputs.partner import PartnerProfile
from intake.domain.service_requests import ServiceRequest

Record = dict[str, Any]  # a stored document as the store returns it
Clock = Callable[[], datetime]
Command = Callable[[ServiceRequest], Awaitable[bool]]  # True when it changed the request
Decide = Callable[[dict[str, ServiceRequest]], Awaitable[dict[str, ServiceRequest]]]
Headers = list[tuple[str, bytes | None]]


class NotStored(LookupError):
    """The store holds no such record."""


class AlreadyStored(Exception):
    """A unique key of the record is taken by another one."""


@dataclass(frozen=True)
class RequestFilter:
    """What a list may be narrowed to: one enterprise's requests, those offered to one partner, a status."""

    enterprise_id: str | None = None
    partner_id: str | None = None
    status: ReferralStatus | None = None


@dataclass(frozen=True)
class LetterFilter:
    """Which dead letters: of one original topic, one error class, one status, dead-lettered since a time."""

    topic: str | None = None
    error_class: str | None = None
    status: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class Saved:
    doc: Record
    created: bool


class RequestStore(Protocol):
    async def add(self, request: ServiceRequest, now: datetime) -> ServiceRequest:
        """Stores a new request; returns it, or the earlier one its enterprise sent with the same idempotency key."""
        ...

    async def get(self, request_id: str) -> ServiceRequest:
        """Raises NotStored."""
        ...

    async def by_referral(self, referral_id: str) -> ServiceRequest:
        """Raises NotStored."""
        ...

    async def mutate(self, referral_id: str, command: Command, clock: Clock) -> ServiceRequest:
        """Runs `command` on the request holding the referral and saves it with the events it queued, compared and
        set on its version: re-runs on a concurrent change. Raises NotStored."""
        ...

    async def mutate_many(self, request_ids: list[str], decide: Decide, clock: Clock) -> set[str]:
        """Saves the requests `decide` changed; returns the ids whose save lost a race (not saved)."""
        ...

    async def page(
        self, chosen: RequestFilter, limit: int, after: str | None, include_after: bool = False
    ) -> list[ServiceRequest]:
        """Newest first, starting below `after` (or at it, with `include_after`)."""
        ...


class EnterpriseStore(Protocol):
    async def register(self, profile: EnterpriseProfile, now: datetime) -> Record:
        """Raises AlreadyStored for a credit code registered before."""
        ...

    async def get(self, enterprise_id: str) -> Record | None: ...

    async def recent(self, enterprise_id: str) -> Record | None:
        """As read at most a few seconds ago: for what may lag a change (a submission)."""
        ...

    async def profile(self, enterprise_id: str) -> EnterpriseProfile | None: ...

    async def profiles(self, enterprise_ids: list[str]) -> dict[str, EnterpriseProfile | None]: ...

    async def update(self, enterprise_id: str, changes: dict[str, Any], now: datetime) -> Record | None:
        """Raises pydantic's ValidationError when the changed profile is not valid."""
        ...


class PartnerStore(Protocol):
    async def get(self, partner_id: str) -> Record | None: ...

    async def upsert(self, partner_id: str, profile: PartnerProfile, actor: str, now: datetime) -> Saved: ...

    async def rotate_secret(
        self, partner_id: str, previous_valid_until: datetime, actor: str, now: datetime
    ) -> Saved | None: ...


class KeyStore(Protocol):
    async def create(
        self, role: Role, subject_id: str, name: str, now: datetime, expires_at: datetime | None = None
    ) -> IssuedKey: ...

    async def get(self, key_id: str) -> KeyInfo | None: ...

    async def for_subject(self, role: Role, subject_id: str) -> list[KeyInfo]: ...

    async def revoke(self, key_id: str, now: datetime) -> bool:
        """False when it was revoked already."""
        ...


class LetterStore(Protocol):
    async def get(self, letter_id: str) -> Record | None: ...

    async def matching(self, where: LetterFilter, limit: int = ...) -> list[Record]: ...

    async def replayed(self, letter_id: str, by: str, at: datetime, result: str) -> None:
        """Records a replay: the letter is `replayed` once one was sent, `open` while none was."""
        ...


class Producer(Protocol):
    """Sends one record to Kafka and waits for the broker's acknowledgement."""

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, headers: Headers | None = None
    ) -> object: ...


class DeliveryStore(Protocol):
    """Intake's projection of notifications' deliveries, and the commands intake sends notifications."""

    async def delivery(self, delivery_id: str) -> Record | None: ...

    async def command(self, command_id: str, event: Envelope, now: datetime) -> None:
        """Stores the command with its event in one write; the relay sends it to notifications."""
        ...

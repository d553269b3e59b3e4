"""What one running intake is made of: its settings, runtime and stores, as the edges (routes, console) use them.
`bootstrap` builds it from the real adapters; nothing but the entry points imports `bootstrap`. The stores the
use cases and the API need are typed as protocols (the service layer's ports, plus what the edges read), so the
service tests (`tests/service`) put in-memory fakes in their place."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from goglobal_contract.enums import ReferralStatus
from goglobal_shared.health import Check
from goglobal_shared.runtime import BackgroundLoops
from intake.adapters.idempotency_repository import Claim, StoredResponse
from intake.auth.keys import Principal
from intake.console.session import ConsoleSession, Flash
from intake.service_layer.ports import (
    Clock,
    DeliveryStore,
    EnterpriseStore,
    KeyStore,
    LetterFilter,
    LetterStore,
    PartnerStore,
    Producer,
    Record,
    RequestStore,
)
from intake.settings import IntakeSettings


def utcnow() -> datetime:
    return datetime.now(UTC)


class Requests(RequestStore, Protocol):
    async def referral_documents(self, status: ReferralStatus | None = None) -> list[Record]:
        """Every request's name and referrals as stored (the console's tables)."""
        ...


class Partners(PartnerStore, Protocol):
    async def page(self, limit: int, after: str | None, active: bool | None) -> list[Record]: ...

    async def names(self, partner_ids: list[str]) -> dict[str, str]: ...


class ApiKeys(KeyStore, Protocol):
    async def authenticate(self, presented: str, now: datetime) -> Principal | None: ...


class Idempotency(Protocol):
    """Stored answers to POSTs sent with an `Idempotency-Key` (`intake.adapters.idempotency_repository`)."""

    async def claim(self, record_id: str, fingerprint: str, now: datetime) -> tuple[Claim, StoredResponse | None]: ...

    async def lookup(self, record_id: str, fingerprint: str, now: datetime) -> tuple[Claim, StoredResponse | None]: ...

    async def store(self, record_id: str, fingerprint: str, response: StoredResponse, now: datetime) -> None: ...

    async def complete(self, record_id: str, response: StoredResponse) -> None: ...

    async def release(self, record_id: str) -> None: ...


class Notifications(DeliveryStore, Protocol):
    """Intake's projection of what notifications did: inboxes, deliveries; and the commands sent to it."""

    async def inbox_page(
        self, recipient_id: str, unread_only: bool, limit: int, before: datetime | None
    ) -> list[Record]: ...

    async def mark_read(self, recipient_id: str, notification_id: str, now: datetime) -> Record | None: ...

    async def delivery_page(self, query: Record, limit: int, before: datetime | None) -> list[Record]: ...

    async def webhook_states(self) -> list[Record]: ...


class DeadLetters(LetterStore, Protocol):
    async def page(self, where: LetterFilter, limit: int) -> list[Record]:
        """Newest first."""
        ...


class Sessions(Protocol):
    """The console's sessions (`intake.console.session.SessionStore`)."""

    async def create(self, key_id: str, principal: str, now: datetime) -> str: ...

    async def get(self, token: str | None, now: datetime) -> ConsoleSession | None: ...

    async def delete(self, session: ConsoleSession) -> None: ...

    async def set_flash(self, session: ConsoleSession, kind: str, text: str) -> None: ...

    async def take_flash(self, session: ConsoleSession) -> Flash | None: ...


class Producing(Protocol):
    @property
    def producer(self) -> Producer: ...


class Runtime(Protocol):
    """What the edges use of `goglobal_shared.runtime.ServiceRuntime`: health checks, background loops, the
    producer dead letters are replayed with."""

    @property
    def loops(self) -> BackgroundLoops: ...

    @property
    def connections(self) -> Producing: ...

    def checks(self) -> Mapping[str, Check]: ...

    def on_stop(self, close: Callable[[], Awaitable[None]]) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Intake:
    settings: IntakeSettings
    runtime: Runtime
    requests: Requests
    enterprises: EnterpriseStore
    partners: Partners
    api_keys: ApiKeys
    idempotency: Idempotency
    notifications: Notifications
    dead_letters: DeadLetters
    sessions: Sessions
    clock: Clock = utcnow

    async def stop(self) -> None:
        await self.runtime.stop()

"""What one running intake is made of: its settings, runtime and wired adapters, as the edges (routes, console,
CLI-facing endpoints) use them. `bootstrap` builds it; nothing but the entry points imports `bootstrap`."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from goglobal_shared.runtime import ServiceRuntime
from goglobal_shared.store.outbox import OutboxRelay
from intake.adapters.api_key_repository import ApiKeyRepository
from intake.adapters.dead_letters import DeadLetterRepository
from intake.adapters.enterprise_repository import EnterpriseRepository
from intake.adapters.idempotency_repository import IdempotencyRepository
from intake.adapters.notification_views import NotificationViews
from intake.adapters.partner_repository import PartnerRepository
from intake.adapters.service_request_repository import ServiceRequestRepository
from intake.settings import IntakeSettings


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Intake:
    settings: IntakeSettings
    runtime: ServiceRuntime
    requests: ServiceRequestRepository
    enterprises: EnterpriseRepository
    partners: PartnerRepository
    api_keys: ApiKeyRepository
    idempotency: IdempotencyRepository
    notifications: NotificationViews
    dead_letters: DeadLetterRepository
    relays: list[OutboxRelay]
    clock: Callable[[], datetime] = utcnow

    async def stop(self) -> None:
        await self.runtime.stop()

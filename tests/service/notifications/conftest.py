"""Notifications' use cases on in-memory fakes (`fakes`): no Kafka, no database, no HTTP, no SMTP
(tests/service/conftest.py makes the infrastructure fixtures fail)."""

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from goglobal_contract.events import EnterpriseUpserted, PartnerUpserted
from notifications.service import DeliveryPolicy, NotificationService
from notifications.webhooks.policy import Schedule
from tests.service.clock import FakeClock
from tests.service.notifications.fakes import (
    FakeDeliveries,
    FakeDirectory,
    FakeDispatcher,
    FakeEndpoints,
    FakeMailer,
    FakePublisher,
    FakeReferrals,
    FakeWebhooks,
)
from tests.support import TEST_WEBHOOK_MASTER_KEY

RETRIES_S = [0.0, 60.0, 600.0]
DISABLE_AFTER = timedelta(hours=1)


@dataclass
class World:
    """The fakes behind one service, to arrange and inspect."""

    clock: FakeClock = field(default_factory=FakeClock)
    endpoints: FakeEndpoints = field(default_factory=FakeEndpoints)
    referrals: FakeReferrals = field(default_factory=FakeReferrals)
    deliveries: FakeDeliveries = field(default_factory=FakeDeliveries)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    webhooks: FakeWebhooks = field(default_factory=FakeWebhooks)
    mailer: FakeMailer = field(default_factory=FakeMailer)
    dispatcher: FakeDispatcher = field(default_factory=FakeDispatcher)
    directory: FakeDirectory = field(init=False)

    def __post_init__(self) -> None:
        self.directory = FakeDirectory(self.endpoints)

    def service(self, email: bool = True) -> NotificationService:
        policy = DeliveryPolicy(
            Schedule(RETRIES_S, jitter=0.0), TEST_WEBHOOK_MASTER_KEY, DISABLE_AFTER, "https://portal.example"
        )
        return NotificationService(
            self.directory,
            self.referrals,
            self.deliveries,
            self.endpoints,
            self.publisher,
            self.webhooks,
            self.mailer if email else None,
            self.dispatcher,
            policy,
            self.clock,
        )

    async def partner(self, event: PartnerUpserted) -> None:
        await self.directory.apply_partner(event)

    async def enterprise(self, event: EnterpriseUpserted) -> None:
        await self.directory.apply_enterprise(event)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def service(world: World) -> NotificationService:
    return world.service()

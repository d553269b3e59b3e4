"""What the service tiers of matching and notifications share: a clock the test moves, and the infrastructure
fixtures of tests/conftest.py replaced by ones that fail, so a test of the tier cannot reach for Kafka or a
database. Each subpackage's conftest takes the fixtures in.

It sits under matching/ only so that this branch adds no file at tests/service/ level (intake's service tier owns
tests/service/conftest.py); it can move there once both are merged."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.support import Infra, Namespace

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    pytest.fail("the service tier runs on in-memory fakes: no Kafka, no database")
    yield  # pragma: no cover


@pytest.fixture
def namespace() -> Namespace:
    pytest.fail("the service tier runs on in-memory fakes: no topics, no databases")

"""Matching's use cases on in-memory fakes (`fakes`): no Kafka, no database (tests/service/conftest.py makes
the infrastructure fixtures fail)."""

from datetime import timedelta

import pytest

from matching.engine import DirectoryIndex, Weights
from matching.service import MatchingService, OfferPolicy
from tests.service.clock import FakeClock
from tests.service.matching.fakes import FakeHistory, FakePlans

HOUR = timedelta(hours=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def plans() -> FakePlans:
    return FakePlans()


@pytest.fixture
def history() -> FakeHistory:
    return FakeHistory()


@pytest.fixture
def directory() -> DirectoryIndex:
    """The real index: it is in memory already."""
    return DirectoryIndex()


@pytest.fixture
def service(plans: FakePlans, history: FakeHistory, directory: DirectoryIndex, clock: FakeClock) -> MatchingService:
    return MatchingService(plans, history, directory, OfferPolicy(Weights(), fairness_margin=0.0, hour=HOUR), clock)

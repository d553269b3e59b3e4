"""Matching's use cases on in-memory fakes (`fakes`): no Kafka, no database. The infrastructure fixtures of
tests/conftest.py are replaced here by ones that fail, so a test of this tier cannot reach for them."""

from datetime import timedelta

import pytest

from matching.engine import DirectoryIndex, Weights
from matching.service import MatchingService, OfferPolicy
from tests.service.matching.fakes import FakeHistory, FakePlans
from tests.service.matching.tier import FakeClock, infra, namespace

__all__ = ["infra", "namespace"]  # the tier's failing stand-ins for the infrastructure fixtures

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

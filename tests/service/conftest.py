"""The service tier: intake's use cases and its whole HTTP app (middleware, auth, routes, problem handlers) run in
this process against the in-memory stores of `fakes.py` (matching's and notifications' use cases likewise, in
their subpackages). The `infra` and `namespace` fixtures of tests/conftest.py are replaced by ones that fail, so
no test of the tier can reach for Kafka or a database."""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from intake.app import create_app
from intake.components import Intake
from intake.settings import IntakeSettings
from tests.service.clock import FakeClock
from tests.service.fakes import World, fake_intake
from tests.support import Infra, Namespace


@pytest.fixture
def settings() -> IntakeSettings:
    # No service to sample: the console's history loop runs but reads nothing.
    return IntakeSettings(service_urls={})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def world(settings: IntakeSettings, clock: FakeClock) -> World:
    return fake_intake(settings, clock)


@pytest.fixture
async def app(settings: IntakeSettings, world: World) -> AsyncIterator[FastAPI]:
    async def build(_: IntakeSettings) -> Intake:
        return world.intake

    app = create_app(settings, build=build)
    # httpx's ASGI transport sends no lifespan events: the app's own lifespan (and the console's) runs here.
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake.test") as client:
        yield client


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    pytest.fail("the service tier runs on in-memory fakes: no Kafka, no database")
    yield  # pragma: no cover


@pytest.fixture
def namespace() -> Namespace:
    pytest.fail("the service tier runs on in-memory fakes: no topics, no databases")

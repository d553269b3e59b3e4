"""The service tier: intake's use cases and its whole HTTP app (middleware, auth, routes, problem handlers) run in
this process against the in-memory stores of `fakes.py`. Nothing here asks for the `infra` or `namespace`
fixtures, so no broker or database is needed or touched."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from intake.app import create_app
from intake.components import Intake
from intake.settings import IntakeSettings
from tests.service.fakes import World, fake_intake


class Clock:
    """The use cases' clock: it stands still unless a test moves it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def settings() -> IntakeSettings:
    # No service to sample: the console's history loop runs but reads nothing.
    return IntakeSettings(service_urls={})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(settings: IntakeSettings, clock: Clock) -> World:
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

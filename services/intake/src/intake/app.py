"""The intake HTTP app: routes, console, problem handlers, idempotency middleware and health, around an `Intake`
that `build` wires when the app starts (the real adapters by default; the service tests pass fakes)."""

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from goglobal_shared.health import Check, health_router
from goglobal_shared.http_observability import NATIVE_TELEMETRY_OFF
from goglobal_shared.problems import install_problem_handlers
from intake.api import openapi
from intake.api.errors import install_body_handlers, install_service_error_handler
from intake.api.middleware import BodyLimitAndIdempotency
from intake.api.routes import (
    api_keys,
    dead_letters,
    deliveries,
    enterprises,
    inbox,
    partners,
    referrals,
    service_requests,
)
from intake.auth.keys import Principal
from intake.bootstrap import bootstrap
from intake.components import Idempotency, Intake, utcnow
from intake.console.routes import router as console_router
from intake.settings import IntakeSettings

DESCRIPTION = """
The only HTTP entry of the GoGlobal Referral Network, for enterprises, partner organisations and operators.

* Authenticate with an API key: `Authorization: Bearer gg_...` (enterprises get theirs on registration;
  operators issue partner keys; `goglobal operators create-key` makes the first operator key).
* Every POST accepts an `Idempotency-Key` header: a retry with the same key and body returns the first answer
  and creates nothing new; the same key with another body is refused with 422.
* Errors are RFC 9457 problem details (`application/problem+json`); a 422 names every field it refuses, and
  why, in `errors`. A body that is not valid JSON is refused with 400 (naming the line and column), one sent
  with another content type than `application/json` with 415.
"""


Build = Callable[[IntakeSettings], Awaitable[Intake]]


def create_app(settings: IntakeSettings, build: Build = bootstrap) -> FastAPI:
    """Nothing is connected before the app starts: `build` runs in its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        intake = await build(settings)
        app.state.intake = intake
        try:
            yield
        finally:
            await intake.stop()

    app = FastAPI(
        title="GoGlobal Referral Network — intake API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=NATIVE_TELEMETRY_OFF,
        docs_url=None,  # served by openapi.serve_docs, without a CDN
        redoc_url=None,
    )
    install_problem_handlers(app)
    install_body_handlers(app)
    install_service_error_handler(app)
    openapi.serve_docs(app)
    for module in (enterprises, service_requests, referrals, partners, api_keys, inbox, deliveries, dead_letters):
        app.include_router(module.router)
    app.include_router(console_router)

    def checks() -> Mapping[str, Check]:
        intake: Intake = app.state.intake
        return intake.runtime.checks()

    def idempotency() -> Idempotency:
        intake: Intake = app.state.intake
        return intake.idempotency

    async def authenticate(presented: str) -> Principal | None:
        intake: Intake = app.state.intake
        return await intake.api_keys.authenticate(presented, utcnow())

    # Requests go to the outbox, so a Kafka outage delays their events but must not turn enterprises away.
    app.include_router(health_router(checks, advisory=frozenset({"kafka", "consumer"})))
    app.add_middleware(
        BodyLimitAndIdempotency,
        max_body_bytes=settings.max_body_bytes,
        repository=idempotency,
        clock=utcnow,
        authenticate=authenticate,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, completed with what the middleware and the error handlers answer (api/openapi.py)."""
    if app.openapi_schema:
        return app.openapi_schema
    app.openapi_schema = openapi.build(app)
    return app.openapi_schema

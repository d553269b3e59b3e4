from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI

from goglobal_shared.health import Check, health_router
from goglobal_shared.problems import install_problem_handlers
from intake.api.routes import referrals
from intake.bootstrap import Intake, bootstrap
from intake.settings import IntakeSettings


def create_app(settings: IntakeSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        intake = await bootstrap(settings)
        app.state.intake = intake
        try:
            yield
        finally:
            await intake.stop()

    app = FastAPI(
        title="GoGlobal Referral Network — intake API",
        version="0.1.0",
        summary="Enterprises submit referrals; partners and operators act on them.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(referrals.router)

    def checks() -> Mapping[str, Check]:
        intake: Intake = app.state.intake
        return intake.runtime.checks()

    app.include_router(health_router(checks))
    return app

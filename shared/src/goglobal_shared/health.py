"""/healthz and /readyz: liveness says the process runs; readiness names each dependency that fails."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, Field

from goglobal_shared.http_observability import NATIVE_TELEMETRY_OFF

Check = Callable[[], Awaitable[None]]  # raises when the dependency is not usable
CHECK_TIMEOUT_S = 2.0


class Readiness(BaseModel):
    """The /readyz answer, with 200 (ready) or 503 (not ready, because a check that is not advisory failed)."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(
        description="each dependency: `ok`, or why it failed",
        examples=[{"database": "ok", "kafka": "ok", "consumer": "ok"}],
    )


async def _run_check(check: Check) -> str | None:
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    return None


def health_router(checks: Callable[[], Mapping[str, Check]], advisory: frozenset[str] = frozenset()) -> APIRouter:
    """`advisory` names checks that are reported but do not make the service unready: what it can serve without
    (intake takes requests into its outbox while Kafka is away; taking it out of the load balancer then would
    refuse requests it could keep)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process is running")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: every dependency answers",
        response_model=None,
        responses={
            200: {
                "model": Readiness,
                "description": "Ready: every check passed, but perhaps an advisory one (its failure is in `checks`)",
            },
            503: {"model": Readiness, "description": "Not ready: `checks` names each dependency that failed, and why"},
        },
    )
    async def readyz() -> JSONResponse:
        named = dict(checks())
        results = await asyncio.gather(*(_run_check(c) for c in named.values()))
        report = {name: ("ok" if err is None else err) for name, err in zip(named, results, strict=True)}
        ready = all(err is None for name, err in zip(named, results, strict=True) if name not in advisory)
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": report}, status_code=200 if ready else 503
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router


def health_app(checks: Callable[[], Mapping[str, Check]]) -> FastAPI:
    app = FastAPI(title="health", openapi_url=None, docs_url=None, redoc_url=None, telemetry=NATIVE_TELEMETRY_OFF)
    app.include_router(health_router(checks))
    return app

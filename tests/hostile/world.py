"""A running system for the hostile tests: intake + matching + notifications as real processes on the real broker
and database, with the operator key, and helpers for partners, enterprises and requests through the public API."""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests import factories
from tests.integration.intake_helpers import (
    Enterprise,
    bearer,
    module_namespace,
    register_enterprise,
    start_services,
    stop_services,
)
from tests.support import Infra, Namespace, ServiceProcess, discard, eventually

SERVICES = ("intake", "matching", "notifications")


def examples(default: int) -> int:
    """How many examples each property test draws: `GOGLOBAL_HOSTILE_EXAMPLES` for deeper runs."""
    raw = os.environ.get("GOGLOBAL_HOSTILE_EXAMPLES", "")
    return max(1, int(raw)) if raw.strip().isdigit() else default


def key_id(api_key: str) -> str:
    """The id part of `gg_<key id>_<secret>`."""
    return api_key.split("_")[1]


@dataclass
class Stack:
    namespace: Namespace
    services: dict[str, ServiceProcess]
    http: httpx.AsyncClient  # base URL: the first service (intake, unless a test runs without it)
    operator: str

    @property
    def intake(self) -> str:
        return self.services["intake"].url

    def alive(self) -> dict[str, int | None]:
        """Each service's exit code, None while it runs."""
        return {name: (s.proc.poll() if s.proc is not None else -1) for name, s in self.services.items()}

    def assert_running(self, *names: str) -> None:
        """Fails at once (with the logs) when one of `names` (default: every service) has exited."""
        dead = {n: code for n, code in self.alive().items() if code is not None and (not names or n in names)}
        assert not dead, f"services exited: {dead}\n{self.logs()}"

    def logs(self, lines: int = 15) -> str:
        return "\n".join(f"--- {name}\n{s.log_tail(lines)}" for name, s in self.services.items())

    async def put_partner(self, partner_id: str, categories: list[str], markets: list[str], **extra: Any) -> None:
        body = factories.partner(partner_id, categories, markets, **extra)
        del body["id"]
        answer = await self.http.put(f"/v1/partners/{partner_id}", json=body, headers=bearer(self.operator))
        assert answer.status_code in (200, 201), answer.text

    async def partner_key(self, partner_id: str) -> str:
        answer = await self.http.post(
            f"/v1/partners/{partner_id}/api-keys", json={"name": "hostile"}, headers=bearer(self.operator)
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["api_key"])

    async def matching_knows(self, partner_id: str, deadline_s: float = 60) -> None:
        matching = self.services["matching"].url

        async def known() -> bool:
            return (await self.http.get(f"{matching}/internal/directory/{partner_id}")).status_code == 200

        await eventually(known, f"{partner_id} in matching's directory", deadline_s)

    async def enterprise(self, email: str = "li.wei@brightsolar.example.cn") -> Enterprise:
        return await register_enterprise(self.http, consent=True, contact_email=email)

    async def submit(self, enterprise: Enterprise, needs: list[dict[str, Any]]) -> dict[str, Any]:
        answer = await self.http.post("/v1/service-requests", json={"needs": needs}, headers=enterprise.auth)
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def statuses(self, request_id: str) -> list[str]:
        answer = await self.http.get(f"/v1/service-requests/{request_id}", headers=bearer(self.operator))
        assert answer.status_code == 200, answer.text
        return [str(r["status"]) for r in answer.json()["referrals"]]

    async def all_offered(self, request_ids: list[str], deadline_s: float = 60) -> None:
        async def offered() -> bool:
            for request_id in request_ids:
                if any(s != "offered" for s in await self.statuses(request_id)):
                    return False
            return True

        await eventually(offered, f"every referral of {len(request_ids)} requests to be offered", deadline_s)

    async def ready(self) -> dict[str, int]:
        """Each service's /readyz status."""
        answers = {}
        for name, service in self.services.items():
            try:
                answers[name] = (await self.http.get(f"{service.url}/readyz", timeout=5)).status_code
            except httpx.HTTPError:
                answers[name] = 0
        return answers


@contextlib.asynccontextmanager
async def running_stack(
    infra: Infra,
    log_dir: Path,
    extra_env: Mapping[str, dict[str, str]] | None = None,
    names: tuple[str, ...] = SERVICES,
) -> AsyncIterator[Stack]:
    namespace = module_namespace(infra)
    services = await start_services(list(names), namespace, log_dir, extra_env)
    try:
        operator = await factories.operator_key(namespace)
        async with httpx.AsyncClient(base_url=services[names[0]].url, timeout=30) as http:
            yield Stack(namespace, services, http, operator)
    finally:
        stop_services(services)
        await discard(namespace)


async def start_all(exits: contextlib.AsyncExitStack, *stacks: AbstractAsyncContextManager[Stack]) -> list[Stack]:
    """Starts the stacks at once; `exits` stops them all, including the ones that started when another failed."""
    started = await asyncio.gather(*(exits.enter_async_context(s) for s in stacks), return_exceptions=True)
    for outcome in started:
        if isinstance(outcome, BaseException):
            raise outcome
    return [s for s in started if isinstance(s, Stack)]

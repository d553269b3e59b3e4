"""Shared by the intake API tests: services started once per module, keys, registered enterprises."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests import factories
from tests.support import Infra, Namespace, ServiceProcess

PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "errors"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def module_namespace(infra: Infra) -> Namespace:
    """Like the `namespace` fixture, for a world shared by every test of one module."""
    tag = uuid.uuid4().hex[:10]
    return Namespace(infra, topic_prefix=f"test-{tag}.", database_prefix=f"test_{tag}")


async def start_services(
    names: list[str], namespace: Namespace, log_dir: Path, extra_env: Mapping[str, dict[str, str]] | None = None
) -> dict[str, ServiceProcess]:
    services = {name: ServiceProcess(name, namespace, log_dir, (extra_env or {}).get(name)) for name in names}
    for service in services.values():
        service.start()
    try:
        for service in services.values():
            await service.wait_ready()
    except BaseException:
        stop_services(services)
        raise
    return services


def stop_services(services: Mapping[str, ServiceProcess]) -> None:
    for service in services.values():
        if service.proc is not None and service.proc.poll() is None:
            try:
                service.terminate(timeout_s=10)
            except Exception:
                service.kill()


@dataclass(frozen=True)
class Enterprise:
    id: str
    key: str
    key_id: str
    profile: dict[str, Any]

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.key)


async def register_enterprise(http: httpx.AsyncClient, consent: bool, contact_email: str) -> Enterprise:
    profile = factories.enterprise(consent=consent)
    profile["contact"] = {**profile["contact"], "email": contact_email}
    answer = await http.post("/v1/enterprises", json=profile)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return Enterprise(body["enterprise"]["id"], body["api_key"]["api_key"], body["api_key"]["key_id"], profile)


def assert_problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    """`answer` is an RFC 9457 problem with `status`, and carries nothing but problem fields."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON), answer.headers
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert set(body) <= PROBLEM_FIELDS, f"a problem must not carry the object: {body}"
    if status == 401:
        assert answer.headers.get("www-authenticate") == "Bearer"
    return body

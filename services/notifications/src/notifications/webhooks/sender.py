"""The webhooks port (`notifications.ports.Webhooks`) over HTTP: refuse a target a webhook must never reach, POST
without following redirects, time it."""

import asyncio
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from goglobal_shared.webhook_targets import webhook_url_problem
from notifications.errors import TargetRefused
from notifications.webhooks.policy import AttemptResult


async def check_target(url: str, allow_private: bool) -> None:
    """The URL's own rules, then every address its host resolves to now (a public name may point inside)."""
    problem = webhook_url_problem(url, allow_private)
    if problem:
        raise TargetRefused(problem)
    if allow_private:
        return
    parts = urlsplit(url)
    assert parts.hostname is not None
    infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443)
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if not address.is_global:
            raise TargetRefused(f"{parts.hostname} resolves to a non-public address ({address})")


@dataclass
class HttpWebhooks:
    client: httpx.AsyncClient
    allow_private_targets: bool = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """TargetRefused for a target that must not be reached; a name that did not resolve is no answer (often a
        passing DNS failure, so worth another try)."""
        try:
            await check_target(url, self.allow_private_targets)
        except OSError as exc:
            return AttemptResult(None, 0, str(exc)[:500])
        started = time.monotonic()
        try:
            response = await self.client.post(url, content=body, headers=dict(headers))
        except httpx.HTTPError as exc:
            return AttemptResult(None, _ms(started), f"{type(exc).__name__}: {exc}"[:500])
        error = None if response.is_success else f"HTTP {response.status_code}"
        return AttemptResult(response.status_code, _ms(started), error, response.headers.get("retry-after"))

    async def aclose(self) -> None:
        await self.client.aclose()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def make_client(timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

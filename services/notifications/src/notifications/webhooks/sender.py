"""One webhook attempt: sign per Standard Webhooks, POST without following redirects, time it."""

import asyncio
import ipaddress
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from goglobal_contract.envelope import STRUCTURED_CONTENT_TYPE
from goglobal_shared.webhook_targets import webhook_url_problem

USER_AGENT = "GoGlobal-Webhooks/1.0 (+https://goglobal.hk/docs/partners)"


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int
    error: str | None
    retry_after: str | None = None


class TargetRefused(ValueError):
    """The URL points somewhere a webhook must never go (loopback, private ranges) unless allowed."""


def signature_header(secrets: list[str], message_id: str, timestamp: datetime, body: bytes) -> str:
    """Space-separated `v1,<sig>` entries: during a rotation both the old and the new secret sign."""
    return " ".join(Webhook(secret).sign(message_id, timestamp, body.decode()) for secret in secrets)


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


async def attempt(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    message_id: str,
    secrets: list[str],
    now: datetime,
    extra_headers: dict[str, str] | None = None,
) -> AttemptResult:
    headers = {
        "content-type": STRUCTURED_CONTENT_TYPE,
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature_header(secrets, message_id, now, body),
        **(extra_headers or {}),
    }
    started = time.monotonic()
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return AttemptResult(None, _ms(started), f"{type(exc).__name__}: {exc}"[:500])
    error = None if response.is_success else f"HTTP {response.status_code}"
    return AttemptResult(response.status_code, _ms(started), error, response.headers.get("retry-after"))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def make_client(timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

"""A partner's webhook endpoint for tests: a real HTTP server on loopback that verifies Standard Webhooks
signatures, can be told to fail, and counts what it saw (duplicates at transport included)."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import eventually, free_port


@dataclass
class Receiver:
    secrets: list[str] = field(default_factory=list)
    failing: int | None = None  # answer this status instead of handling
    retry_after_s: int | None = None  # with `failing`: ask the sender to wait this long (`Retry-After`)
    hang_s: float = 0.0  # wait this long before answering (to make the sender time out)
    received: Counter[str] = field(default_factory=Counter)  # webhook-id -> times seen (transport level)
    handled: dict[str, dict[str, Any]] = field(default_factory=dict)  # webhook-id -> the CloudEvent, once
    rejected: int = 0
    signatures: list[str] = field(default_factory=list)
    traceparents: dict[str, str] = field(default_factory=dict)  # webhook-id -> traceparent header
    port: int = field(default_factory=free_port)
    on_handled: Callable[[dict[str, Any]], None] | None = None  # the partner's system, told once per event

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        message_id = request.headers.get("webhook-id", "")
        self.received[message_id] += 1
        self.signatures.append(request.headers.get("webhook-signature", ""))
        if "traceparent" in request.headers:
            self.traceparents[message_id] = request.headers["traceparent"]
        if self.hang_s:
            await asyncio.sleep(self.hang_s)  # a slow endpoint, on purpose
            return Response(status_code=504)
        if self.failing is not None:
            asked = {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}
            return Response(status_code=self.failing, headers=asked)
        event = self.verify(body, dict(request.headers))
        if event is None:
            self.rejected += 1
            return Response(status_code=401)
        if message_id not in self.handled:  # dedupe on the id
            self.handled[message_id] = event
            if self.on_handled is not None:
                self.on_handled(event)
        return Response(status_code=204)

    def verify(self, body: bytes, headers: dict[str, str]) -> dict[str, Any] | None:
        for secret in self.secrets:
            with contextlib.suppress(WebhookVerificationError):
                event: dict[str, Any] = Webhook(secret).verify(body, headers)
                return event
        return None


def _started(server: uvicorn.Server) -> Callable[[], Awaitable[bool]]:
    async def started() -> bool:
        return bool(server.started)

    return started


@contextlib.asynccontextmanager
async def running(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = Starlette(routes=[Route("/hooks", receiver.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=receiver.port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(_started(server), f"the test webhook receiver to listen on {receiver.url}", 10, interval_s=0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task

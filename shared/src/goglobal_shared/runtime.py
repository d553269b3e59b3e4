"""Running a service: JSON logs, uvicorn (which turns SIGTERM/SIGINT into a graceful lifespan shutdown),
and background loops that stop cleanly, or stop the process when they die."""

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import uvicorn
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from pymongo import AsyncMongoClient

from goglobal_shared import tracing
from goglobal_shared.consumer import ConsumerStatus, EventConsumer, make_consumer
from goglobal_shared.health import Check, health_router
from goglobal_shared.http_observability import NATIVE_TELEMETRY_OFF, ObservabilityMiddleware
from goglobal_shared.kafka import RenewingProducer, ensure_topics, make_producer
from goglobal_shared.logs import configure
from goglobal_shared.mongo import Document, make_client, ping
from goglobal_shared.sampler import MetricsSampler, Sample, consumer_lag, outbox
from goglobal_shared.settings import ServiceSettings, dead_letter_topic
from goglobal_shared.store.outbox import OutboxRelay

log = logging.getLogger(__name__)
STALE_POLL_S = 30.0
EXIT_LOOP_DIED = 70


class _ExitStatus:
    """What the process exits with once uvicorn has shut down: 0 after SIGTERM/SIGINT, non-zero if a loop died."""

    code = 0

    @classmethod
    def exit(cls, *_: object) -> None:
        # uvicorn re-raises the signal it caught after a graceful shutdown; end with a status instead.
        sys.exit(cls.code)


class Stoppable(Protocol):
    def stop(self) -> None: ...


class BackgroundLoops:
    """Owns a service's long-running loops (each a `goglobal_shared.periodic` loop: its stop, status, error policy
    and readiness check live there). A loop that crashes takes the process down (SIGTERM to self), so an
    orchestrator restarts it instead of leaving a half-working replica: a `PeriodicTask` retries a failed pass
    itself, so what ends here is a consumer loop whose poll failed, or a bug."""

    def __init__(self) -> None:
        self._loops: list[tuple[Stoppable, asyncio.Task[None]]] = []

    def start(self, owner: Stoppable, loop: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(loop, name=name)
        task.add_done_callback(self._on_done)
        self._loops.append((owner, task))

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("background loop %s died", task.get_name(), exc_info=task.exception())
        _ExitStatus.code = EXIT_LOOP_DIED
        os.kill(os.getpid(), signal.SIGTERM)

    async def stop(self, timeout_s: float) -> None:
        for owner, _ in self._loops:
            owner.stop()
        tasks = [task for _, task in self._loops]
        _done, pending = await asyncio.wait(tasks, timeout=timeout_s) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        self._loops.clear()


def run_service(app: FastAPI, settings: ServiceSettings) -> None:
    configure(settings.service_name, settings.log_level)
    tracing.configure(settings.service_name)
    app.add_middleware(ObservabilityMiddleware)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _ExitStatus.exit)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        # libuv's loop and the C HTTP parser: a third less CPU per request than asyncio's loop and h11.
        loop="uvloop",
        http="httptools",
    )


async def kafka_reachable(client: AIOKafkaClient) -> None:
    await client.fetch_all_metadata()


def consumer_healthy(consumer: AIOKafkaConsumer, status: ConsumerStatus) -> None:
    if not status.running:
        raise RuntimeError("consumer loop is not running")
    if time.monotonic() - status.last_poll_monotonic > STALE_POLL_S:
        raise RuntimeError(f"no poll for more than {STALE_POLL_S:.0f}s")
    # No partition assigned is fine: a group with more members than partitions keeps the extra ones idle,
    # and an intake replica without partitions still serves HTTP.


@dataclass
class Connections:
    mongo: AsyncMongoClient[Document]
    producer: AIOKafkaProducer
    consumer: AIOKafkaConsumer


@dataclass
class ServiceRuntime:
    """The adapters every service holds: database, producer, consumer loop, optional outbox relay."""

    settings: ServiceSettings
    connections: Connections
    events: EventConsumer
    relay: OutboxRelay | None
    extra_checks: Mapping[str, Check] = field(default_factory=dict)
    loops: BackgroundLoops = field(default_factory=BackgroundLoops)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def on_stop(self, close: Callable[[], Awaitable[None]]) -> None:
        """Something else to close after the loops stopped (extra consumers, HTTP clients)."""
        self._closers.append(close)

    def start(self, samples: Sequence[Sample] = ()) -> None:
        """Starts the consumer, the relay, and the metrics sampler (lag, outbox, plus the service's `samples`)."""
        if self.relay is not None:
            self.loops.start(self.relay, self.relay.run(), "outbox-relay")
        self.loops.start(self.events, self.events.run(), "event-consumer")
        standard = [consumer_lag(self.connections.consumer)]
        if self.relay is not None:
            standard.append(outbox(self.relay))
        sampler = MetricsSampler([*standard, *samples])
        self.loops.start(sampler, sampler.run(), "metrics-sampler")

    def checks(self) -> Mapping[str, Check]:
        async def database() -> None:
            await ping(self.connections.mongo[self.settings.database])

        async def kafka() -> None:
            await kafka_reachable(self.connections.producer.client)

        async def consumer() -> None:
            consumer_healthy(self.connections.consumer, self.events.status)

        named: dict[str, Check] = {"database": database, "kafka": kafka, "consumer": consumer}
        if self.relay is not None:
            named["outbox_relay"] = self.relay.loop.readiness()
        return {**named, **self.extra_checks}

    async def stop(self) -> None:
        """Graceful: loops finish the record in hand (its offset is committed), then clients close."""
        await self.loops.stop(self.settings.shutdown_timeout_s)
        for close in self._closers:
            await close()
        await self.connections.consumer.stop()
        await self.connections.producer.stop()
        await self.connections.mongo.close()


class HasRuntime(Protocol):
    runtime: ServiceRuntime

    async def stop(self) -> None: ...


def worker_app(
    title: str,
    settings: ServiceSettings,
    bootstrap: Callable[[], Awaitable[HasRuntime]],
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The HTTP face of a worker: health endpoints (and any internal `routers`); the service is wired in the
    lifespan and reachable as `request.app.state.service`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await bootstrap()
        app.state.service = service
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None, telemetry=NATIVE_TELEMETRY_OFF)

    def checks() -> Mapping[str, Check]:
        service: HasRuntime = app.state.service
        return service.runtime.checks()

    app.include_router(health_router(checks))
    for router in routers:
        app.include_router(router)
    return app


async def connect(settings: ServiceSettings, topics: list[str], produces: list[str] | None = None) -> Connections:
    """Creates the topics (consumed ones with their dead-letter topics) and starts the database, producer
    and consumer clients; the consumer subscribes to `topics` in the service's own group."""
    bootstrap, security = settings.kafka_bootstrap_servers, settings.kafka_security
    all_topics = [*topics, *(dead_letter_topic(t) for t in topics), *(produces or [])]
    await ensure_topics(bootstrap, all_topics, configs=settings.topic_configs, security=security)
    mongo = make_client(settings.mongodb_uri, settings.service_name)
    producer = RenewingProducer(lambda: make_producer(bootstrap, client_id=settings.service_name, security=security))
    await producer.start()
    consumer = make_consumer(bootstrap, settings.consumer_group, topics, settings.service_name, security)
    await consumer.start()
    return Connections(mongo, producer, consumer)

"""Helpers for integration and end-to-end tests: polling with a deadline, free ports, service processes."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "deploy" / "local"))
import ports as ports  # deploy/local/ports.py, re-exported: the local stack's ports and what derives from them


@dataclass(frozen=True)
class Infra:
    kafka: str
    mongodb_uri: str
    native: bool = False  # the local stack of deploy/local/infra.py, which tests may stop and start


@dataclass(frozen=True)
class Namespace:
    """Isolation for one test: topics under `topic_prefix`, databases named `<database_prefix>_<service>`."""

    infra: Infra
    topic_prefix: str
    database_prefix: str

    def env(self, service: str, http_port: int) -> dict[str, str]:
        return {
            "GOGLOBAL_KAFKA_BOOTSTRAP_SERVERS": self.infra.kafka,
            "GOGLOBAL_MONGODB_URI": self.infra.mongodb_uri,
            "GOGLOBAL_MONGODB_DATABASE": self.database(service),
            "GOGLOBAL_TOPIC_PREFIX": self.topic_prefix,
            "GOGLOBAL_HTTP_PORT": str(http_port),
            "GOGLOBAL_LOG_LEVEL": "INFO",
            "GOGLOBAL_WEBHOOK_MASTER_KEY": TEST_WEBHOOK_MASTER_KEY,
            "GOGLOBAL_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",  # test receivers listen on loopback
        }

    def database(self, service: str) -> str:
        return f"{self.database_prefix}_{service}"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


REPO = Path(__file__).resolve().parents[1]
TEST_WEBHOOK_MASTER_KEY = "test-only-master-key-0123456789abcdef"
T = TypeVar("T")
DEFAULT_DEADLINE_S = 30.0
READY_DEADLINE_S = 180.0  # a service's start on a machine at a load average of 10 (measured: up to ~70 s)


def _time_scale() -> float:
    """`GOGLOBAL_TEST_TIME_SCALE` (default 1) multiplies every deadline of the suite: raise it on a slow or busy
    machine rather than editing a test. Deadlines only bound a wait; nothing waits for them to pass."""
    raw = os.environ.get("GOGLOBAL_TEST_TIME_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"GOGLOBAL_TEST_TIME_SCALE must be a number, not {raw!r}") from None
    if not 0.1 <= scale <= 100:
        raise ValueError(f"GOGLOBAL_TEST_TIME_SCALE must be between 0.1 and 100, not {scale}")
    return scale


TIME_SCALE = _time_scale()


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, deadline_s: float = DEFAULT_DEADLINE_S, interval_s: float = 0.1
) -> T:
    """Polls `probe` until it returns something other than None/False; fails with `what` at the deadline (scaled
    by `GOGLOBAL_TEST_TIME_SCALE`)."""
    deadline_s *= TIME_SCALE
    end = time.monotonic() + deadline_s
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s:.0f}s waiting for {what}")
        await asyncio.sleep(interval_s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    """One service started as `python -m <name>`, exactly as in production, logging to a file."""

    def __init__(self, name: str, namespace: Namespace, log_dir: Path, extra_env: dict[str, str] | None = None):
        self.name = name
        self.port = free_port()
        self.env = {**os.environ, **namespace.env(name, self.port), **(extra_env or {})}
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServiceProcess":
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", self.name], env=self.env, stdout=log, stderr=log)
        return self

    async def wait_ready(self, deadline_s: float = READY_DEADLINE_S) -> None:
        """Until /readyz answers 200: READY_DEADLINE_S (times GOGLOBAL_TEST_TIME_SCALE), failing with what it
        waited for, its last answer and the log's tail; at once, with the log, if the process exits."""
        last = "no answer yet"

        async def ready() -> bool:
            nonlocal last
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    answer = await client.get(f"{self.url}/readyz")
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                return False
            last = f"{answer.status_code} {answer.text[:300]}"
            return answer.status_code == 200

        try:
            await eventually(ready, f"{self.name} to answer 200 on {self.url}/readyz", deadline_s, interval_s=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc} (last: {last})\n{self.log_tail()}") from None

    def terminate(self, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return "\n".join(text[-lines:])


def mark_tier(items: list[pytest.Item], conftest: str, *marks: pytest.MarkDecorator) -> None:
    """For a tier's `pytest_collection_modifyitems`: every test under the folder of `conftest` gets `marks`."""
    tier = Path(conftest).resolve().parent
    for item in items:
        if item.path.is_relative_to(tier):
            for mark in marks:
                item.add_marker(mark)


def no_infrastructure(tier: str) -> Callable[[], Infra]:
    """For a tier that runs without Kafka and a database: its `infra` fixture, which refuses with the reason."""

    @pytest.fixture(scope="session", name="infra")
    def refused() -> Infra:
        raise pytest.UsageError(
            f"the {tier} tier runs without Kafka and a database: a test that needs them belongs in tests/integration"
        )

    return refused


def native_infra_handle() -> Infra:
    """The native stack's addresses, from GOGLOBAL_KAFKA_PORT and GOGLOBAL_MONGO_PORT (deploy/local/ports.py)."""
    stack = ports.from_env()
    return Infra(stack.kafka_bootstrap_servers, stack.mongodb_uri, native=True)


def native_infra(*args: str) -> None:
    """Runs `deploy/local/infra.py` (up, down; optionally only kafka or ferretdb)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy/local/infra.py"), *args], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"infra.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


async def discard(namespace: Namespace) -> None:
    """Deletes a test's topics and databases, so the shared broker and database stay small and fast."""
    from aiokafka.admin import AIOKafkaAdminClient
    from pymongo import AsyncMongoClient

    admin = AIOKafkaAdminClient(bootstrap_servers=namespace.infra.kafka)
    try:
        await admin.start()
        topics = [t for t in await admin.list_topics() if t.startswith(namespace.topic_prefix)]
        if topics:
            await admin.delete_topics(topics)
    except Exception:  # cleanup is best effort: a test that stopped the broker must not fail here
        pass
    finally:
        await admin.close()
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        namespace.infra.mongodb_uri, serverSelectionTimeoutMS=5000
    )
    try:
        for name in await mongo.list_database_names():
            if name.startswith(namespace.database_prefix):
                await mongo.drop_database(name)
    except Exception:
        pass
    finally:
        await mongo.close()

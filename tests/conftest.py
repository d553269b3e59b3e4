"""Where the tests' Kafka broker and database come from, in this order:

1. `KAFKA_BOOTSTRAP_SERVERS` / `MONGODB_URI` when both are set;
2. with `GOGLOBAL_TEST_INFRA=docker` and a Docker engine answering: testcontainers (Kafka + MongoDB 7);
3. otherwise the native stack of `deploy/local/infra.py` (Kafka KRaft + nx-27017), started once if needed.

Every test that touches them gets its own topic prefix and database name, so tests never see each
other's data.
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support import TEST_WEBHOOK_MASTER_KEY, Infra, Namespace, discard, native_infra, native_infra_handle

# Settings objects built inside the test process (OpenAPI, settings tests) need the one secret without a default.
os.environ.setdefault("GOGLOBAL_WEBHOOK_MASTER_KEY", TEST_WEBHOOK_MASTER_KEY)


def _docker_infra() -> Iterator[Infra]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    with KafkaContainer("apache/kafka:4.1.1") as kafka, MongoDbContainer("mongo:7.0") as mongo:
        yield Infra(kafka.get_bootstrap_server(), mongo.get_connection_url())


def _native_infra() -> Infra:
    native_infra("up")
    return native_infra_handle()


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URI")
    if kafka and mongo:
        yield Infra(kafka, mongo)
    elif os.environ.get("GOGLOBAL_TEST_INFRA") == "docker":
        yield from _docker_infra()
    else:
        yield _native_infra()


@pytest.fixture
async def namespace(infra: Infra) -> AsyncIterator[Namespace]:
    tag = uuid.uuid4().hex[:10]
    space = Namespace(infra, topic_prefix=f"test-{tag}.", database_prefix=f"test_{tag}")
    yield space
    await discard(space)

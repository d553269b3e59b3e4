"""API keys without a database read per request, and revocation across replicas (issue 13, item 6).

Two intake replicas run as real processes on one namespace (same database, same topics) against the real broker
and database. Each keeps the keys it verified for at most `GOGLOBAL_API_KEY_CACHE_TTL_S` (5 s); a revocation is
written with its `api_key_revoked` event in one document write, relayed to `goglobal.api-keys`, and every replica
evicts the key. Times are measured, never slept: a poll records when the answer changed, and the test asserts it.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from pymongo import AsyncMongoClient

from goglobal_contract.envelope import Envelope, from_kafka
from goglobal_contract.events import ApiKeyRevoked
from goglobal_shared.kafka import make_producer, publish
from intake.adapters.api_key_repository import ApiKeyRepository
from intake.auth.cache import VerifiedKeyCache
from intake.auth.keys import Role, parse_key
from tests.integration.intake_helpers import assert_problem
from tests.support import Infra, Namespace, ServiceProcess, discard
from tests.world import Enterprise, bearer, new_namespace, register_enterprise, stop_services

TTL_S = 5.0
BROADCAST_BOUND_S = 1.0  # the decision: a revoked key is refused on every other replica within 1 s
POLL_INTERVAL_S = 0.01
GIVE_UP_S = 15.0  # only so that a broken build fails instead of hanging; the assertions are on measured times


@dataclass(frozen=True)
class Replicas:
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    namespace: Namespace


@pytest.fixture(scope="module")
async def replicas(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Replicas]:
    """Two intake replicas for the module; every test uses keys of its own."""
    namespace = new_namespace(infra)
    env = {"GOGLOBAL_API_KEY_CACHE_TTL_S": str(TTL_S)}
    processes = [ServiceProcess("intake", namespace, tmp_path_factory.mktemp(f"intake-{n}"), env) for n in "ab"]
    try:
        # One after the other: the second must not race the first creating topics and indexes.
        for process in processes:
            process.start()
            await process.wait_ready()
        async with (
            httpx.AsyncClient(base_url=processes[0].url, timeout=10) as a,
            httpx.AsyncClient(base_url=processes[1].url, timeout=10) as b,
        ):
            yield Replicas(a, b, namespace)
    finally:
        stop_services(processes)
        await discard(namespace)


async def works(http: httpx.AsyncClient, key: str) -> bool:
    answer = await http.get("/v1/api-keys", headers=bearer(key))
    if answer.status_code == 401:
        assert_problem(answer, 401)
        return False
    assert answer.status_code == 200, answer.text
    return True


async def refused_at(http: httpx.AsyncClient, key: str) -> float:
    """Polls until `key` is refused; the monotonic time of the first refusal."""
    give_up = time.monotonic() + GIVE_UP_S
    while await works(http, key):
        if time.monotonic() > give_up:
            raise AssertionError(f"the key still works after {GIVE_UP_S:.0f} s")
        await asyncio.sleep(POLL_INTERVAL_S)
    return time.monotonic()


async def test_a_key_revoked_on_one_replica_is_refused_by_another_within_a_second(replicas: Replicas) -> None:
    owner = await register_enterprise(replicas.a, consent=False, contact_email="ops@revocation.example.cn")
    first_use_on_b = time.monotonic()
    assert await works(replicas.b, owner.key)  # verified on B, and kept there for up to TTL_S
    assert await works(replicas.b, owner.key)
    assert await works(replicas.a, owner.key)

    answer = await replicas.a.delete(f"/v1/api-keys/{owner.key_id}", headers=owner.auth)  # revokes itself
    answered = time.monotonic()
    assert answer.status_code == 200 and answer.json()["revoked_at"], answer.text

    assert not await works(replicas.a, owner.key), "the replica that revoked the key must refuse it at once"
    refused = await refused_at(replicas.b, owner.key)
    assert refused - answered <= BROADCAST_BOUND_S, f"replica B refused the key {refused - answered:.3f} s later"
    # Well inside B's TTL: the broadcast evicted the key, not its expiry.
    assert refused - first_use_on_b < TTL_S, "too slow to tell the broadcast from the cache's expiry"
    await assert_published(replicas.namespace, owner)


async def test_a_revocation_that_never_arrives_holds_at_most_the_ttl(replicas: Replicas) -> None:
    """The bound when Kafka is away: the record is revoked in the database behind the replicas' back (no event)."""
    owner = await register_enterprise(replicas.a, consent=True, contact_email="it@lost-broadcast.example.cn")
    assert await works(replicas.b, owner.key)
    cached_by = time.monotonic()  # B's entry began its read before this
    await revoke_without_event(replicas.namespace, owner.key_id)

    served_from_cache = await works(replicas.b, owner.key)
    checked = time.monotonic()
    assert checked - cached_by < TTL_S
    assert served_from_cache, "B must not have read the database again within the TTL"
    assert not await works(replicas.a, owner.key), "A never verified the key: it reads the revoked record"

    refused = await refused_at(replicas.b, owner.key)
    assert refused - cached_by <= TTL_S + 0.5, f"B accepted the revoked key {refused - cached_by:.2f} s"


async def test_a_replica_applies_any_revocation_on_the_topic_and_dead_letters_junk(replicas: Replicas) -> None:
    """The follower trusts the topic, not the outbox: a revocation published by hand evicts the key (it is still
    valid in the database here, so only the event can have refused it), and a record that is not an event is
    dead-lettered without stopping the follower."""
    owner = await register_enterprise(replicas.a, consent=False, contact_email="sec@by-hand.example.cn")
    assert await works(replicas.b, owner.key)
    cached_by = time.monotonic()
    topic = replicas.namespace.topic("goglobal.api-keys")
    producer = make_producer(replicas.namespace.infra.kafka, client_id="test-revocations")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"not an event", key=owner.key_id.encode())
        await revoke_without_event(replicas.namespace, owner.key_id)
        assert await works(replicas.b, owner.key), "served from B's cache until the event arrives"
        revocation = ApiKeyRevoked(key_id=owner.key_id, revoked_at=datetime.now(UTC))
        await publish(producer, topic, Envelope.wrap(revocation, source="/tests", subject=owner.key_id))
        published = time.monotonic()
    finally:
        await producer.stop()
    refused = await refused_at(replicas.b, owner.key)
    assert refused - published <= BROADCAST_BOUND_S, f"replica B refused the key {refused - published:.3f} s later"
    assert refused - cached_by < TTL_S, "too slow to tell the broadcast from the cache's expiry"

    kafka = replicas.namespace.infra.kafka
    dead = await read_until(kafka, topic + ".dlq", lambda r: r.key == owner.key_id.encode(), at_least=2)
    assert {dict(r.headers)["dlq_original_topic"] for r in dead} == {topic.encode()}  # one copy per replica


async def read_until(
    kafka: str, topic: str, wanted: Callable[[ConsumerRecord[bytes, bytes]], bool], at_least: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """The records of `topic` (from its beginning) that `wanted` picks, once there are `at_least` of them."""
    reader = AIOKafkaConsumer(topic, bootstrap_servers=kafka, group_id=None, auto_offset_reset="earliest")
    await reader.start()
    try:
        give_up = time.monotonic() + GIVE_UP_S
        found: list[ConsumerRecord[bytes, bytes]] = []
        while len(found) < at_least and time.monotonic() < give_up:
            for records in (await reader.getmany(timeout_ms=500)).values():
                found += [r for r in records if wanted(r)]
        assert len(found) >= at_least, f"{topic}: {len(found)} of {at_least} records"
        return found
    finally:
        await reader.stop()


async def test_revoking_writes_the_state_and_its_event_together(namespace: Namespace) -> None:
    """Against the real database, without a relay: a verified key is cached and checked against its stored hash;
    the revoked record carries its queued event, the key leaves the cache, and a second revocation changes nothing
    and queues nothing."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(namespace.infra.mongodb_uri, tz_aware=True)
    try:
        cache = VerifiedKeyCache(TTL_S)
        keys = ApiKeyRepository(client[namespace.database("intake")]["api_keys"], cache=cache)
        await keys.ensure_indexes()
        issued = await keys.create(Role.PARTNER, "lexbridge-legal", "crm", datetime.now(UTC))
        principal = await keys.authenticate(issued.plaintext, datetime.now(UTC))
        assert principal is not None and principal.key_id == issued.key_id
        assert cache.get(issued.key_id) is not None, "a verified key is kept"
        key_id, secret = issued.key_id, secret_of(issued.plaintext)
        wrong = f"gg_{key_id}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
        assert await keys.authenticate(wrong, datetime.now(UTC)) is None, "checked against the cached hash"

        when = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        assert await keys.revoke(issued.key_id, when)
        assert cache.get(issued.key_id) is None, "the revoking replica forgets the key at once"
        assert not await keys.revoke(issued.key_id, datetime.now(UTC))
        assert not await keys.revoke("0000000000000000", datetime.now(UTC))

        doc = await keys.collection.find_one({"_id": issued.key_id})
        assert doc is not None
        assert doc["revoked_at"] == when
        assert (doc["outbox_count"], doc["version"]) == (1, 2)  # what the relay looks for; one write after insert
        [entry] = doc["outbox"].values()
        assert (entry["type"], entry["subject"]) == (ApiKeyRevoked.event_type, issued.key_id)
        assert entry["data"] == {"key_id": issued.key_id, "revoked_at": "2026-03-02T09:00:00Z"}
        assert secret_of(issued.plaintext) not in str(entry) and issued.secret_hash not in str(entry)
        assert await keys.authenticate(issued.plaintext, datetime.now(UTC)) is None
    finally:
        await client.close()


async def revoke_without_event(namespace: Namespace, key_id: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(namespace.infra.mongodb_uri, tz_aware=True)
    try:
        api_keys = client[namespace.database("intake")]["api_keys"]
        result = await api_keys.update_one({"_id": key_id}, {"$set": {"revoked_at": datetime.now(UTC)}})
        assert result.modified_count == 1
    finally:
        await client.close()


async def assert_published(namespace: Namespace, owner: Enterprise) -> None:
    """The revocation went out on the prefixed topic, keyed by the key id, with no secret in it."""

    def revokes(record: ConsumerRecord[bytes, bytes]) -> bool:
        event = from_kafka(record.key, record.value, list(record.headers)).data
        return isinstance(event, ApiKeyRevoked) and event.key_id == owner.key_id

    topic = namespace.topic("goglobal.api-keys")
    record = (await read_until(namespace.infra.kafka, topic, revokes, at_least=1))[0]
    assert record.key == owner.key_id.encode()
    assert secret_of(owner.key).encode() not in record.value


def secret_of(key: str) -> str:
    parsed = parse_key(key)
    assert parsed is not None
    return parsed[1]

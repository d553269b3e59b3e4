"""Hostile records on every topic a service consumes, with intake + matching + notifications running as real
processes on the real broker and database.

Fuzzed records (random bytes, JSON of the wrong shape, a wrong content type, each required `ce_*` header missing,
~900 KB payloads, unknown types, a key that is not the subject, tombstones, no key, non-UTF-8 headers, ...) are
made by copying a real record of the topic and breaking one thing (a seeded generator: `GOGLOBAL_HOSTILE_SEED`
replays a run). They go into `goglobal.referrals`, `goglobal.partners`, `goglobal.enterprises` and
`goglobal.notifications`, interleaved with real traffic through the API (requests submitted and offered, a partner
and an enterprise added). Then:

* every fuzzed record is in `<topic>.dlq`, once per consuming service, with `dlq_error_class`, `dlq_error_message`
  and `dlq_original_offset`, and operators see it in GET /v1/dead-letters;
* every service still runs and is ready;
* the real traffic went through: every good request is offered, the new partner gets offers, notifications knows
  the new enterprise.

Records that once crashed a service (a null header value, a partner event matching cannot use, a record at the
size limit) also have a regression test below, each naming its bug, on the very loop the services run
(DirectoryFollower, EventConsumer, DeadLetterCollector), in this process on the real broker and database. Metrics
labelled with made-up event types are checked on the running services.
"""

import asyncio
import contextlib
import json
import os
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from pymongo import AsyncMongoClient

from goglobal_contract.envelope import Envelope, to_kafka
from goglobal_contract.events import NeedDetails, ReferralSubmitted
from goglobal_shared.consumer import EventConsumer, RetryPolicy, make_consumer
from goglobal_shared.kafka import ensure_topics, make_producer
from goglobal_shared.store import ProcessedEvents
from intake.adapters.dead_letters import DeadLetterRepository
from intake.consumers.dead_letters import DeadLetterCollector
from matching.adapters.directory_follower import DirectoryFollower, make_follower_consumer
from matching.engine import DirectoryIndex
from tests import factories
from tests.support import Infra, Namespace, eventually
from tests.world import World, bearer, new_namespace, running_world

REFERRALS, PARTNERS = "goglobal.referrals", "goglobal.partners"
ENTERPRISES, NOTIFICATIONS = "goglobal.enterprises", "goglobal.notifications"
# How many services dead-letter a bad record of each topic (each consumes it in its own group).
CONSUMERS = {REFERRALS: 3, PARTNERS: 2, ENTERPRISES: 1, NOTIFICATIONS: 2}  # intake+matching+notifications, ...
HUGE_BYTES = 900_000
MAX_REQUEST_BYTES = 1_048_576  # the producers' max_request_size (aiokafka's default, used by every service)
SEED = int(os.environ.get("GOGLOBAL_HOSTILE_SEED") or random.SystemRandom().randrange(2**32))
DEADLINE_S = 60.0

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None
    headers: Headers

    def header(self, name: str) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)

    def with_header(self, name: str, value: bytes | None) -> "Record":
        return replace(self, headers=[*((n, v) for n, v in self.headers if n != name), (name, value)])

    def without(self, name: str) -> "Record":
        return replace(self, headers=[(n, v) for n, v in self.headers if n != name])


def record(envelope: Envelope) -> Record:
    kafka = to_kafka(envelope)
    return Record(kafka.key, kafka.value, list(kafka.headers))


def largest_value(key: bytes | None, headers: Headers) -> int:
    """The longest value a producer with the default max_request_size still sends with `key` and `headers`."""
    size = MAX_REQUEST_BYTES
    while DefaultRecordBatchBuilder.estimate_size_in_bytes(key, b"x" * size, headers) > MAX_REQUEST_BYTES:
        size -= 8
    return size


# -- the fuzzer -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fuzz:
    """One way to break a real record of a topic."""

    name: str
    make: Callable[[Record, random.Random], Record]
    topics: tuple[str, ...] = (REFERRALS, PARTNERS, ENTERPRISES, NOTIFICATIONS)
    once: bool = False  # in the first round only (the big ones)
    dead_lettered_by: int | None = None  # default: every consumer of the topic


def _hex(rng: random.Random, n: int = 8) -> str:
    return rng.randbytes(n).hex()


def _wrong_shape(rng: random.Random) -> bytes:
    shapes: list[Any] = [
        [],
        [1, 2, 3],
        42,
        "a string",
        None,
        {},
        {_hex(rng, 3): _hex(rng, 5)},
        {"referral_id": 7, "partner_id": ["x"], "version": "one"},
        {"data": {"nested": [{"deeper": None}]}},
    ]
    return json.dumps(rng.choice(shapes)).encode()


def _unusable_partner(base: Record, rng: random.Random) -> Record:
    """Valid for the event schema, not for matching's directory (no category)."""
    data = json.loads(base.value or b"{}")
    partner_id = f"fuzz-{_hex(rng, 4)}"
    changed = {**data, "partner_id": partner_id, "categories": [], "version": 1}
    return replace(base, key=partner_id.encode(), value=json.dumps(changed).encode()).with_header(
        "ce_subject", partner_id.encode()
    )


def _missing(header: str) -> Callable[[Record, random.Random], Record]:
    def make(base: Record, rng: random.Random) -> Record:
        return base.without(header)

    return make


def near_limit(key: bytes) -> Record:
    """A record no header-less producer could make bigger; its dead-letter copy (+ dlq_* headers) is bigger."""
    return Record(key, b"x" * largest_value(key, []), [])


def _near_limit(base: Record, rng: random.Random) -> Record:
    return near_limit(f"fuzz-{_hex(rng, 4)}".encode())


FUZZ: tuple[Fuzz, ...] = (
    Fuzz("random-bytes", lambda b, r: Record(_hex(r).encode(), r.randbytes(r.randint(1, 4000)), [])),
    Fuzz("json-of-the-wrong-shape", lambda b, r: replace(b, value=_wrong_shape(r))),
    Fuzz("not-json", lambda b, r: replace(b, value=b"{not json" + r.randbytes(16))),
    Fuzz("text-content-type", lambda b, r: b.with_header("content-type", b"text/plain")),
    *(Fuzz(f"missing-{h}", _missing(h)) for h in ("ce_id", "ce_source", "ce_type", "ce_specversion")),
    Fuzz("huge-payload", lambda b, r: replace(b, value=json.dumps({"padding": "x" * HUGE_BYTES}).encode()), once=True),
    Fuzz("unknown-type", lambda b, r: b.with_header("ce_type", f"hk.goglobal.fuzz.{_hex(r)}.v1".encode())),
    Fuzz("key-not-subject", lambda b, r: replace(b, key=f"not-the-subject-{_hex(r)}".encode())),
    Fuzz("tombstone", lambda b, r: replace(b, key=f"fuzz-{_hex(r)}".encode(), value=None)),
    # A compacted topic (partners) refuses records without a key at the broker.
    Fuzz("no-key", lambda b, r: replace(b, key=None), topics=(REFERRALS, ENTERPRISES, NOTIFICATIONS)),
    Fuzz("non-utf8-headers", lambda b, r: b.with_header("ce_id", b"\xff\xfe" + r.randbytes(4)).with_header(
        "ce_type", b"\xc3\x28\xa0\xa1")),
    Fuzz("bad-specversion", lambda b, r: b.with_header("ce_specversion", b"0.1")),
    Fuzz("bad-time", lambda b, r: b.with_header("ce_time", b"yesterday at noon")),
    Fuzz("null-header-value", lambda b, r: b.with_header("ce_type", None)),
    # valid for notifications: only matching refuses it
    Fuzz("partner-matching-cannot-use", _unusable_partner, topics=(PARTNERS,), dead_lettered_by=1),
    Fuzz("near-size-limit", _near_limit, once=True),
)  # fmt: skip


@dataclass(frozen=True)
class Sent:
    fuzz: str
    topic: str  # without the namespace prefix
    partition: int
    offset: int
    copies: int  # dead letters expected: one per consuming service

    @property
    def letter_id(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


@dataclass
class DeadLetters:
    """Every record of the namespace's `<topic>.dlq` topics, by the original record it copies."""

    namespace: Namespace
    consumer: AIOKafkaConsumer
    by_original: dict[tuple[str, int, int], list[dict[str, bytes]]] = field(default_factory=dict)

    async def poll(self) -> None:
        for records in (await self.consumer.getmany(timeout_ms=500, max_records=500)).values():
            for dead in records:
                headers = {name: value or b"" for name, value in dead.headers if name.startswith("dlq_")}
                original = (
                    headers.get("dlq_original_topic", b"").decode().removeprefix(self.namespace.topic_prefix),
                    int(headers.get("dlq_original_partition", b"-1")),
                    int(headers.get("dlq_original_offset", b"-1")),
                )
                self.by_original.setdefault(original, []).append(headers)

    def copies(self, sent: Sent) -> list[dict[str, bytes]]:
        return self.by_original.get((sent.topic, sent.partition, sent.offset), [])

    def missing(self, sent: list[Sent]) -> list[str]:
        return [f"{s.fuzz} on {s.letter_id}: {len(self.copies(s))}/{s.copies}" for s in sent if
                len(self.copies(s)) < s.copies]  # fmt: skip


@contextlib.asynccontextmanager
async def dead_letters(namespace: Namespace) -> AsyncIterator[DeadLetters]:
    topics = [f"{namespace.topic(t)}.dlq" for t in CONSUMERS]
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=namespace.infra.kafka, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        yield DeadLetters(namespace, consumer)
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def producer(namespace: Namespace) -> AsyncIterator[AIOKafkaProducer]:
    kafka = AIOKafkaProducer(bootstrap_servers=namespace.infra.kafka, acks="all", linger_ms=0)
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.stop()


async def send(kafka: AIOKafkaProducer, namespace: Namespace, topic: str, rec: Record) -> tuple[int, int]:
    sent = await kafka.send_and_wait(namespace.topic(topic), value=rec.value, key=rec.key, headers=rec.headers)
    return int(sent.partition), int(sent.offset)


async def first_records(namespace: Namespace) -> dict[str, Record]:
    """One real record of each topic, as the services wrote it: what the fuzzer breaks."""
    consumer = AIOKafkaConsumer(
        *(namespace.topic(t) for t in CONSUMERS),
        bootstrap_servers=namespace.infra.kafka,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: dict[str, Record] = {}
    try:

        async def all_found() -> bool:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for real in records:
                    topic = real.topic.removeprefix(namespace.topic_prefix)
                    if real.value is not None and topic not in found:
                        found[topic] = Record(real.key, real.value, list(real.headers))
            return len(found) == len(CONSUMERS)

        await eventually(all_found, "a real record on every topic", DEADLINE_S)
    finally:
        await consumer.stop()
    return found


# -- the shared world -----------------------------------------------------------------------------------------------

LEGAL_AE = {"service_category": "legal", "target_markets": ["AE"], "description": "Dubai subsidiary"}
TREASURY_AE = {"service_category": "banking_and_fund_management", "target_markets": ["AE"], "description": "AED"}


@dataclass
class Fuzzed:
    """The shared world, and a real record of each topic to break."""

    world: World
    bases: dict[str, Record]


@pytest.fixture(scope="module")
async def fuzzed(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fuzzed]:
    async with running_world(new_namespace(infra), tmp_path_factory.mktemp("kafka-fuzz")) as world:
        await world.add_partner("gulf-legal", ["legal"], ["AE", "SA"])
        first = await world.submit([LEGAL_AE])
        await world.all_offered([first["id"]])
        yield Fuzzed(world, await first_records(world.namespace))


async def notifications_knows_enterprise(stack: World, enterprise_id: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.namespace.infra.mongodb_uri)
    try:
        enterprises = client[stack.namespace.database("notifications")]["enterprises"]

        async def known() -> bool:
            stack.assert_running()
            return await enterprises.find_one({"_id": enterprise_id}) is not None

        await eventually(known, f"notifications to know enterprise {enterprise_id}", DEADLINE_S)
    finally:
        await client.close()


async def test_fuzzed_records_are_dead_lettered_while_real_traffic_flows(fuzzed: Fuzzed) -> None:
    stack, rng = fuzzed.world, random.Random(SEED)
    fuzzes = list(FUZZ)
    sent: list[Sent] = []

    async def fuzz_round(first: bool) -> None:
        jobs = [(f, t) for f in fuzzes for t in f.topics if first or not f.once]
        rng.shuffle(jobs)
        for fuzz, topic in jobs:
            partition, offset = await send(kafka, stack.namespace, topic, fuzz.make(fuzzed.bases[topic], rng))
            sent.append(Sent(fuzz.name, topic, partition, offset, fuzz.dead_lettered_by or CONSUMERS[topic]))

    async with producer(stack.namespace) as kafka, dead_letters(stack.namespace) as letters:
        await fuzz_round(first=True)
        r1 = await stack.submit([LEGAL_AE])
        await fuzz_round(first=False)
        await stack.add_partner("fuzz-treasury", ["banking_and_fund_management"], ["AE"], wait=False)
        newcomer = await stack.register_enterprise(contact_email="ops@newcomer.example.cn")
        await fuzz_round(first=False)
        await stack.matching_knows("fuzz-treasury")
        r2 = await stack.submit([TREASURY_AE, LEGAL_AE], newcomer)
        await fuzz_round(first=False)

        # The real traffic went through every topic.
        await stack.all_offered([r1["id"], r2["id"]])
        treasury_key = await stack.partner_key("fuzz-treasury")

        async def inbox() -> bool:
            stack.assert_running()
            answer = await stack.http.get("/v1/inbox", headers=bearer(treasury_key))
            return answer.status_code == 200 and len(answer.json()) > 0

        await eventually(inbox, "the new partner's offer in its inbox (via goglobal.notifications)", DEADLINE_S)
        await notifications_knows_enterprise(stack, newcomer.id)

        # Every fuzzed record is dead-lettered by every service that consumes its topic, with a reason.
        async def all_dead_lettered() -> bool:
            stack.assert_running()
            await letters.poll()
            return not letters.missing(sent)

        try:
            await eventually(all_dead_lettered, "every fuzzed record in its .dlq", DEADLINE_S)
        except AssertionError:
            raise AssertionError(f"seed {SEED}; not dead-lettered: {letters.missing(sent)}") from None
        for record_sent in sent:
            for headers in letters.copies(record_sent):
                where = f"{record_sent.fuzz} ({record_sent.letter_id}, seed {SEED})"
                assert headers.get("dlq_error_class"), where
                assert headers.get("dlq_error_message"), where
                assert headers.get("dlq_original_offset") == str(record_sent.offset).encode(), where
                if record_sent.fuzz == "near-size-limit":  # its copy with the dlq_* headers is over the limit
                    assert headers.get("dlq_value_truncated") == b"true", where

    # Operators see each of them, with why it failed.
    unseen = [s.letter_id for s in sent]

    async def visible() -> bool:
        for letter_id in list(unseen):
            answer = await stack.http.get(
                f"/v1/dead-letters/{stack.namespace.topic(letter_id)}", headers=bearer(stack.operator)
            )
            if answer.status_code == 200 and answer.json()["error_message"]:
                unseen.remove(letter_id)
        return not unseen

    try:
        await eventually(visible, "every fuzzed record in GET /v1/dead-letters", DEADLINE_S)
    except AssertionError:
        raise AssertionError(f"seed {SEED}; operators cannot see {unseen}") from None
    print(f"seed {SEED}: {len(sent)} fuzzed records, each dead-lettered by every consumer of its topic:")
    print(*sorted({f"  {s.fuzz}" for s in sent}), sep="\n")
    stack.assert_running()
    assert set((await stack.ready()).values()) == {200}, f"not ready after the fuzz\n{stack.logs()}"


async def test_junk_event_types_do_not_become_metric_labels(fuzzed: Fuzzed) -> None:
    """Regression [metric-label-from-header]: a producer that sends many made-up types must not grow the services'
    metrics without bound (the label came from the record's ce_type header)."""
    stack, marker = fuzzed.world, f"junk{uuid.uuid4().hex[:8]}"
    async with producer(stack.namespace) as kafka, dead_letters(stack.namespace) as letters:
        sent = []
        for n in range(20):
            junk = fuzzed.bases[ENTERPRISES].with_header("ce_type", f"hk.goglobal.{marker}.{n}.v1".encode())
            partition, offset = await send(kafka, stack.namespace, ENTERPRISES, junk)
            sent.append(Sent("junk-type", ENTERPRISES, partition, offset, CONSUMERS[ENTERPRISES]))

        async def dead_lettered() -> bool:
            stack.assert_running()
            await letters.poll()
            return not letters.missing(sent)

        await eventually(dead_lettered, "the junk records in goglobal.enterprises.dlq", DEADLINE_S)
    metrics = (await stack.http.get(f"{stack.services['notifications'].url}/metrics")).text
    series = [line for line in metrics.splitlines() if marker in line]
    assert not series, f"{len(series)} time series carry made-up event types, e.g. {series[:2]}"


# -- records that crashed a service ----------------------------------------------------------------------------
#
# Each killed the loop that read it, and so the service (a dead background loop stops the process with exit 70; the
# record is not committed, so the restarted service died on it again). They run here on the very loops the services
# run (DirectoryFollower, EventConsumer, DeadLetterCollector), in this process, on the real broker and database: a
# loop that dies fails the test at once with its exception.


@dataclass
class Loop:
    """A background loop under test; `alive()` raises what killed it."""

    task: "asyncio.Task[None]"
    what: str

    def alive(self) -> None:
        if self.task.done() and not self.task.cancelled() and self.task.exception() is not None:
            raise AssertionError(f"{self.what} died (its service would exit 70): {self.task.exception()!r}")


@contextlib.asynccontextmanager
async def looping(what: str, run: Callable[[], Any], stop: Callable[[], None]) -> AsyncIterator[Loop]:
    task: asyncio.Task[None] = asyncio.create_task(run())
    try:
        yield Loop(task, what)
    finally:
        stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=10)


async def dead_lettered(loop: Loop, letters: DeadLetters, sent: Sent) -> dict[str, bytes]:
    """The dlq_* headers of the record's dead letter, once the loop wrote it."""

    async def copied() -> bool:
        loop.alive()
        await letters.poll()
        return not letters.missing([sent])

    await eventually(copied, f"{sent.fuzz} in its .dlq", DEADLINE_S / 2)
    headers = letters.copies(sent)[0]
    assert headers.get("dlq_error_class") and headers.get("dlq_error_message"), headers
    return headers


def assert_value_left_out(headers: dict[str, bytes], original: Record) -> None:
    """A dead letter of a record at the size limit cannot carry its value: it says so, and how big it was."""
    assert headers.get("dlq_value_truncated") == b"true", headers
    assert headers.get("dlq_original_value_bytes") == str(len(original.value or b"")).encode(), headers


@contextlib.asynccontextmanager
async def follower(namespace: Namespace) -> AsyncIterator[tuple[DirectoryFollower, Loop]]:
    """Matching's directory follower, as matching runs it."""
    topic = namespace.topic(PARTNERS)
    await ensure_topics(namespace.infra.kafka, [topic, f"{topic}.dlq"], configs={topic: {"cleanup.policy": "compact"}})
    kafka = make_producer(namespace.infra.kafka, "hostile-tests")
    await kafka.start()
    directory = DirectoryFollower(
        make_follower_consumer(namespace.infra.kafka, topic, "hostile-tests"), kafka, DirectoryIndex()
    )
    await directory.consumer.start()
    try:
        async with looping("matching's directory follower", directory.run, directory.stop) as loop:
            yield directory, loop
    finally:
        await directory.consumer.stop()
        await kafka.stop()


@contextlib.asynccontextmanager
async def consume_loop(namespace: Namespace, handled: list[str]) -> AsyncIterator[Loop]:
    """The consume loop every service runs, on the referrals topic, with short retries."""
    topic = namespace.topic(REFERRALS)
    await ensure_topics(namespace.infra.kafka, [topic, f"{topic}.dlq"])
    kafka = make_producer(namespace.infra.kafka, "hostile-tests")
    await kafka.start()
    consumer = make_consumer(namespace.infra.kafka, namespace.topic("hostile"), [topic], "hostile-tests")
    await consumer.start()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(namespace.infra.mongodb_uri)

    async def handler(envelope: Envelope) -> None:
        handled.append(envelope.subject)

    processed = ProcessedEvents(mongo[namespace.database("hostile")]["processed_events"])
    events = EventConsumer(
        consumer, kafka, {ReferralSubmitted.event_type: handler}, processed, RetryPolicy(0.05, 0.2, max_attempts=3)
    )
    try:
        async with looping("the consume loop", events.run, events.stop) as loop:
            yield loop
    finally:
        await consumer.stop()
        await kafka.stop()
        await mongo.close()


def partner_event(partner_id: str = "after-the-bad-one", **change: Any) -> Record:
    payload = factories.partner_upserted(partner_id=partner_id, updated_at=datetime.now(UTC), **change)
    return record(Envelope.wrap(payload, source="/hostile-tests", subject=payload.partner_id))


def referral_submitted(referral_id: str) -> Record:
    payload = ReferralSubmitted(
        referral_id=referral_id,
        request_id=uuid.uuid4().hex,
        enterprise_id=uuid.uuid4().hex,
        enterprise_name="Shenzhen Bright Solar Co., Ltd.",
        need=NeedDetails.model_validate(LEGAL_AE),
        submitted_at=datetime.now(UTC),
    )
    return record(Envelope.wrap(payload, source="/hostile-tests", subject=referral_id))


async def loads(directory: DirectoryFollower, loop: Loop, partner_id: str) -> None:
    async def known() -> bool:
        loop.alive()
        return directory.index.get(partner_id) is not None

    await eventually(known, f"the follower to load {partner_id} after the bad record", DEADLINE_S / 2)


@pytest.mark.parametrize(
    "change",
    [{"categories": []}, {"markets": []}, {"partner_id": "NOT A VALID ID"}, {"sectors": ["zzz"]}, {"name": ""}],
    ids=["no-category", "no-market", "bad-id", "bad-sector", "no-name"],
)
async def test_a_partner_event_matching_cannot_use_is_dead_lettered(
    namespace: Namespace, change: dict[str, Any]
) -> None:
    """Regression [partner-event-crash]: a partner event valid for the schema but not for matching's Partner model
    killed the directory follower (matching exited 70 on every boot); notifications takes it."""
    async with follower(namespace) as (directory, loop), producer(namespace) as kafka, dead_letters(namespace) as dlq:
        partner_id = change.get("partner_id", f"fuzz-{uuid.uuid4().hex[:8]}")
        bad = partner_event(**{"partner_id": partner_id, **change})
        partition, offset = await send(kafka, namespace, PARTNERS, bad)
        await send(kafka, namespace, PARTNERS, partner_event("after-the-bad-one"))
        await loads(directory, loop, "after-the-bad-one")
        letter = await dead_lettered(loop, dlq, Sent("partner", PARTNERS, partition, offset, copies=1))
        assert letter["dlq_error_class"] == b"InvalidEvent", letter
        assert directory.index.get(partner_id) is None, "matching took a partner it cannot use"


async def test_a_record_at_the_size_limit_is_dead_lettered_by_the_follower(namespace: Namespace) -> None:
    """Regression [oversize-dead-letter-crash]: a record near the 1 MiB limit made a dead-letter copy over
    max_request_size, which killed the loop."""
    async with follower(namespace) as (directory, loop), producer(namespace) as kafka, dead_letters(namespace) as dlq:
        big = near_limit(f"fuzz-{uuid.uuid4().hex[:8]}".encode())
        partition, offset = await send(kafka, namespace, PARTNERS, big)
        await send(kafka, namespace, PARTNERS, partner_event("after-the-big-one"))
        await loads(directory, loop, "after-the-big-one")
        assert_value_left_out(await dead_lettered(loop, dlq, Sent("near-limit", PARTNERS, partition, offset, 1)), big)


async def handles(loop: Loop, handled: list[str], referral_id: str) -> None:
    async def done() -> bool:
        loop.alive()
        return referral_id in handled

    await eventually(done, f"the loop to handle {referral_id} after the bad record", DEADLINE_S / 2)


async def test_a_record_at_the_size_limit_is_dead_lettered_by_the_consume_loop(namespace: Namespace) -> None:
    """Regression [oversize-dead-letter-crash]: a record near the 1 MiB limit made a dead-letter copy over
    max_request_size, which killed the loop."""
    handled: list[str] = []
    async with consume_loop(namespace, handled) as loop, producer(namespace) as kafka, dead_letters(namespace) as dlq:
        referral_id = uuid.uuid4().hex
        big = near_limit(referral_id.encode())
        partition, offset = await send(kafka, namespace, REFERRALS, big)
        await send(kafka, namespace, REFERRALS, referral_submitted(referral_id))  # same key: after the big one
        await handles(loop, handled, referral_id)
        assert_value_left_out(await dead_lettered(loop, dlq, Sent("near-limit", REFERRALS, partition, offset, 1)), big)


async def test_a_null_header_value_is_dead_lettered(namespace: Namespace) -> None:
    """Regression [null-header-crash]: a null ce_type header value (legal in Kafka) killed every EventConsumer, again
    after each restart."""
    handled: list[str] = []
    async with consume_loop(namespace, handled) as loop, producer(namespace) as kafka, dead_letters(namespace) as dlq:
        referral_id = uuid.uuid4().hex
        good = referral_submitted(referral_id)
        bad = good.with_header("ce_type", None).with_header("ce_id", str(uuid.uuid4()).encode())
        partition, offset = await send(kafka, namespace, REFERRALS, bad)
        await send(kafka, namespace, REFERRALS, good)  # same key: same partition, after the bad one
        await handles(loop, handled, referral_id)
        letter = await dead_lettered(loop, dlq, Sent("null-header", REFERRALS, partition, offset, copies=1))
        assert b"ce_type" in letter["dlq_error_message"], letter


async def test_the_dead_letter_collector_stores_a_letter_with_a_null_header(namespace: Namespace) -> None:
    """Regression [collector-null-header]: intake's dead-letter collector could not store a letter with a null header,
    and stalled its partition. Intake keeps every dead letter for operators; one with a null header value must not stop
    the others."""
    origin = namespace.topic(ENTERPRISES)
    dlq = f"{origin}.dlq"
    await ensure_topics(namespace.infra.kafka, [dlq])
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    repository = DeadLetterRepository(mongo[namespace.database("intake")]["dead_letters"])
    collector = DeadLetterCollector(
        make_consumer(namespace.infra.kafka, namespace.topic("dead-letters"), [dlq], "hostile-tests"), repository
    )
    await collector.consumer.start()

    def letter(offset: int, headers: Headers) -> Record:
        dlq_headers: Headers = [
            ("dlq_original_topic", origin.encode()),
            ("dlq_original_partition", b"0"),
            ("dlq_original_offset", str(offset).encode()),
            ("dlq_error_class", b"InvalidEvent"),
            ("dlq_error_message", b"hostile test"),
            ("dlq_attempts", b"1"),
        ]
        return Record(b"same-key", b"{}", [*headers, *dlq_headers])  # one key: one partition, in this order

    try:
        async with looping("intake's dead-letter collector", collector.run, collector.stop) as loop:
            async with producer(namespace) as kafka:
                await send(kafka, namespace, f"{ENTERPRISES}.dlq", letter(1000, [("ce_type", None), ("x", None)]))
                await send(kafka, namespace, f"{ENTERPRISES}.dlq", letter(1001, [("ce_type", b"hk.goglobal.x.v1")]))

            async def stored() -> bool:
                loop.alive()
                return all([await repository.get(f"{origin}:0:{offset}") for offset in (1000, 1001)])

            await eventually(stored, "both dead letters stored for GET /v1/dead-letters", DEADLINE_S / 2)
    finally:
        await collector.consumer.stop()
        await mongo.close()

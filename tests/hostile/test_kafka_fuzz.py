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

Records that crash a service today (open bugs in `known_bugs.py`) are left out of that run and each has its own
regression test below, on its own short-lived stack.
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

from goglobal_shared.envelope import Envelope, to_kafka
from goglobal_shared.events import NeedDetails, PartnerUpserted, ReferralSubmitted
from tests.hostile.known_bugs import (
    COLLECTOR_NULL_HEADER,
    METRIC_LABEL_FROM_HEADER,
    NULL_HEADER_CRASH,
    OVERSIZE_DEAD_LETTER_CRASH,
    PARTNER_EVENT_CRASH,
    Bug,
    xfail_until_fixed,
)
from tests.hostile.world import Stack, running_stack, start_all
from tests.integration.intake_helpers import Enterprise, bearer
from tests.support import Infra, Namespace, eventually

pytestmark = pytest.mark.integration

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
    bug: Bug | None = None  # an open bug makes this record crash a service: left out of the shared run
    once: bool = False  # in the first round only (the big ones)
    dead_lettered_by: int | None = None  # default: every consumer of the topic

    @property
    def runs(self) -> bool:
        return self.bug is None or self.bug.fixed


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


def _near_limit(base: Record, rng: random.Random) -> Record:
    key = f"fuzz-{_hex(rng, 4)}".encode()
    return Record(key, b"x" * largest_value(key, []), [])


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
    Fuzz("null-header-value", lambda b, r: b.with_header("ce_type", None), bug=NULL_HEADER_CRASH),
    Fuzz("partner-matching-cannot-use", _unusable_partner, topics=(PARTNERS,), bug=PARTNER_EVENT_CRASH,
         dead_lettered_by=1),  # valid for notifications: only matching refuses it
    Fuzz("near-size-limit", _near_limit, bug=OVERSIZE_DEAD_LETTER_CRASH, once=True),
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
class World:
    stack: Stack
    enterprise: Enterprise
    bases: dict[str, Record]


@pytest.fixture(scope="module")
async def world(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory, victims_starting: asyncio.Task[dict[str, Stack]]
) -> AsyncIterator[World]:
    async with running_stack(infra, tmp_path_factory.mktemp("kafka-fuzz")) as stack:
        await stack.put_partner("gulf-legal", ["legal"], ["AE", "SA"])
        await stack.matching_knows("gulf-legal")
        enterprise = await stack.enterprise()
        first = await stack.submit(enterprise, [LEGAL_AE])
        await stack.all_offered([first["id"]])
        yield World(stack, enterprise, await first_records(stack.namespace))


async def notifications_knows_enterprise(stack: Stack, enterprise_id: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.namespace.infra.mongodb_uri)
    try:
        enterprises = client[stack.namespace.database("notifications")]["enterprises"]

        async def known() -> bool:
            stack.assert_running()
            return await enterprises.find_one({"_id": enterprise_id}) is not None

        await eventually(known, f"notifications to know enterprise {enterprise_id}", DEADLINE_S)
    finally:
        await client.close()


async def test_fuzzed_records_are_dead_lettered_while_real_traffic_flows(world: World) -> None:
    stack, rng = world.stack, random.Random(SEED)
    fuzzes = [f for f in FUZZ if f.runs]
    sent: list[Sent] = []

    async def fuzz_round(first: bool) -> None:
        jobs = [(f, t) for f in fuzzes for t in f.topics if first or not f.once]
        rng.shuffle(jobs)
        for fuzz, topic in jobs:
            partition, offset = await send(kafka, stack.namespace, topic, fuzz.make(world.bases[topic], rng))
            sent.append(Sent(fuzz.name, topic, partition, offset, fuzz.dead_lettered_by or CONSUMERS[topic]))

    async with producer(stack.namespace) as kafka, dead_letters(stack.namespace) as letters:
        await fuzz_round(first=True)
        r1 = await stack.submit(world.enterprise, [LEGAL_AE])
        await fuzz_round(first=False)
        await stack.put_partner("fuzz-treasury", ["banking_and_fund_management"], ["AE"])
        newcomer = await stack.enterprise(email="ops@newcomer.example.cn")
        await fuzz_round(first=False)
        await stack.matching_knows("fuzz-treasury", DEADLINE_S)
        r2 = await stack.submit(newcomer, [TREASURY_AE, LEGAL_AE])
        await fuzz_round(first=False)

        # The real traffic went through every topic.
        await stack.all_offered([r1["id"], r2["id"]], DEADLINE_S)
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


@xfail_until_fixed(METRIC_LABEL_FROM_HEADER)
async def test_junk_event_types_do_not_become_metric_labels(world: World) -> None:
    """A producer that sends many made-up types must not grow the services' metrics without bound."""
    stack, marker = world.stack, f"junk{uuid.uuid4().hex[:8]}"
    async with producer(stack.namespace) as kafka, dead_letters(stack.namespace) as letters:
        sent = []
        for n in range(20):
            junk = world.bases[ENTERPRISES].with_header("ce_type", f"hk.goglobal.{marker}.{n}.v1".encode())
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


# -- records that crash a service today: each on its own short-lived stack ---------------------------------------

# Each of these records kills the service that reads it, so each gets a stack of its own (only the service under
# test, in its own namespace), all started at once.
VICTIMS: dict[str, tuple[str, ...]] = {
    "partner": ("matching",),
    "near-limit": ("matching",),
    "null-header": ("matching",),
    "collector": ("intake",),
}


async def start_victims(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory, exits: contextlib.AsyncExitStack
) -> dict[str, Stack]:
    stacks = [running_stack(infra, tmp_path_factory.mktemp(name), names=VICTIMS[name]) for name in VICTIMS]
    return dict(zip(VICTIMS, await start_all(exits, *stacks), strict=True))


@pytest.fixture(scope="module")
async def victims_starting(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[asyncio.Task[dict[str, Stack]]]:
    """The victims start in the background while the shared world is built and fuzzed."""
    async with contextlib.AsyncExitStack() as exits:
        task = asyncio.create_task(start_victims(infra, tmp_path_factory, exits))
        try:
            yield task
        finally:
            with contextlib.suppress(BaseException):
                await task  # every started stack is registered with `exits` before they are stopped


@pytest.fixture(scope="module")
async def victims(victims_starting: asyncio.Task[dict[str, Stack]]) -> dict[str, Stack]:
    return await victims_starting


def partner_event(partner_id: str, **change: Any) -> Record:
    payload = PartnerUpserted.model_validate(
        {
            "partner_id": partner_id,
            "name": "Fuzz Partner",
            "categories": [{"category": "legal", "specialties": []}],
            "markets": ["AE"],
            "capacity": 5,
            "response_window_hours": 48,
            "offer_strategy": "sequential",
            "parallel_offers": 1,
            "active": True,
            "version": 1,
            "updated_at": datetime.now(UTC),
            **change,
        }
    )
    return record(Envelope.wrap(payload, source="/hostile-tests", subject=partner_id))


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


async def matching_knows(stack: Stack, partner_id: str) -> None:
    async def known() -> bool:
        stack.assert_running("matching")
        return (await stack.http.get(f"/internal/directory/{partner_id}")).status_code == 200

    await eventually(known, f"matching to load {partner_id} after the bad record", DEADLINE_S / 2)


async def dead_lettered(stack: Stack, letters: DeadLetters, sent: Sent) -> None:
    async def copied() -> bool:
        stack.assert_running()
        await letters.poll()
        return not letters.missing([sent])

    await eventually(copied, f"{sent.fuzz} in its .dlq", DEADLINE_S / 2)


@xfail_until_fixed(PARTNER_EVENT_CRASH)
async def test_a_partner_event_matching_cannot_use_is_dead_lettered(victims: dict[str, Stack]) -> None:
    """No category: the event schema allows it, matching's Partner model does not (so do markets [], sectors
    ["zzz"], name "" and an id like "NOT A VALID ID")."""
    stack = victims["partner"]
    async with producer(stack.namespace) as kafka, dead_letters(stack.namespace) as letters:
        bad = partner_event(f"fuzz-{uuid.uuid4().hex[:8]}", categories=[])
        partition, offset = await send(kafka, stack.namespace, PARTNERS, bad)
        await send(kafka, stack.namespace, PARTNERS, partner_event("after-the-bad-one"))
        await matching_knows(stack, "after-the-bad-one")
        # Only matching refuses it (the event schema allows it): one dead letter, from matching.
        await dead_lettered(stack, letters, Sent("partner", PARTNERS, partition, offset, copies=1))
    assert (await stack.ready())["matching"] == 200


@xfail_until_fixed(OVERSIZE_DEAD_LETTER_CRASH)
async def test_a_record_at_the_size_limit_is_dead_lettered(victims: dict[str, Stack]) -> None:
    stack = victims["near-limit"]
    async with producer(stack.namespace) as kafka, dead_letters(stack.namespace) as letters:
        big = _near_limit(Record(None, None, []), random.Random(SEED))
        partition, offset = await send(kafka, stack.namespace, PARTNERS, big)
        await send(kafka, stack.namespace, PARTNERS, partner_event("after-the-big-one"))
        await matching_knows(stack, "after-the-big-one")
        await dead_lettered(stack, letters, Sent("near-limit", PARTNERS, partition, offset, copies=1))
    assert (await stack.ready())["matching"] == 200


@xfail_until_fixed(NULL_HEADER_CRASH)
async def test_a_null_header_value_is_dead_lettered(victims: dict[str, Stack]) -> None:
    """Matching stands for every EventConsumer here (the loop is shared): it must dead-letter the record, then
    decide the next referral on the same partition."""
    stack = victims["null-header"]
    async with producer(stack.namespace) as kafka, dead_letters(stack.namespace) as letters:
        referral_id = uuid.uuid4().hex
        good = referral_submitted(referral_id)
        bad = good.with_header("ce_type", None).with_header("ce_id", str(uuid.uuid4()).encode())
        partition, offset = await send(kafka, stack.namespace, REFERRALS, bad)
        await send(kafka, stack.namespace, REFERRALS, good)  # same key: same partition, after the bad one
        await dead_lettered(stack, letters, Sent("null-header", REFERRALS, partition, offset, copies=1))
        await decided(stack, referral_id)
    assert (await stack.ready())["matching"] == 200


async def decided(stack: Stack, referral_id: str) -> None:
    """Matching published its decision (matched or unmatched) about `referral_id` on the referrals topic."""
    consumer = AIOKafkaConsumer(
        stack.namespace.topic(REFERRALS),
        bootstrap_servers=stack.namespace.infra.kafka,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    decisions: list[bytes] = []
    try:

        async def published() -> bool:
            stack.assert_running("matching")
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for published in records:
                    headers = dict(published.headers)
                    if published.key == referral_id.encode() and b"submitted" not in (headers.get("ce_type") or b""):
                        decisions.append(headers.get("ce_type") or b"")
            return bool(decisions)

        await eventually(published, f"matching's decision on {referral_id}", DEADLINE_S / 2)
    finally:
        await consumer.stop()


@xfail_until_fixed(COLLECTOR_NULL_HEADER)
async def test_the_dead_letter_collector_stores_a_letter_with_a_null_header(victims: dict[str, Stack]) -> None:
    """Intake keeps every dead letter for operators; one with a null header value must not stop the others."""
    stack = victims["collector"]
    dlq, origin = f"{ENTERPRISES}.dlq", stack.namespace.topic(ENTERPRISES)

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

    async with producer(stack.namespace) as kafka:
        await send(kafka, stack.namespace, dlq, letter(1000, [("ce_type", None), ("x-note", None)]))
        await send(kafka, stack.namespace, dlq, letter(1001, [("ce_type", b"hk.goglobal.fuzz.v1")]))

    async def stored() -> bool:
        stack.assert_running()
        for offset in (1000, 1001):
            answer = await stack.http.get(f"/v1/dead-letters/{origin}:0:{offset}", headers=bearer(stack.operator))
            if answer.status_code != 200:
                return False
        return True

    await eventually(stored, "both dead letters in GET /v1/dead-letters", DEADLINE_S / 6)

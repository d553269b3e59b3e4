"""The matching stage's sustained events per second on a pre-queued batch, against raw aiokafka moving the same
records on the same broker (the transport limit).

Run from the repository root::

    .venv/bin/python -m bench.pipeline_bench            # a batch of 300 requests
    .venv/bin/python -m bench.pipeline_bench --quick    # a batch of 150

**Pipeline.** In a fresh namespace, intake (a real process) registers one partner and one enterprise and takes M
one-need requests (16 concurrent clients); its outbox relay publishes the M `referral.submitted` events to
`goglobal.referrals` (3 partitions). Once all M are on the topic, intake is stopped, and matching is started on
the queued batch: it loads the directory, then consumes each `referral.submitted` (rank the partners, store an offer
plan with its events, in one write), and its relay publishes `referral.matched` and `referral.offered`; matching then
also consumes those two back (it reacts to offers too). The rate is taken between the first and the last
`referral.offered` of the batch (Kafka record timestamps, set by matching's producer), so start-up is left out;
a second figure counts every record of the batch that matching consumed (3 M) until its consumed counter
(`goglobal_events_consumed` on /metrics) reached 3 M.

**Transport.** The same M records (keys, values, headers, partitions, so the same sizes) are copied to a new
3-partition topic on the same broker with the services' own producer settings (`make_producer`: idempotent,
acks=all, linger 5 ms) and consumed with the services' consumer settings (`make_consumer`: a group,
read_committed), committing once per fetched batch of a partition (up to 100 records, as the service loop
fetches): produce alone, consume alone, and consume -> produce one record per consumed record -> commit per batch,
the shape of a service stage without its work. The batch is repeated until there are a few thousand records, so
that the raw rates are not a handful of round trips. This is not a test: nothing asserts a timing.
"""

import argparse
import asyncio
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from bench.common import (
    REQUEST_BODY,
    Result,
    Table,
    bearer,
    log,
    metric_sum,
    scrape,
    setup_parties,
    show,
    system,
)
from goglobal_shared.consumer import make_consumer
from goglobal_shared.kafka import ensure_topics, make_producer
from tests.support import Namespace, eventually

OFFERED = b"hk.goglobal.referral.offered.v1"
CONCURRENCY = 16
PARTITIONS = 3
Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass(frozen=True)
class Rate:
    label: str
    records: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("nan")


def header(record: Record, name: str) -> bytes | None:
    return next((value for key, value in record.headers if key == name), None)


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()  # subscribed: the topic's metadata is fetched
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends: dict[TopicPartition, int] = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return ends
    finally:
        await consumer.stop()


async def ready(bootstrap: str, topic: str) -> bool:
    return len(await end_offsets(bootstrap, topic)) == PARTITIONS


async def read_all(bootstrap: str, topic: str, count: int, deadline_s: float) -> list[Record]:
    """The first `count` records of `topic`, all partitions, no group."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[Record] = []
    try:
        end = time.monotonic() + deadline_s
        while len(found) < count and time.monotonic() < end:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(records)
    finally:
        await consumer.stop()
    return found


async def submit_batch(url: str, key: str, count: int) -> None:
    remaining = count
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                answer = await http.post("/v1/service-requests", json=REQUEST_BODY, headers=bearer(key))
                answer.raise_for_status()

        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))


async def pipeline(batch: int, deadline_s: float) -> tuple[list[Rate], list[Record]]:
    async with system("pipeline") as stack:
        bootstrap = stack.namespace.infra.kafka
        referrals = stack.namespace.topic("goglobal.referrals")
        log("pipeline: starting intake; directory and enterprise")
        await stack.start_ready("intake")
        intake_url = stack.services["intake"].url
        parties = await setup_parties(stack.namespace, intake_url, webhook_url=None)
        log(f"pipeline: queueing {batch} requests through intake")
        await submit_batch(intake_url, parties.enterprise_key, batch)

        async def all_published() -> bool:
            return sum((await end_offsets(bootstrap, referrals)).values()) >= batch

        await eventually(all_published, f"{batch} referral.submitted on the topic", deadline_s=120, interval_s=0.5)
        stack.stop("intake")
        queued = await read_all(bootstrap, referrals, batch, 60)
        starts = await end_offsets(bootstrap, referrals)

        # A reader from the end of the queued batch notes each referral.offered that matching produces.
        reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await reader.start()
        offered: list[int] = []  # record timestamps, ms
        try:
            reader.assign(list(starts))
            for tp, offset in starts.items():
                reader.seek(tp, offset)
            log("pipeline: starting matching on the queued batch")
            started = time.monotonic()
            matching = stack.start("matching")
            consumed_all_at: float | None = None
            async with httpx.AsyncClient(timeout=5) as http:
                end = time.monotonic() + deadline_s
                while time.monotonic() < end and (len(offered) < batch or consumed_all_at is None):
                    for records in (await reader.getmany(timeout_ms=200)).values():
                        offered += [r.timestamp for r in records if header(r, "ce_type") == OFFERED]
                    if consumed_all_at is None:
                        text = await scrape(http, matching.url)
                        if text and metric_sum(text, "goglobal_events_consumed_total") >= 3 * batch:
                            consumed_all_at = time.time()
        finally:
            await reader.stop()
        log(f"pipeline: {len(offered)} offers in {time.monotonic() - started:.1f} s after matching started")
    if len(offered) < 2:
        raise RuntimeError(f"matching offered {len(offered)} of {batch} referrals within {deadline_s:.0f} s")
    first, last = min(offered) / 1000, max(offered) / 1000
    rates = [Rate("matching: referral.submitted -> referral.offered", len(offered) - 1, last - first)]
    if consumed_all_at is not None:
        label = "matching: every record of the batch consumed (3 per referral)"
        rates.append(Rate(label, 3 * batch, consumed_all_at - first))
    return rates, queued


async def transport(namespace: Namespace, batch: list[Record], copies: int) -> list[Rate]:
    """Produce, consume, and consume -> produce -> commit the batch's records (`copies` times over, so that the
    rates are not a handful of round trips) on new topics of the same broker."""
    queued = batch * copies
    bootstrap = namespace.infra.kafka
    source, sink = namespace.topic("bench.transport"), namespace.topic("bench.transport-out")
    await ensure_topics(bootstrap, [source, sink], partitions=PARTITIONS)
    producer = make_producer(bootstrap, client_id="bench-transport")
    await producer.start()
    rates: list[Rate] = []
    try:
        # Partition leaders of brand-new topics take a moment; do not time that.
        for topic in (source, sink):
            await eventually(functools.partial(ready, bootstrap, topic), f"leaders for {topic}", deadline_s=30)
            await producer.partitions_for(topic)
        started = time.perf_counter()
        sent = [
            await producer.send(source, value=r.value, key=r.key, headers=list(r.headers), partition=r.partition)
            for r in queued
        ]
        await asyncio.gather(*sent)
        rates.append(Rate("raw: produce (idempotent, acks=all)", len(queued), time.perf_counter() - started))

        consumed = await consume(bootstrap, namespace.topic(f"bench-group-{uuid.uuid4().hex[:6]}"), source, len(queued))
        rates.append(Rate("raw: consume (group, commit per batch)", len(queued), consumed))

        async def forward(records: list[Record]) -> None:
            pending = [
                await producer.send(sink, value=r.value, key=r.key, headers=list(r.headers), partition=r.partition)
                for r in records
            ]
            await asyncio.gather(*pending)

        relayed = await consume(
            bootstrap, namespace.topic(f"bench-group-{uuid.uuid4().hex[:6]}"), source, len(queued), forward
        )
        rates.append(Rate("raw: consume -> produce -> commit per batch", len(queued), relayed))
    finally:
        await producer.stop()
    return rates


async def consume(
    bootstrap: str,
    group: str,
    topic: str,
    count: int,
    each_batch: Callable[[list[Record]], Awaitable[None]] | None = None,
) -> float:
    """Seconds from the first fetched record to the last committed one, in a fresh group."""
    consumer = make_consumer(bootstrap, group, [topic], client_id="bench-transport")
    await consumer.start()
    seen = 0
    first: float | None = None
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=100)
            if batch and first is None:
                first = time.perf_counter()
            for tp, records in batch.items():
                if each_batch is not None:
                    await each_batch(records)
                await consumer.commit({tp: records[-1].offset + 1})
                seen += len(records)
    finally:
        await consumer.stop()
    return time.perf_counter() - (first or time.perf_counter())


async def measure(quick: bool) -> Result:
    batch = 150 if quick else 300
    started = time.monotonic()
    stage, queued = await pipeline(batch, deadline_s=180 if quick else 400)
    log("pipeline: transport baseline on the same records")
    copies = max(1, -(-(2_000 if quick else 6_000) // len(queued)))
    async with system("transport") as stack:
        raw = await transport(stack.namespace, queued, copies)
    size = sum(len(r.value or b"") + len(r.key or b"") + sum(len(k) + len(v) for k, v in r.headers) for r in queued)
    limit = raw[-1]
    rows = [
        [
            rate.label,
            f"{rate.records:,}",
            f"{rate.seconds:.2f} s",
            f"{rate.per_second:,.1f}/s",
            f"{rate.per_second / limit.per_second:.3f}",
        ]
        for rate in [*stage, *raw]
    ]
    ratio = stage[0].per_second / limit.per_second
    table = Table(
        f"Pipeline: matching on a pre-queued batch of {batch} referrals vs raw aiokafka on the same records",
        ["what", "records", "time", "rate", "vs raw consume->produce"],
        rows,
        notes=[
            f"Records average {size / len(queued):,.0f} bytes (key, value and headers), {PARTITIONS} partitions; "
            f"the raw rows move the batch {copies} times over. "
            "The matching rows count events handled per second by one matching process; the raw rows move the same "
            "records with no work on them, so their ratio says how much of the transport's capacity the stage's "
            "own work (ranking, the offer plan write, the outbox relay, the commits and the dedupe log) leaves."
        ],
    )
    headline = (
        f"matching handles {stage[0].per_second:,.1f} referral.submitted/s = {ratio:.3f} x raw consume->produce "
        f"({limit.per_second:,.0f} records/s)"
    )
    return Result("pipeline", [table], [headline], time.monotonic() - started)


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_bench", description=description)
    parser.add_argument("--quick", action="store_true", help="a batch of 150 requests instead of 300")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.quick))
    show(*result.tables)
    for line in result.headlines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

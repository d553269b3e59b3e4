"""Gauges that need a query (lag, backlogs, counts by status) are refreshed by one loop per service,
every few seconds, so /metrics itself never waits on Kafka or the database."""

import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer

from goglobal_shared.metrics import CONSUMER_LAG, OUTBOX_BACKLOG, OUTBOX_OLDEST
from goglobal_shared.periodic import LoopOwner, PeriodicTask
from goglobal_shared.store.outbox import OutboxRelay

log = logging.getLogger(__name__)
Sample = Callable[[], Awaitable[None]]


class MetricsSampler(LoopOwner):
    """Runs its samples on a `PeriodicTask`. A sample that fails is skipped until the next pass (its gauge goes
    stale, the others do not), so a pass itself never fails and the sampler keeps its interval."""

    def __init__(self, samples: list[Sample], interval_s: float = 5.0) -> None:
        self.samples = samples
        self.interval_s = interval_s
        self.loop: PeriodicTask = PeriodicTask("metrics sampler", self._sample, interval_s)

    async def _sample(self) -> None:
        for sample in self.samples:
            try:
                await sample()
            except Exception as exc:  # a gauge going stale must not stop the others
                log.debug("metrics sample failed: %s", exc)


def consumer_lag(consumer: AIOKafkaConsumer) -> Sample:
    async def sample() -> None:
        CONSUMER_LAG.clear()  # partitions this member lost in a rebalance are someone else's to report
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is not None:
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - await consumer.position(tp)))

    return sample


def outbox(relay: OutboxRelay) -> Sample:
    async def sample() -> None:
        count, oldest_s = await relay.backlog()
        OUTBOX_BACKLOG.labels(relay.collection.name).set(count)
        OUTBOX_OLDEST.labels(relay.collection.name).set(oldest_s)

    return sample

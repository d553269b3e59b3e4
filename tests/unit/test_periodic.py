"""The background loops' one implementation (goglobal_shared.periodic): a PeriodicTask runs on its interval, early
when woken, its hand-over when nudged, stops cleanly, backs off while failing and recovers; readiness follows its
status; a ConsumerLoop polls, ends on a failed pass, and backs off a retry inside one. Short intervals, and every
wait is a poll with a deadline (tests.support.eventually), never a fixed sleep."""

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from goglobal_shared.periodic import ConsumerLoop, Loop, Outcome, PeriodicTask, Records, backoff_s, each_record
from tests.support import eventually

DEADLINE_S = 10.0
FOREVER_S = 3600.0  # an interval no test waits for: only a wake, a nudge or a MORE runs the step again


class Step:
    """Records when it ran and the failures in a row it saw; raises while `failing` > 0, else returns `outcomes`
    in turn (then None)."""

    def __init__(self, failing: int = 0, outcomes: list[Outcome | None] | None = None) -> None:
        self.times: list[float] = []
        self.failures_seen: list[int] = []
        self.failing = failing
        self.outcomes = list(outcomes or [])
        self.task: PeriodicTask | None = None

    async def __call__(self) -> Outcome | None:
        self.times.append(time.monotonic())
        if self.task is not None:
            self.failures_seen.append(self.task.status.failures_in_a_row)
        if self.failing:
            self.failing -= 1
            raise RuntimeError("the database is away")
        return self.outcomes.pop(0) if self.outcomes else None

    def ran(self, times: int) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            return len(self.times) >= times

        return probe


def task_of(step: Step, interval_s: float, **options: Any) -> PeriodicTask:
    task = PeriodicTask("test task", step, interval_s, **options)
    step.task = task
    return task


@asynccontextmanager
async def running(loop: Loop) -> AsyncIterator[asyncio.Task[None]]:
    runner = asyncio.create_task(loop.run())
    try:
        yield runner
    finally:
        loop.stop()
        await asyncio.wait_for(runner, DEADLINE_S)


async def test_the_step_runs_on_its_interval() -> None:
    step = Step()
    task = task_of(step, 0.02)
    async with running(task):
        await eventually(step.ran(4), "four passes on a 20 ms interval", DEADLINE_S, interval_s=0.01)
    gaps = [later - earlier for earlier, later in zip(step.times, step.times[1:], strict=False)]
    assert all(gap >= 0.02 * 0.9 for gap in gaps), gaps  # from the end of one pass to the start of the next


async def test_wake_runs_the_step_early() -> None:
    step = Step()
    task = task_of(step, FOREVER_S)
    async with running(task):
        await eventually(step.ran(1), "the first pass, at start", DEADLINE_S, interval_s=0.01)
        task.wake()
        await eventually(step.ran(2), "a pass on wake(), long before the interval", DEADLINE_S, interval_s=0.01)


async def test_a_nudge_runs_the_hand_over_and_the_step_keeps_its_clock() -> None:
    step, hand_over = Step(), Step(outcomes=[Outcome.IDLE, Outcome.DONE])
    task = task_of(step, FOREVER_S, hand_over=hand_over)
    async with running(task):
        await eventually(hand_over.ran(1), "the hand-over, at start", DEADLINE_S, interval_s=0.01)
        await eventually(step.ran(1), "the first pass, at start", DEADLINE_S, interval_s=0.01)
        task.nudge()
        await eventually(hand_over.ran(2), "the hand-over on nudge()", DEADLINE_S, interval_s=0.01)
        assert len(step.times) == 1, "a nudge is not a wake: the step waits for its time"


async def test_an_idle_hand_over_is_not_a_pass() -> None:
    step, hand_over = Step(), Step(outcomes=[Outcome.IDLE, Outcome.IDLE])
    task = task_of(step, FOREVER_S, hand_over=hand_over)
    async with running(task):
        await eventually(step.ran(1), "the first pass", DEADLINE_S, interval_s=0.01)
        first_success = task.status.last_success_monotonic
        task.nudge()
        await eventually(hand_over.ran(2), "an idle hand-over", DEADLINE_S, interval_s=0.01)
        assert task.status.last_success_monotonic == first_success


async def test_more_runs_the_step_again_at_once() -> None:
    step = Step(outcomes=[Outcome.MORE, Outcome.MORE, Outcome.DONE])
    task = task_of(step, FOREVER_S)
    async with running(task):
        await eventually(step.ran(3), "three passes back to back while work is left", DEADLINE_S, interval_s=0.01)
        assert len(step.times) == 3, "after a DONE the step waits for its interval"


async def test_stop_ends_the_loop_in_its_wait() -> None:
    step = Step()
    task = task_of(step, FOREVER_S)
    runner = asyncio.create_task(task.run())
    await eventually(step.ran(1), "the first pass", DEADLINE_S, interval_s=0.01)
    assert task.status.running
    task.stop()

    async def ended() -> bool:
        return runner.done()

    await eventually(ended, "the loop to end on stop(), in the middle of an hour's wait", DEADLINE_S, interval_s=0.01)
    assert runner.exception() is None and not task.status.running


async def test_a_task_stopped_before_it_runs_ends_at_once() -> None:
    step = Step()
    task = task_of(step, FOREVER_S)
    task.stop()
    await asyncio.wait_for(task.run(), DEADLINE_S)
    assert step.times == [] and not task.status.running


async def test_failures_back_off_and_a_success_resets_them() -> None:
    step = Step(failing=4)
    task = task_of(step, 0.01, max_backoff_s=0.1)
    async with running(task):
        await eventually(step.ran(6), "four failures, then passes that succeed", DEADLINE_S, interval_s=0.01)
        assert task.status.failures_in_a_row == 0 and task.status.last_success_monotonic >= step.times[4]
    assert step.failures_seen[:6] == [0, 1, 2, 3, 4, 0], "counted in a row, reset by the first success"
    gaps = [later - earlier for earlier, later in zip(step.times, step.times[1:], strict=False)]
    for failures, gap in enumerate(gaps[:4], start=1):
        ceiling = min(0.1, 0.01 * 2**failures)
        assert gap >= ceiling / 2 * 0.9, (failures, gap)  # at least half the back-off's ceiling


async def test_a_failed_hand_over_counts_as_a_failure() -> None:
    step, hand_over = Step(), Step(failing=1)
    task = task_of(step, FOREVER_S, hand_over=hand_over)
    async with running(task):
        await eventually(step.ran(1), "the first pass", DEADLINE_S, interval_s=0.01)
    assert step.failures_seen == [1], "the step ran after the failed hand-over and saw it counted"
    assert task.status.failures_in_a_row == 0, "the step's success reset it"


def test_the_backoff_is_jittered_exponential_and_capped() -> None:
    random.seed(14)
    assert backoff_s(0.5, 0, 10.0) == 0.5, "the interval while nothing fails"
    for failures in range(1, 12):
        ceiling = min(10.0, 0.5 * 2**failures)
        pauses = [backoff_s(0.5, failures, 10.0) for _ in range(50)]
        assert all(ceiling / 2 <= pause <= ceiling for pause in pauses), (failures, min(pauses), max(pauses))
        assert len(set(pauses)) > 1, "jittered: replicas do not retry in step"
    assert backoff_s(1.0, 100_000, 10.0) <= 10.0, "an outage of days does not overflow the float"


async def test_readiness_reflects_the_status() -> None:
    step = Step()
    task = task_of(step, FOREVER_S)
    check, stale = task.readiness(), task.readiness(stale_after_s=1.0)
    with pytest.raises(RuntimeError, match="test task is not running"):
        await check()
    async with running(task):
        await eventually(step.ran(1), "the first pass", DEADLINE_S, interval_s=0.01)
        await check()
        await stale()  # the pass just succeeded

        async def gone_stale() -> bool:
            try:
                await stale()
            except RuntimeError as exc:
                return "no successful pass for more than" in str(exc)
            return False

        await eventually(gone_stale, "no success for longer than a second (the next pass is an hour away)", DEADLINE_S)
        await check()  # running is enough without `stale_after_s`
    with pytest.raises(RuntimeError, match="not running"):
        await check()


class FakeConsumer:
    """What a ConsumerLoop uses of an AIOKafkaConsumer: getmany, answering a queued batch or nothing at its timeout."""

    def __init__(self) -> None:
        self.batches: asyncio.Queue[Records] = asyncio.Queue()

    async def getmany(self, timeout_ms: int, max_records: int) -> Records:
        try:
            return await asyncio.wait_for(self.batches.get(), timeout_ms / 1000)
        except TimeoutError:
            return {}


async def test_a_consumer_loop_handles_each_polled_record_in_order() -> None:
    consumer, applied = FakeConsumer(), []

    async def apply(record: Any) -> None:
        applied.append(record)

    loop = ConsumerLoop("test follower", consumer, each_record(apply), poll_timeout_ms=20)
    async with running(loop):
        await consumer.batches.put({"p0": ["a", "b"], "p1": ["c"]})

        async def all_applied() -> bool:
            return applied == ["a", "b", "c"]

        await eventually(all_applied, "each record of the batch applied", DEADLINE_S, interval_s=0.01)
        await loop.readiness(stale_after_s=DEADLINE_S)()  # polls keep it fresh with no records coming
    assert not loop.status.running


async def test_a_failed_consumer_pass_ends_the_loop() -> None:
    """A poll consumed its records: retrying would skip them, so the failure ends the loop (and the process)."""
    consumer = FakeConsumer()

    async def fails(batch: Records) -> None:
        if batch:
            raise RuntimeError("the broker took no dead letter")

    loop = ConsumerLoop("test follower", consumer, fails, poll_timeout_ms=20)
    runner = asyncio.create_task(loop.run())
    await consumer.batches.put({"p0": ["bad"]})
    with pytest.raises(RuntimeError, match="no dead letter"):
        await asyncio.wait_for(runner, DEADLINE_S)
    assert not loop.status.running


async def test_a_retry_inside_a_consumer_pass_is_counted_and_waits_until_stopped() -> None:
    async def ignore(batch: Records) -> None:
        pass

    loop = ConsumerLoop("test collector", FakeConsumer(), ignore, retry_s=FOREVER_S)
    waiting = asyncio.create_task(loop.after_failure("storing a letter", RuntimeError("the database is away")))

    async def counted() -> bool:
        return loop.status.failures_in_a_row == 1

    await eventually(counted, "the failure counted", DEADLINE_S, interval_s=0.01)
    assert not waiting.done(), "it waits its back-off (an hour and more here)"
    loop.stop()
    await asyncio.wait_for(waiting, DEADLINE_S)  # cut short by stop()
    loop.succeeded()
    assert loop.status.failures_in_a_row == 0, "the retry that went through resets the count"

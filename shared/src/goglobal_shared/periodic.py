"""Background loops: what every loop of a service has (a stop, a running flag, an error policy, a readiness
check) written once, and `PeriodicTask` for the loops that work on a clock.

Why one module: loops that each hand-roll these pieces drift apart (one backs off while failing, the others
retry at full rate; one counts a failed pass as its last pass), and readiness then means something different for
each. Here they are one thing:

- `PeriodicTask` runs its `step` every `interval_s`, at once when `wake()`n, and ends cleanly on `stop()`. It may
  have a `hand_over` too, which runs every time the task wakes at all (`nudge()`, `wake()`, or the clock) while
  the step keeps its own clock: what a writer of this process hands over (the relay's events, the deliveries
  notifications created claimed) goes out at once, and the scan for everything else stays on the clock. A step that
  returns `Outcome.MORE` (it stopped at a full batch) runs again at once. The outbox relays, the notifications
  dispatcher, matching's expiry scheduler and the metrics samplers run on it.
- Error policy: a pass that raises is logged (with its traceback the first time in a row), counted in
  `failures_in_a_row`, and the next step waits a jittered exponential back-off from the interval up to
  `max_backoff_s` instead of the interval: a database or broker that is away is not hammered, and replicas do
  not retry in step. A successful pass resets the count. A pass can simply be repeated: it finds its work
  afresh each time (a query, a batch handed over again by the scan that follows).
- `ConsumerLoop` is for the loops that wait in a Kafka poll (matching's directory follower, intake's API-key
  revocation follower and its dead-letter collector). `getmany` returns when records come or at its timeout,
  so the poll is their clock and there is nothing to wake: forcing them onto an interval would only add a wait.
  Their error policy differs on purpose: a poll consumes (the consumer's position moves past what it returned),
  so repeating a failed pass would skip the records it did not finish. A failure therefore ends the loop, and
  `runtime.BackgroundLoops` ends the process, whose restart resumes from the committed offsets (or reads the
  topic again). Inside a pass, a loop that must retry one record until it goes through (the collector storing
  a letter) uses the same count and back-off (`ConsumerLoop.after_failure`).
- `Loop.readiness()` is the one check /readyz uses for a loop: it fails while the loop is not running, and,
  given `stale_after_s`, when no pass succeeded for that long. Failures in a row alone do not make a service
  unready: a relay that cannot publish while the broker is away is the `kafka` check's to report (intake stays
  ready then on purpose: it keeps taking requests into its outbox).
"""

import asyncio
import contextlib
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the store's relays use this module too, and need no broker library for it
    from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

log = logging.getLogger(__name__)

MAX_DOUBLINGS = 30  # 2**30 intervals is past any max_backoff_s; beyond it the float would overflow


class Outcome(Enum):
    """What a pass of a `PeriodicTask` did (a step that returns None did `DONE`)."""

    IDLE = "idle"  # nothing was there to do (an empty hand-over): not a pass, the status is left as it was
    DONE = "done"  # a successful pass: the next step is an interval away
    MORE = "more"  # a successful pass that left work waiting (a full batch): the next step runs at once


Step = Callable[[], Awaitable[Outcome | None]]
Check = Callable[[], Awaitable[None]]  # goglobal_shared.health.Check: raises when the loop is not usable
Records = dict["TopicPartition", list["ConsumerRecord[bytes, bytes]"]]  # what a consumer's getmany returns
HandleRecords = Callable[[Records], Awaitable[None]]


@dataclass
class LoopStatus:
    """What /readyz (and a test) reads of a loop."""

    running: bool = False
    last_success_monotonic: float = 0.0  # when the last pass succeeded (0: none yet)
    failures_in_a_row: int = 0


def backoff_s(base_s: float, failures_in_a_row: int, max_s: float) -> float:
    """`base_s` while nothing fails; after n failures in a row, a random pause between half and all of
    min(max_s, base_s * 2**n): growing, so an outage is not hammered, and jittered, so replicas drift apart."""
    if failures_in_a_row == 0:
        return base_s
    ceiling = min(max_s, base_s * 2 ** min(failures_in_a_row, MAX_DOUBLINGS))
    return random.uniform(ceiling / 2, ceiling)


class Wakeup:
    """What a loop waits on between passes: `stop`, `wake` (the step is wanted now), `nudge` (only a hand-over
    is waiting). It stands apart from the task so that whoever feeds a task can be built before it: notifications'
    `Handoff` holds the dispatcher's, with no reference to the dispatcher."""

    def __init__(self) -> None:
        self._signal = asyncio.Event()
        self._stopping = False
        self._step_wanted = False

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        self._stopping = True
        self._signal.set()

    def wake(self) -> None:
        self._step_wanted = True
        self._signal.set()

    def nudge(self) -> None:
        self._signal.set()

    def rearm(self) -> None:
        """At the start of a round: a wake or nudge from now on ends the next wait."""
        self._signal.clear()

    def take_step_wanted(self) -> bool:
        wanted, self._step_wanted = self._step_wanted, False
        return wanted

    async def sleep(self, seconds: float) -> None:
        """Waits `seconds`, or less if woken, nudged or stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._signal.wait(), timeout=max(0.0, seconds))


class Loop(ABC):
    """The pieces every background loop has: a name (in logs and readiness), a status, the error policy's
    count and back-off, and a clean stop. `run` is what `runtime.BackgroundLoops` starts."""

    def __init__(
        self, name: str, max_backoff_s: float, status: LoopStatus | None = None, wakeup: Wakeup | None = None
    ) -> None:
        self.name = name
        self.max_backoff_s = max_backoff_s
        self.status = status if status is not None else LoopStatus()
        self.wakeup = wakeup if wakeup is not None else Wakeup()

    @property
    def stopping(self) -> bool:
        return self.wakeup.stopping

    def stop(self) -> None:
        """Ends the loop after the pass in hand; a wait in between ends at once."""
        self.wakeup.stop()

    async def run(self) -> None:
        self.status.running = True
        try:
            await self._passes()
        finally:
            self.status.running = False

    @abstractmethod
    async def _passes(self) -> None:
        """Runs passes until `stopping`."""

    def succeeded(self) -> None:
        self.status.failures_in_a_row = 0
        self.status.last_success_monotonic = time.monotonic()

    def failed(self, what: str, exc: Exception) -> None:
        self.status.failures_in_a_row += 1
        in_a_row = self.status.failures_in_a_row
        # The traceback once per streak: an outage of minutes would otherwise fill the log with the same one.
        trace = exc if in_a_row == 1 else None
        log.warning("%s: %s failed (%d in a row): %s", self.name, what, in_a_row, exc, exc_info=trace)

    def pause_s(self, base_s: float) -> float:
        return backoff_s(base_s, self.status.failures_in_a_row, self.max_backoff_s)

    def readiness(self, stale_after_s: float | None = None) -> Check:
        """The /readyz check of this loop: fails while it is not running and, with `stale_after_s`, when no pass
        succeeded for that long."""
        status, name = self.status, self.name

        async def check() -> None:
            if not status.running:
                raise RuntimeError(f"{name} is not running")
            if stale_after_s is not None and time.monotonic() - status.last_success_monotonic > stale_after_s:
                raise RuntimeError(f"{name}: no successful pass for more than {stale_after_s:.0f}s")

        return check


class LoopOwner:
    """Something that runs on a loop (a relay, the dispatcher, a follower): `stop` and `run` are its loop's, which
    is what `runtime.BackgroundLoops` and the tests call."""

    loop: Loop

    def stop(self) -> None:
        self.loop.stop()

    async def run(self) -> None:
        await self.loop.run()


class PeriodicTask(Loop):
    """Runs `step` every `interval_s` (from the end of one pass to the start of the next), at once on `wake()`,
    and `hand_over` every time it wakes for any reason (see the module docstring)."""

    def __init__(
        self,
        name: str,
        step: Step,
        interval_s: float,
        *,
        hand_over: Step | None = None,
        max_backoff_s: float = 10.0,
        status: LoopStatus | None = None,
        wakeup: Wakeup | None = None,
    ) -> None:
        super().__init__(name, max_backoff_s, status, wakeup)
        self.step = step
        self.interval_s = interval_s
        self.hand_over = hand_over

    def wake(self) -> None:
        """Run the step now rather than at its time."""
        self.wakeup.wake()

    def nudge(self) -> None:
        """Something was handed over: run the hand-over now; the step keeps its clock."""
        self.wakeup.nudge()

    async def _passes(self) -> None:
        next_step = 0.0  # the first step runs at once
        while not self.stopping:
            self.wakeup.rearm()
            if self.hand_over is not None:
                await self._pass(self.hand_over)
            if self.wakeup.take_step_wanted() or time.monotonic() >= next_step:
                outcome = await self._pass(self.step)
                pause = 0.0 if outcome is Outcome.MORE else self.pause_s(self.interval_s)
                next_step = time.monotonic() + pause
            await self.wakeup.sleep(next_step - time.monotonic())

    async def _pass(self, step: Step) -> Outcome | None:
        """What the pass did; None if it failed (logged and counted)."""
        try:
            outcome = await step()
        except Exception as exc:
            self.failed("a pass", exc)
            return None
        if outcome is Outcome.IDLE:
            return outcome
        self.succeeded()
        return Outcome.DONE if outcome is None else outcome


def each_record(apply: Callable[["ConsumerRecord[bytes, bytes]"], Awaitable[None]]) -> HandleRecords:
    """A batch handled one record at a time, partition after partition (a follower's way)."""

    async def handle(batch: Records) -> None:
        for records in batch.values():
            for record in records:
                await apply(record)

    return handle


class ConsumerLoop(Loop):
    """Polls `consumer` and hands each batch to `handle` until stopped: a pass is one poll, and it succeeds when
    the poll answers. A failure ends the loop (see the module docstring for why)."""

    def __init__(
        self,
        name: str,
        consumer: "AIOKafkaConsumer",
        handle: HandleRecords,
        *,
        max_records: int = 500,
        poll_timeout_ms: int = 500,
        retry_s: float = 1.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        super().__init__(name, max_backoff_s)
        self.consumer = consumer
        self.handle = handle
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.retry_s = retry_s

    async def poll(self, timeout_ms: int | None = None) -> None:
        """One poll and its records; also what a follower catching up calls before the loop runs."""
        timeout = self.poll_timeout_ms if timeout_ms is None else timeout_ms
        batch: Records = await self.consumer.getmany(timeout_ms=timeout, max_records=self.max_records)
        self.succeeded()
        await self.handle(batch)

    async def _passes(self) -> None:
        while not self.stopping:
            await self.poll()

    async def after_failure(self, what: str, exc: Exception) -> None:
        """A retry inside a pass failed: logged, counted, then the back-off (cut short by `stop`)."""
        self.failed(what, exc)
        await self.wakeup.sleep(self.pause_s(self.retry_s))

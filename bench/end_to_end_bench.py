"""End-to-end latency: from intake's `201` for a service request to the partner's webhook receiving the VERIFIED
`referral_offered` event for that referral, at fixed offered rates, and the highest rate held without a growing
backlog.

Run from the repository root::

    .venv/bin/python -m bench.end_to_end_bench            # 50, 100, 200 requests/s for 20 s each, then a 60 s hold
    .venv/bin/python -m bench.end_to_end_bench --quick    # 5 s steps, a 20 s hold

All three services run as real processes (`python -m intake|matching|notifications`) in a fresh namespace; the
directory has one partner (legal in AE and SA) whose webhook is a Standard Webhooks receiver on loopback inside
this process (`tests/webhook_receiver.py`), which checks every signature with the partner's secret. Each request
has one need, so one request is one referral and one offer. The load is open-loop: request i is sent at
`start + i / rate` whatever happened to the earlier ones (httpx, asyncio), so a slow system meets the same
arrivals and its queues show up as latency and backlog instead of as a slower client.

Latency is `webhook received - 201 received`, per referral. A step's backlog is requests accepted minus offers
delivered, sampled every second; it "grows" when its slope over the last three quarters of the step exceeds 5% of
the offered rate (deliveries fall more than 5% behind arrivals). Consumer lag and outbox backlogs are read from
each service's `/metrics` (`goglobal_consumer_lag`, `goglobal_outbox_backlog`) every few seconds.
This is not a test: nothing asserts a timing.
"""

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from starlette.requests import Request
from starlette.responses import Response

from bench.common import (
    OFFERED_TYPE,
    REQUEST_BODY,
    SERVICES,
    Parties,
    Result,
    System,
    Table,
    bearer,
    log,
    metric_sum,
    ms,
    percentile,
    scrape,
    setup_parties,
    show,
    sleep_until,
    system,
    wait_until_offered,
)
from tests.webhook_receiver import Receiver, running

RATES = (50.0, 100.0, 200.0)
GROWTH_TOLERANCE = 0.05  # backlog slope, as a share of the offered rate per second
MAX_IN_FLIGHT = 512  # requests awaiting their answer; beyond it the generator counts a send as dropped


@dataclass
class TimingReceiver(Receiver):
    """The test receiver, noting when each referral's verified offer first arrived (monotonic clock)."""

    arrivals: dict[str, float] = field(default_factory=dict)

    async def handle(self, request: Request) -> Response:
        response = await super().handle(request)
        if response.status_code == 204:
            event = self.handled.get(request.headers.get("webhook-id", ""))
            if event is not None and event.get("type") == OFFERED_TYPE:
                self.arrivals.setdefault(str(event["subject"]), time.monotonic())
        return response


@dataclass
class Sample:
    at: float  # seconds since the step started
    accepted: int
    delivered: int

    @property
    def backlog(self) -> int:
        return self.accepted - self.delivered


@dataclass
class Step:
    label: str
    rate: float
    duration_s: float
    sent: int = 0
    dropped: int = 0  # not sent: MAX_IN_FLIGHT requests were already waiting
    errors: int = 0
    accepted: dict[str, float] = field(default_factory=dict)  # referral id -> 201 received (monotonic)
    http_latencies: list[float] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    max_lateness_s: float = 0.0  # how far behind schedule the generator sent a request
    max_lag: dict[str, float] = field(default_factory=dict)  # service -> highest consumer lag seen
    max_outbox: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # inf for referrals never delivered
    delivered_in_window: int = 0
    drain_s: float = 0.0

    @property
    def achieved_rate(self) -> float:
        return len(self.accepted) / self.duration_s

    @property
    def delivered_rate(self) -> float:
        return self.delivered_in_window / self.duration_s

    @property
    def backlog_slope(self) -> float:
        """Least-squares slope (requests/s) of the backlog over the last three quarters of the window."""
        points = [s for s in self.samples if s.at >= self.duration_s * 0.25]
        if len(points) < 3:
            return 0.0
        xs, ys = [p.at for p in points], [float(p.backlog) for p in points]
        mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
        denominator = sum((x - mean_x) ** 2 for x in xs)
        return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / denominator if denominator else 0

    @property
    def keeps_up(self) -> bool:
        return (
            self.errors == 0
            and self.dropped == 0
            and self.achieved_rate >= 0.95 * self.rate
            and self.backlog_slope <= GROWTH_TOLERANCE * self.rate
        )

    @property
    def delivered(self) -> int:
        return sum(1 for latency in self.latencies if latency != float("inf"))


async def run_step(
    http: httpx.AsyncClient,
    receiver: TimingReceiver,
    system_: System,
    parties: Parties,
    label: str,
    rate: float,
    duration_s: float,
    drain_deadline_s: float,
) -> Step:
    step = Step(label, rate, duration_s)
    headers = bearer(parties.enterprise_key)
    delivered_before = len(receiver.arrivals)
    in_flight: set[asyncio.Task[None]] = set()

    async def one(scheduled: float) -> None:
        try:
            answer = await http.post("/v1/service-requests", json=REQUEST_BODY, headers=headers)
            done = time.monotonic()
            if answer.status_code != 201:
                step.errors += 1
                return
            step.accepted[str(answer.json()["referrals"][0]["id"])] = done
            step.http_latencies.append(done - scheduled)
        except httpx.HTTPError:
            step.errors += 1

    async def sample_every_second(start: float) -> None:
        while True:
            await asyncio.sleep(1.0)
            step.samples.append(
                Sample(time.monotonic() - start, len(step.accepted), len(receiver.arrivals) - delivered_before)
            )

    async def watch_metrics() -> None:
        while True:
            for name, service in system_.services.items():
                text = await scrape(http, service.url)
                if text:
                    step.max_lag[name] = max(step.max_lag.get(name, 0.0), metric_sum(text, "goglobal_consumer_lag"))
                    outbox = metric_sum(text, "goglobal_outbox_backlog")
                    step.max_outbox[name] = max(step.max_outbox.get(name, 0.0), outbox)
            await asyncio.sleep(2.0)

    total = round(rate * duration_s)
    start = time.monotonic() + 0.05
    sampler = asyncio.create_task(sample_every_second(start))
    watcher = asyncio.create_task(watch_metrics())
    try:
        for i in range(total):
            scheduled = start + i / rate
            await sleep_until(scheduled)
            step.max_lateness_s = max(step.max_lateness_s, time.monotonic() - scheduled)
            if len(in_flight) >= MAX_IN_FLIGHT:
                step.dropped += 1
                continue
            task = asyncio.create_task(one(scheduled))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            step.sent += 1
        await sleep_until(start + duration_s)
        window_end = time.monotonic()
        step.delivered_in_window = len(receiver.arrivals) - delivered_before
        if in_flight:
            await asyncio.gather(*in_flight)
        drain_end = window_end + drain_deadline_s
        while time.monotonic() < drain_end and any(r not in receiver.arrivals for r in step.accepted):
            await asyncio.sleep(0.2)
        step.drain_s = time.monotonic() - window_end
    finally:
        sampler.cancel()
        watcher.cancel()
        for task in (sampler, watcher):
            with contextlib.suppress(asyncio.CancelledError):
                await task
    step.latencies = [
        receiver.arrivals[r] - accepted if r in receiver.arrivals else float("inf")
        for r, accepted in step.accepted.items()
    ]
    return step


HEADERS = [
    "step",
    "offered",
    "achieved",
    "delivered in window",
    "requests",
    "delivered",
    "e2e p50",
    "e2e p99",
    "e2e max",
    "201 p50",
    "201 p99",
    "backlog slope",
    "max lag i/m/n",
    "keeps up",
]


def cells(step: Step) -> list[str]:
    finite = [x for x in step.latencies if x != float("inf")]
    lag = "/".join(f"{step.max_lag.get(name, 0):,.0f}" for name in SERVICES)
    return [
        step.label,
        f"{step.rate:,.0f}/s",
        f"{step.achieved_rate:,.1f}/s",
        f"{step.delivered_rate:,.1f}/s",
        f"{len(step.accepted):,}"
        + (f" (+{step.errors} err, {step.dropped} dropped)" if step.errors or step.dropped else ""),
        f"{step.delivered:,}",
        ms(percentile(step.latencies, 0.5)),
        ms(percentile(step.latencies, 0.99)),
        ms(max(finite)) if finite else "-",
        ms(percentile(step.http_latencies, 0.5)),
        ms(percentile(step.http_latencies, 0.99)),
        f"{step.backlog_slope:+,.1f}/s",
        lag,
        "yes" if step.keeps_up else "no",
    ]


async def measure(quick: bool) -> Result:
    step_s = 5.0 if quick else 20.0
    hold_s = 20.0 if quick else 60.0
    drain_s = 30.0 if quick else 60.0
    started = time.monotonic()
    steps: list[Step] = []
    holds: list[Step] = []
    receiver = TimingReceiver()
    async with system("e2e") as stack, running(receiver):
        log("end-to-end: starting intake, matching, notifications")
        await stack.start_ready(*SERVICES)
        intake_url = stack.services["intake"].url
        parties = await setup_parties(stack.namespace, intake_url, receiver.url)
        receiver.secrets.append(parties.webhook_secret)
        await wait_until_offered(intake_url, parties)
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
        async with httpx.AsyncClient(base_url=intake_url, timeout=60, limits=limits) as http:
            log("end-to-end: warm-up, 10 requests/s for 5 s")
            await run_step(http, receiver, stack, parties, "warm-up", 10, 5, drain_s)
            for rate in RATES:
                log(f"end-to-end: {rate:.0f} requests/s for {step_s:.0f} s")
                step = await run_step(http, receiver, stack, parties, f"{rate:.0f}/s", rate, step_s, drain_s)
                steps.append(step)
                log(f"  -> {' | '.join(cells(step)[2:])}")
            # The hold: from the highest step rate that kept up (or what was delivered at the first step), hold
            # for `hold_s`; if the backlog grows, retry at three quarters of the rate, at most three times.
            kept = [s.rate for s in steps if s.keeps_up]
            rate = max(kept) if kept else max(10.0, round(steps[0].delivered_rate * 0.8 / 5) * 5)
            for _attempt in range(3):
                leftover = sum(1 for s in steps + holds for r in s.accepted if r not in receiver.arrivals)
                if leftover:
                    log(f"end-to-end: waiting for {leftover} earlier referrals to drain")
                    await drain_all(receiver, steps + holds, 120.0)
                log(f"end-to-end: hold {rate:.0f} requests/s for {hold_s:.0f} s")
                hold = await run_step(http, receiver, stack, parties, f"hold {rate:.0f}/s", rate, hold_s, drain_s)
                holds.append(hold)
                log(f"  -> {' | '.join(cells(hold)[2:])}")
                if hold.keeps_up:
                    break
                rate = max(5.0, round(rate * 0.75 / 5) * 5)
        receiver_rejected = receiver.rejected
    sustained = next((h for h in holds if h.keeps_up), None)
    table = Table(
        f"End-to-end: 201 -> verified referral_offered at the partner's webhook ({step_s:.0f} s steps, "
        f"{hold_s:.0f} s hold)",
        HEADERS,
        [cells(s) for s in [*steps, *holds]],
        notes=[
            "`offered` is the open-loop arrival rate; `achieved` the 201s per second of the window; `delivered in "
            "window` the verified offers that reached the webhook during the window (any referral). `e2e` is webhook "
            "arrival minus the 201, per referral, including those delivered while the backlog drained after the "
            "window (at most "
            f"{drain_s:.0f} s; `not delivered` when a percentile falls beyond it). `201` is the HTTP latency from "
            "the scheduled send. `backlog slope` is the growth of accepted-minus-delivered over the last three "
            f"quarters of the window; a step keeps up when it stays under {GROWTH_TOLERANCE:.0%} of the offered "
            "rate, every request got its 201 and the generator achieved 95% of the rate. `max lag i/m/n` is the "
            "highest `goglobal_consumer_lag` (records, all partitions) seen at intake / matching / notifications.",
            f"Signatures refused by the receiver: {receiver_rejected}.",
        ],
    )
    headline = (
        f"highest rate held for {hold_s:.0f} s without a growing backlog: {sustained.rate:.0f} requests/s "
        f"(e2e p50 {ms(percentile(sustained.latencies, 0.5))}, p99 {ms(percentile(sustained.latencies, 0.99))})"
        if sustained
        else f"no rate tried was held for {hold_s:.0f} s without a growing backlog "
        f"(tried {', '.join(f'{h.rate:.0f}' for h in holds)} requests/s)"
    )
    return Result("end_to_end", [table], [headline], time.monotonic() - started)


async def drain_all(receiver: TimingReceiver, steps: Sequence[Step], deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and any(r not in receiver.arrivals for s in steps for r in s.accepted):
        await asyncio.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.end_to_end_bench", description=description)
    parser.add_argument("--quick", action="store_true", help="5 s steps and a 20 s hold")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.quick))
    show(*result.tables)
    for line in result.headlines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

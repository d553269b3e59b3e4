"""End-to-end latency: from intake's `201` for a service request to the partner's webhook receiving the VERIFIED
`referral_offered` event for that referral, at fixed offered rates, and the highest rate held without a growing
backlog.

Run from the repository root::

    .venv/bin/python -m bench.end_to_end_bench            # 50, 100, 200 requests/s for 20 s each, then 60 s holds
    .venv/bin/python -m bench.end_to_end_bench --quick    # one system: two 10 s holds, then 3 s steps

All three services run as real processes (`python -m intake|matching|notifications`) in a fresh namespace; the
directory has one partner (legal in AE and SA) whose webhook is a Standard Webhooks receiver on loopback inside
this process (`tests/webhook_receiver.py`), which checks every signature with the partner's secret. Each request
has one need, so one request is one referral and one offer. The load is open-loop: request i is sent at
`start + i / rate` whatever happened to the earlier ones (httpx, asyncio), so a slow system meets the same
arrivals and its queues show up as latency and backlog instead of as a slower client.

Latency is `webhook received - 201 received`, per referral. A step's backlog is requests accepted minus offers
delivered, every half second (reconstructed from the timestamps afterwards); it "grows" when its slope over the
last three quarters of the step exceeds 5% of the offered rate (deliveries fall more than 5% behind arrivals),
with a floor of 3 referrals over that span for low rates, where the polling intervals of the relays and of the
dispatcher alone move the backlog by that much.
Consumer lag is read from each service's `/metrics` (`goglobal_consumer_lag`) every two seconds.

Each overload step (50, 100, 200 requests/s) runs on freshly started services, since a backlog left by one step
would delay the next. Then the holds search the highest sustained rate: the first starts at 80% of what the
steps delivered per second, rounded down to a rate of the ladder (0.5, 1, 1.5, 2, 3, 4, 5, 8, 10, 15, 20, 30,
...); a rate that held is followed by the next one up, one that fell behind by the next one down (on fresh
services), until a rate would be tried twice or three holds were made. This is not a test: nothing asserts a
timing.
"""

import argparse
import asyncio
import bisect
import contextlib
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
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
    handling_means,
    log,
    metric_sum,
    ms,
    percentile,
    scrape,
    setup_parties,
    show,
    sleep_until,
    system,
    until,
    wait_until_offered,
)
from tests.webhook_receiver import Receiver, running

RATES = (50.0, 100.0, 200.0)
# Rates the search for the highest sustained rate moves along.
LADDER = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0)
QUICK_START = 2.0  # where --quick starts its search (it has no overload steps to estimate from beforehand)
OFFERED_EVENT = "hk.goglobal.referral.offered.v1"
# The partners accept every offer and so hold it open (capacity 1,000 each): enough of them for every referral that
# one system sees across its holds. With one partner, a system that had taken 1,000 referrals offered no more.
PARTNERS = 8
GROWTH_TOLERANCE = 0.05  # backlog slope, as a share of the offered rate per second
GROWTH_FLOOR = 3.0  # ... but a growth of up to 3 referrals over the fitted span is noise (polling intervals)
MAX_IN_FLIGHT = 512  # requests awaiting their answer; beyond it the generator counts a send as dropped


@dataclass
class TimingReceiver(Receiver):
    """The test receiver, noting when each referral's verified offer first arrived (monotonic clock). Like a real
    partner system it accepts each offer the moment it arrives, once, without retrying, and counts the answers:
    intake records an offer before the partner hears of it, so none may be 404 or 409."""

    arrivals: dict[str, float] = field(default_factory=dict)
    intake: httpx.AsyncClient | None = None  # set once the partners' keys exist
    keys: dict[str, str] = field(default_factory=dict)  # partner id -> its API key, to accept as that partner
    accept_answers: Counter[int] = field(default_factory=Counter)
    _accepting: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, request: Request) -> Response:
        response = await super().handle(request)
        if response.status_code == 204:
            event = self.handled.get(request.headers.get("webhook-id", ""))
            if event is not None and event.get("type") == OFFERED_TYPE and event["subject"] not in self.arrivals:
                self.arrivals[str(event["subject"])] = time.monotonic()
                self._accept(str(event["subject"]), str(event["data"]["partner_id"]))
        return response

    def _accept(self, referral_id: str, partner_id: str) -> None:
        if self.intake is None:
            return
        task = asyncio.get_running_loop().create_task(self._post_accept(self.intake, referral_id, partner_id))
        self._accepting.add(task)
        task.add_done_callback(self._accepting.discard)

    async def _post_accept(self, intake: httpx.AsyncClient, referral_id: str, partner_id: str) -> None:
        try:
            answer = await intake.post(f"/v1/referrals/{referral_id}/accept", headers=bearer(self.keys[partner_id]))
        except (httpx.HTTPError, RuntimeError):  # RuntimeError: the system (and its client) closed meanwhile
            self.accept_answers[0] += 1  # no answer at all
            return
        self.accept_answers[answer.status_code] += 1

    @property
    def refused_accepts(self) -> int:
        return self.accept_answers[404] + self.accept_answers[409]


@dataclass
class Sample:
    at: float  # seconds since the step's first scheduled request
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
    max_lag: dict[str, float] = field(default_factory=dict)  # service -> highest consumer lag seen
    latencies: list[float] = field(default_factory=list)  # inf for referrals never delivered
    accepted_in_window: int = 0
    delivered_in_window: int = 0  # of this step's referrals
    drain_s: float = 0.0

    @property
    def achieved_rate(self) -> float:
        return self.accepted_in_window / self.duration_s

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
            and self.backlog_slope <= self.slope_tolerance
        )

    @property
    def slope_tolerance(self) -> float:
        span = self.duration_s * 0.75
        return max(GROWTH_TOLERANCE * self.rate, GROWTH_FLOOR / span)

    @property
    def delivered(self) -> int:
        return sum(1 for latency in self.latencies if latency != float("inf"))


async def run_step(
    env: "Env",
    receiver: TimingReceiver,
    label: str,
    rate: float,
    duration_s: float,
    drain_deadline_s: float,
) -> Step:
    step = Step(label, rate, duration_s)
    http = env.http
    headers = bearer(env.parties.enterprise_key)
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

    async def watch_metrics() -> None:
        while True:
            for name, service in env.stack.services.items():
                text = await scrape(http, service.url)
                if text:
                    step.max_lag[name] = max(step.max_lag.get(name, 0.0), metric_sum(text, "goglobal_consumer_lag"))
            await asyncio.sleep(2.0)

    total = round(rate * duration_s)
    start = time.monotonic() + 0.05
    watcher = asyncio.create_task(watch_metrics())
    try:
        for i in range(total):
            scheduled = start + i / rate
            await sleep_until(scheduled)
            if len(in_flight) >= MAX_IN_FLIGHT:
                step.dropped += 1
                continue
            task = asyncio.create_task(one(scheduled))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            step.sent += 1
        await sleep_until(start + duration_s)
        window_end = time.monotonic()
        if in_flight:
            await asyncio.gather(*in_flight)
        drain_end = window_end + drain_deadline_s
        await until(lambda: all(r in receiver.arrivals for r in step.accepted), drain_end)
        step.drain_s = time.monotonic() - window_end
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    step.latencies = [
        receiver.arrivals[r] - accepted if r in receiver.arrivals else float("inf")
        for r, accepted in step.accepted.items()
    ]
    # The backlog every half second, afterwards, from the timestamps (a sampling task would itself be late
    # whenever the generator keeps the event loop busy).
    accepted_at = sorted(step.accepted.values())
    delivered_at = sorted(receiver.arrivals[r] for r in step.accepted if r in receiver.arrivals)
    for k in range(1, int(duration_s * 2) + 1):
        at = start + k / 2
        step.samples.append(Sample(k / 2, bisect.bisect_right(accepted_at, at), bisect.bisect_right(delivered_at, at)))
    step.accepted_in_window = bisect.bisect_right(accepted_at, start + duration_s)
    step.delivered_in_window = bisect.bisect_right(delivered_at, start + duration_s)
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
        f"{step.rate:g}/s",
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


@dataclass
class Env:
    """One fresh system: the three services in a new namespace, the parties, and a client for intake."""

    stack: System
    parties: Parties
    http: httpx.AsyncClient


@contextlib.asynccontextmanager
async def fresh_system(receiver: TimingReceiver, warm_up: bool = True) -> AsyncIterator[Env]:
    """The three services in a new namespace, ready, with the directory loaded into matching and one referral
    taken all the way to the webhook; then (`warm_up`) six more at 2/s, so that connections are open."""
    async with system("e2e") as stack:
        await stack.start_ready(*SERVICES)
        intake_url = stack.services["intake"].url
        parties = await setup_parties(stack.namespace, intake_url, receiver.url, partners=PARTNERS)
        receiver.secrets.extend(parties.webhook_secrets.values())
        receiver.keys.update(parties.partner_keys)
        first = await wait_until_offered(intake_url, parties)
        if not await until(lambda: first in receiver.arrivals, time.monotonic() + 60):
            raise RuntimeError(f"the offer of {first} never reached the webhook; logs in {stack.log_dir}")
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
        partner = httpx.AsyncClient(base_url=intake_url, timeout=60, limits=limits)
        async with httpx.AsyncClient(base_url=intake_url, timeout=60, limits=limits) as http, partner:
            receiver.intake = partner
            env = Env(stack, parties, http)
            if warm_up:
                await run_step(env, receiver, "warm-up", 2, 3, 10)
            yield env


async def handling_table(env: Env) -> dict[str, dict[str, tuple[float, float]]]:
    return {name: handling_means(await scrape(env.http, s.url)) for name, s in env.stack.services.items()}


def next_rate(rate: float, up: bool) -> float:
    if up:
        return next((r for r in LADDER if r > rate), rate)
    return next((r for r in reversed(LADDER) if r < rate), rate)


@dataclass
class Search:
    """The search for the highest rate held for a whole window without a growing backlog."""

    hold_s: float
    drain_s: float
    max_holds: int
    holds: list[Step] = field(default_factory=list)
    handling: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    async def run(self, receiver: TimingReceiver, rate: float, env: Env | None = None) -> None:
        """From `rate`, up the ladder after a rate held, down after one that was not, until the next rate was
        tried already. Without `env`, each try after one that fell behind gets freshly started services; with
        it, the search stays on that system and stops at the first rate that fell behind."""
        tried: dict[float, bool] = {}
        async with contextlib.AsyncExitStack() as exits:
            current = env
            while len(self.holds) < self.max_holds and rate not in tried:
                if current is None:
                    current = await exits.enter_async_context(fresh_system(receiver))
                log(f"end-to-end: hold {rate:g} requests/s for {self.hold_s:.0f} s")
                hold = await run_step(current, receiver, f"hold {rate:g}/s", rate, self.hold_s, self.drain_s)
                self.holds.append(hold)
                tried[rate] = hold.keeps_up
                log(f"  -> {' | '.join(cells(hold)[2:])}")
                if hold.keeps_up:
                    self.handling = await handling_table(current)
                elif env is not None:
                    break
                else:  # a backlog is left: the next try starts from an empty system
                    await exits.aclose()
                    current = None
                rate = next_rate(rate, up=hold.keeps_up)


async def measure(quick: bool) -> Result:
    """Full: each overload step on freshly started services, then the search for the sustained rate, starting
    from what the steps delivered. Quick: one system, the search first (from 2/s, two holds at most), then the
    three steps one after the other, each inheriting the backlog of the one before."""
    step_s = 3.0 if quick else 20.0
    drain_s = 3.0 if quick else 10.0
    search = Search(hold_s=10.0 if quick else 60.0, drain_s=drain_s, max_holds=2 if quick else 3)
    started = time.monotonic()
    steps: list[Step] = []

    async def step_at(env: Env, rate: float) -> None:
        log(f"end-to-end: {rate:.0f} requests/s for {step_s:.0f} s")
        step = await run_step(env, receiver, f"{rate:.0f}/s", rate, step_s, drain_s)
        steps.append(step)
        log(f"  -> {' | '.join(cells(step)[2:])}")

    receiver = TimingReceiver()
    async with running(receiver):
        if quick:
            async with fresh_system(receiver, warm_up=False) as env:
                await search.run(receiver, QUICK_START, env)
                for rate in RATES:
                    await step_at(env, rate)
        else:
            for rate in RATES:
                # Every step starts from an empty system: a backlog left by a faster step would delay the next.
                async with fresh_system(receiver) as env:
                    await step_at(env, rate)
            # What the pipeline delivered per second while saturated: where the search starts.
            capacity = max(s.delivered / (s.duration_s + s.drain_s) for s in steps)
            kept = [s.rate for s in steps if s.keeps_up]
            rate = max(kept) if kept else max([r for r in LADDER if r <= 0.8 * capacity] or [LADDER[0]])
            log(f"end-to-end: delivered up to {capacity:.1f} offers/s while saturated; holds start at {rate:g}/s")
            await search.run(receiver, rate)
        receiver_rejected = receiver.rejected
        accepts = dict(sorted(receiver.accept_answers.items()))
    holds, handling, hold_s = search.holds, search.handling, search.hold_s
    sustained = max((h for h in holds if h.keeps_up), key=lambda h: h.rate, default=None)
    tables = [
        Table(
            f"End-to-end: 201 -> verified referral_offered at the partner's webhook ({step_s:.0f} s steps, "
            f"{hold_s:.0f} s holds)",
            HEADERS,
            [cells(s) for s in [*steps, *holds]],
            notes=[
                (
                    "Quick run: one system; the holds came first, then the three steps one after the other, each "
                    "inheriting the backlog of the one before. "
                    if quick
                    else "Each rate step runs on freshly started services in a new namespace; the holds run on one "
                    "system, restarted after a hold that fell behind. "
                )
                + "`offered` is the open-loop arrival rate; `achieved` the "
                "201s per second of the window; `delivered in window` the verified offers that reached the webhook "
                "during the window. `e2e` is webhook arrival minus the 201, per referral, counting those delivered "
                f"while the backlog drained for up to {drain_s:.0f} s after the window (`not delivered` when a "
                "percentile falls beyond that). `201` is the HTTP latency from the scheduled send. `backlog slope` "
                "is the growth of accepted-minus-delivered over the last three quarters of the window; a rate keeps "
                f"up when it stays under {GROWTH_TOLERANCE:.0%} of the offered rate (or a growth of {GROWTH_FLOOR:.0f} "
                "referrals over that span, whichever is more), every request got its 201 and "
                "the generator achieved 95% of the rate. `max lag i/m/n` is the highest `goglobal_consumer_lag` "
                "(records behind, all partitions) seen at intake / matching / notifications.",
                f"Signatures refused by the receiver: {receiver_rejected}. The partner accepted every offer the "
                f"moment it arrived, once: answers by status {accepts} (404 or 409 would mean it was told of an "
                "offer intake had not recorded).",
            ],
        )
    ]
    per_referral: dict[str, float] = {}
    if handling:
        rows = []
        # Every service sees each offer once (intake applies it, matching and notifications follow it).
        referrals = max(kinds.get(OFFERED_EVENT, (0.0, 0.0))[0] for kinds in handling.values())
        for service, kinds in handling.items():
            for kind, (count, mean) in sorted(kinds.items()):
                if count >= 10:
                    share = ms(count * mean / referrals) if referrals else "-"
                    rows.append([service, kind.removeprefix("hk.goglobal."), f"{count:,.0f}", ms(mean), share])
            if referrals:
                per_referral[service] = sum(count * mean for count, mean in kinds.values()) / referrals
                rows.append([service, "all, per referral", "", "", ms(per_referral[service])])
        title = "Where the time goes: mean handling time per consumed event"
        tables.append(
            Table(
                f"{title} (at the {sustained.rate:g}/s hold)" if sustained else title,
                ["service", "event type", "handled", "mean", "per referral"],
                rows,
                notes=[
                    "From each service's `goglobal_event_handling_seconds`, over the whole life of the system that "
                    "held the rate: the handler alone (parsing, the dedupe check and the commit come on top). "
                    "`per referral` spreads each event type's total over the referrals offered (a batch's time is "
                    "shared among its events); "
                    "summed, it is the handler time a service spends on one referral, all of it waiting on the "
                    "database or on Kafka, on the same two cores as everything else."
                ],
            )
        )
    headline = (
        f"highest rate held for {hold_s:.0f} s without a growing backlog: {sustained.rate:g} requests/s "
        f"(e2e p50 {ms(percentile(sustained.latencies, 0.5))}, p99 {ms(percentile(sustained.latencies, 0.99))})"
        if sustained
        else f"no rate tried was held for {hold_s:.0f} s without a growing backlog "
        f"(tried {', '.join(f'{h.rate:g}' for h in holds)} requests/s)"
    )
    headlines = [headline]
    if per_referral:
        spent = ", ".join(f"{service} {ms(seconds)}" for service, seconds in per_referral.items())
        headlines.append(f"handler time per referral at that rate: {spent}")
    return Result("end_to_end", tables, headlines, time.monotonic() - started)


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.end_to_end_bench", description=description)
    parser.add_argument("--quick", action="store_true", help="one system, two 10 s holds, then 3 s steps")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.quick))
    show(*result.tables)
    for line in result.headlines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

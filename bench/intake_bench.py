"""Intake's `POST /v1/service-requests` throughput and latency at a fixed concurrency, against a bare FastAPI endpoint
doing the same single insert into the same database server (the storage limit).

Run from the repository root::

    .venv/bin/python -m bench.intake_bench            # 16 clients, up to 1,500 requests per side
    .venv/bin/python -m bench.intake_bench --quick    # 16 clients, up to 200 requests per side

Intake runs as a real process (`python -m intake`, in a fresh namespace; matching and notifications are not
started: the request path does not need them, and the outbox relay still publishes every `referral.submitted`
to Kafka as it does in production). The baseline is `bench/bare_app.py`, also uvicorn in its own process: one
`insert_one` of a document shaped exactly like intake's (made by intake's own code, into a collection with
intake's indexes), with no authentication, validation, domain code, middleware or relay. Both get the same
one-need JSON body from 16 concurrent keep-alive clients (httpx, closed loop: each sends its next request when the
answer to the previous one arrives), after a warm-up. The sides take turns, in three rounds of a third of the
requests each (--quick: two rounds), so that a change in the machine's load falls on all of them alike; a round
stops starting requests after 15 s (--quick: 6 s), so a slow side gets fewer requests rather than a longer run.

A third side sends every request with a fresh `Idempotency-Key`, which adds a second key check, the claim, the
key's lookup entry and the stored answer. This is not a test: nothing asserts a timing.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from bench.bare_app import intake_writes
from bench.common import (
    REQUEST_BODY,
    Result,
    System,
    Table,
    bearer,
    log,
    ms,
    percentile,
    show,
    system,
)
from tests import factories
from tests.support import eventually, free_port

CONCURRENCY = 16
TARGET_RATIO = 0.7
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Side:
    name: str
    url: str
    headers: Callable[[], dict[str, str]]
    pid: int
    seconds: float = 0.0
    requests: int = 0
    errors: int = 0
    cpu_s: float = 0.0  # CPU time the serving process used during the timed rounds
    latencies: list[float] = field(default_factory=list)
    round_rates: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def closed_loop(http: httpx.AsyncClient, side: Side, count: int, limit_s: float, timed: bool) -> None:
    """`count` requests from CONCURRENCY clients, each sending its next request once the last one is answered;
    no request is started after `limit_s` seconds (a side that slow gets fewer requests)."""
    remaining = count
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + limit_s

    async def client() -> None:
        nonlocal remaining, errors
        while remaining > 0 and time.perf_counter() < stop_at:
            remaining -= 1
            started = time.perf_counter()
            answer = await http.post(f"{side.url}/v1/service-requests", json=REQUEST_BODY, headers=side.headers())
            latencies.append(time.perf_counter() - started)
            if answer.status_code != 201:
                errors += 1

    cpu_before = cpu_seconds(side.pid)
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    if timed:
        side.seconds += elapsed
        side.requests += len(latencies)
        side.errors += errors
        side.latencies += latencies
        side.cpu_s += cpu_seconds(side.pid) - cpu_before
        side.round_rates.append(len(latencies) / elapsed)


def spawn_bare(stack: System) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log_file = (stack.log_dir / "bare.log").open("ab")
    command = [
        sys.executable,
        "-m",
        "bench.bare_app",
        "--port",
        str(port),
        "--mongodb-uri",
        stack.namespace.infra.mongodb_uri,
        "--database",
        stack.namespace.database("bare"),
    ]
    process = subprocess.Popen(command, stdout=log_file, stderr=log_file)
    return process, f"http://127.0.0.1:{port}"


async def wait_bare(stack: System, process: subprocess.Popen[bytes], url: str) -> None:
    async def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the bare app exited with {process.returncode}; see {stack.log_dir / 'bare.log'}")
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"{url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(healthy, "the bare app to listen", deadline_s=60, interval_s=0.2)


def cells(side: Side, bare: Side) -> list[str]:
    p50, p99 = percentile(side.latencies, 0.5), percentile(side.latencies, 0.99)
    bare_p50, bare_p99 = percentile(bare.latencies, 0.5), percentile(bare.latencies, 0.99)
    return [
        side.name,
        f"{side.requests:,}" + (f" ({side.errors} errors)" if side.errors else ""),
        f"{side.rate:,.0f}/s",
        f"{side.rate / bare.rate:.2f}",
        " / ".join(f"{rate:,.0f}" for rate in side.round_rates),
        ms(p50),
        ms(p99),
        f"{p50 / bare_p50:.2f}",
        f"{p99 / bare_p99:.2f}",
        f"{side.cpu_s / side.requests * 1e3:.1f} ms" if side.requests else "-",
    ]


HEADERS = [
    "side",
    "requests",
    "throughput",
    "vs bare",
    "per round",
    "p50",
    "p99",
    "p50 vs bare",
    "p99 vs bare",
    "server CPU / request",
]


async def measure(quick: bool) -> Result:
    per_side = 200 if quick else 1_500
    rounds = 2 if quick else 3
    round_limit_s = 6.0 if quick else 15.0
    warmup = 50 if quick else 200
    started = time.monotonic()
    async with system("intake") as stack:
        log("intake: starting intake and the bare app")
        await stack.start_ready("intake")
        intake = stack.services["intake"]
        assert intake.proc is not None
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            registered = await http.post(f"{intake.url}/v1/enterprises", json=factories.enterprise(seed=7))
            registered.raise_for_status()
            key = bearer(str(registered.json()["api_key"]["api_key"]))
            bare_process, bare_url = spawn_bare(stack)
            try:
                await wait_bare(stack, bare_process, bare_url)
                sides = [
                    Side("bare FastAPI + insert_one", bare_url, dict, bare_process.pid),
                    Side("intake", intake.url, lambda: key, intake.proc.pid),
                    Side(
                        "intake + Idempotency-Key",
                        intake.url,
                        lambda: {**key, "Idempotency-Key": uuid.uuid4().hex},
                        intake.proc.pid,
                    ),
                ]
                log(f"intake: warm-up, {warmup} requests per side")
                for side in sides:
                    await closed_loop(http, side, warmup, round_limit_s, timed=False)
                for number in range(rounds):
                    for side in sides:
                        log(f"intake: round {number + 1}/{rounds}, {side.name}")
                        await closed_loop(http, side, per_side // rounds, round_limit_s, timed=True)
            finally:
                bare_process.terminate()
                try:
                    bare_process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    bare_process.kill()
                    bare_process.wait()
    bare, plain = sides[0], sides[1]
    writes = await intake_writes()
    ratio = plain.rate / bare.rate
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    table = Table(
        f"Intake POST /v1/service-requests vs a bare FastAPI insert ({CONCURRENCY} concurrent clients, "
        f"{per_side:,} requests per side)",
        HEADERS,
        [cells(side, bare) for side in sides],
        notes=[
            f"Throughput ratio intake / bare: **{ratio:.2f}** (target >= {TARGET_RATIO}: {verdict}). Per request, "
            f"intake's repository inserts {len(writes)} documents ({', '.join(f'`{c}`' for c, _ in writes)}) after "
            "reading the API key and the enterprise; the bare endpoint inserts the last of them only. `vs bare` "
            "divides throughputs (higher is better); `per round` gives each round's requests per second, to show "
            "how much the machine's load moved them; the latency ratios divide latencies (lower is better). "
            "`server CPU / request` is the CPU time (user + system) the serving process used during the timed "
            "rounds divided by their requests; the database server's own work is not in it."
        ],
    )
    headline = f"intake / bare throughput: {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})"
    return Result("intake", [table], [headline], time.monotonic() - started)


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.intake_bench", description=description)
    parser.add_argument("--quick", action="store_true", help="up to 200 requests per side instead of 1,500")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.quick))
    show(*result.tables)
    for line in result.headlines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

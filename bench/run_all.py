"""Every benchmark in one run: matching (index vs brute force), intake (vs a bare FastAPI insert), end-to-end
latency and sustained rate, the matching stage (vs raw aiokafka), memory, and database commands per referral.
Prints every table and writes them, with the machine, the versions, the load average and the date, to
docs/benchmarks.md.

Run from the repository root (`make bench` does this)::

    .venv/bin/python -m bench.run_all                 # about 19 minutes
    .venv/bin/python -m bench.run_all --quick         # about 5 minutes
    .venv/bin/python -m bench.run_all --own-stack     # on a private Kafka + nx-27017, started and removed here

Each benchmark compares with a baseline measured in the same run, on the same machine, and reports ratios
against it; none of them asserts a timing.
"""

import argparse
import asyncio
import contextlib
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import db_commands_bench, end_to_end_bench, intake_bench, matching_bench, memory_bench, pipeline_bench
from bench.common import Result, Table, load_average, log, machine_lines, own_stack, show, utc_now

DEFAULT_OUTPUT = Path("docs/benchmarks.md")

HOW_TO_READ = {
    "matching": (
        "How fast the matching engine alone (no I/O) finds and ranks the partners for one referral, with its "
        "in-memory `DirectoryIndex` and with a brute-force scan of the whole directory, on the same seeded "
        "directory and requests in one process. The baseline is the scan: the ratio is what the index buys, and "
        "it grows with the directory. Matches per second here are an upper bound for the matching service, whose "
        "per-event cost is dominated by the database (see the pipeline table)."
    ),
    "intake": (
        "Throughput and latency of `POST /v1/service-requests` (intake as a real process) at 16 concurrent "
        "clients, against a bare FastAPI endpoint (uvicorn, its own process) that performs the one insert every "
        "request needs, of an identical document into the same database server: the storage limit. The ratio "
        "intake / bare is the share of that limit intake keeps after authentication, the enterprise lookup, "
        "validation, the domain code, the middleware and the outbox relay (target >= 0.7). The sides alternate in "
        "rounds so that other load on the machine hits them alike. A third side adds an `Idempotency-Key` to every "
        "request, as careful clients do."
    ),
    "end_to_end": (
        "The whole pipeline, as a partner sees it: from intake's `201` to the partner's webhook receiving the "
        "signed `referral_offered` event (signature verified with the partner's secret), with intake, matching and "
        "notifications as real processes. The load is open-loop at a fixed rate, so a saturated system shows "
        "growing latency and backlog rather than a slower client. The 50/100/200 per second steps show behaviour "
        "under overload; the holds search the highest rate whose backlog stays flat. There is no external "
        "baseline here: read latency against the sustained rate, and the consumer lag columns for which service "
        "falls behind; the second table says where each service spends its time per event."
    ),
    "pipeline": (
        "The matching stage's throughput on a pre-queued batch (no HTTP in front, matching started on a full "
        "topic), against raw aiokafka moving the same records (same sizes, broker, partitions, producer and "
        "consumer settings) with no work on them: the transport limit. The ratio says how far the stage's own "
        "work (ranking, the offer plan write with its outbox, the relay, the commits and the dedupe log) "
        "sits below what Kafka itself would carry; on a database-bound stage it is small."
    ),
    "memory": (
        "Resident memory (VmRSS) of each service process after start-up and readiness, then during and after a "
        "steady open-loop 50 requests/s. There is no baseline beyond the at-rest figure: `peak / rest` is the "
        "growth under load."
    ),
    "db_commands": (
        "What one referral costs the database: every command each service sends (pymongo command monitoring, "
        "`goglobal_db_commands_total{service, command, collection}`), counted over the whole happy path of a "
        "referral (submitted, offered at the partner's webhook, accepted by the partner through the API, the "
        "acceptance confirmed at the webhook) for a batch of referrals at a moderate rate, and divided by their "
        "number. The offer and accept phases are measured apart; the background the idle services send (outbox "
        "relays polling, metrics samplers) is measured on the same system and subtracted (`raw` keeps it). There "
        "is no external baseline: compare the figure between commits, read `per referral` by service for where "
        "the round trips go, and the second table for which commands and collections make it up. On FerretDB "
        "every command is a round trip of a few hundred microseconds to milliseconds, so this count is a floor "
        "under the database time a referral takes."
    ),
}
TITLES = {
    "matching": "Matching engine: index vs brute force",
    "intake": "Intake HTTP API vs a bare FastAPI insert",
    "end_to_end": "End-to-end latency and sustained rate",
    "pipeline": "Matching stage vs raw Kafka transport",
    "memory": "Memory per service",
    "db_commands": "Database commands per referral",
}


@dataclass
class LoadWatch:
    """Samples the 1-minute load average every few seconds while the benchmarks run."""

    samples: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(5.0)

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "-"
        mean = sum(self.samples) / len(self.samples)
        low, high = min(self.samples), max(self.samples)
        return f"1-minute load average during the run: mean {mean:.2f}, min {low:.2f}, max {high:.2f}"


def matching(quick: bool) -> Result:
    """bench/matching_bench.py's measurement, with fewer requests per size so that the whole run stays short."""
    started = time.monotonic()
    # Without the 100,000-partner row: building that directory and checking both rankings on it takes minutes
    # on two busy cores; `python -m bench.matching_bench` has it (docs/benchmarks/matching.md).
    plan = {1_000: 300, 10_000: 100} if quick else {1_000: 2_000, 10_000: 1_000}
    rows = []
    for size, requests in plan.items():
        log(f"matching: {size:,} partners, {requests:,} requests")
        rows.append(matching_bench.run_size(size, requests, matching_bench.DEFAULT_SEED))
    table = Table(
        "Matching: index vs brute force (one match = retrieval + rank, single thread)",
        list(matching_bench.HEADERS),
        [matching_bench.cells(row) for row in rows],
        notes=[
            "`index/brute` compares whole matches; `retrieval only` compares finding the candidates alone. Run on "
            "its own, `python -m bench.matching_bench` adds a 100,000-partner row and writes "
            "docs/benchmarks/matching.md."
        ],
    )
    biggest = rows[-1]
    headline = (
        f"matching engine at {biggest.size:,} partners: {biggest.index.rate:,.0f} matches/s with the index, "
        f"{biggest.ratio:.1f}x the brute-force scan"
    )
    return Result("matching", [table], [headline], time.monotonic() - started)


BENCHES: dict[str, Callable[[bool], Coroutine[Any, Any, Result]]] = {
    "intake": intake_bench.measure,
    "end_to_end": end_to_end_bench.measure,
    "pipeline": pipeline_bench.measure,
    "memory": memory_bench.measure,
    "db_commands": db_commands_bench.measure,
}
ORDER = ("matching", "intake", "end_to_end", "pipeline", "memory", "db_commands")


@dataclass
class Outcome:
    name: str
    result: Result | None
    error: str | None
    load_before: str
    load_after: str


def run_one(name: str, quick: bool) -> Outcome:
    before = load_average()
    log(f"== {TITLES[name]} (load average {before})")
    try:
        result = matching(quick) if name == "matching" else asyncio.run(BENCHES[name](quick))
        show(*result.tables)
        for line in result.headlines:
            print(line, flush=True)
        return Outcome(name, result, None, before, load_average())
    except Exception as exc:
        traceback.print_exc()
        return Outcome(name, None, f"{exc.__class__.__name__}: {exc}", before, load_average())


def markdown(
    outcomes: list[Outcome], machine: list[str], stack: str, command: str, started: str, seconds: float, load: str
) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/run_all.py` (see `bench/README.md`). Every benchmark measures its baseline in the same",
        "run, on the same machine, and gives ratios against it; nothing here is a test, and no figure is asserted.",
        "Absolute figures depend on the machine and on whatever else runs on it: read the ratios first.",
        "",
        f"- date: {started} (the run took {seconds / 60:.1f} minutes)",
        f"- command: `{command}`",
        *(f"- {line}" for line in machine),
        f"- infrastructure: {stack}",
        f"- load: {load}; the machine was shared with other work during the run (per benchmark below)",
        "",
        "## Summary",
        "",
    ]
    for outcome in outcomes:
        if outcome.result is not None:
            lines += [f"- **{TITLES[outcome.name]}**: {headline}" for headline in outcome.result.headlines]
        else:
            lines.append(f"- **{TITLES[outcome.name]}**: failed ({outcome.error})")
    for outcome in outcomes:
        lines += ["", f"## {TITLES[outcome.name]}", "", HOW_TO_READ[outcome.name], ""]
        timing = f"{outcome.result.seconds:.0f} s" if outcome.result else "failed"
        load = f"before: {outcome.load_before}; after: {outcome.load_after}"
        lines += [f"_Load average (1/5/15 min) {load}; took {timing}._", ""]
        if outcome.result is None:
            lines += [f"This benchmark failed: `{outcome.error}`", ""]
            continue
        for table in outcome.result.tables:
            lines += [table.markdown()]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=description)
    parser.add_argument("--quick", action="store_true", help="shorter runs of every benchmark (about 5 minutes)")
    parser.add_argument(
        "--own-stack",
        action="store_true",
        help="start a private Kafka + FerretDB for the run (deploy/local/infra.py, own ports and state directory), "
        "so that other work restarting the shared one cannot disturb it",
    )
    parser.add_argument("--only", nargs="+", choices=ORDER, help="run only these benchmarks")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown file to write")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    names = [name for name in ORDER if not args.only or name in args.only]
    command = "python -m bench.run_all " + " ".join(sys.argv[1:] if argv is None else argv)
    started_at, started = utc_now(), time.monotonic()
    watch = LoadWatch()
    with contextlib.ExitStack() as exits:
        if args.own_stack:
            infra = exits.enter_context(own_stack())
            stack = f"a private Kafka ({infra.kafka}) and FerretDB ({infra.mongodb_uri}) started for this run"
        elif os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("MONGODB_URI"):
            stack = f"Kafka {os.environ['KAFKA_BOOTSTRAP_SERVERS']}, database {os.environ['MONGODB_URI']}"
        else:
            stack = "the shared local stack of deploy/local/infra.py (Kafka 127.0.0.1:9092, FerretDB 127.0.0.1:27017)"
        machine = asyncio.run(machine_lines())
        with watch.watching():
            outcomes = [run_one(name, args.quick) for name in names]
    seconds = time.monotonic() - started
    print(watch.summary())
    log(f"all done in {seconds / 60:.1f} minutes")
    if not args.no_write:
        text = markdown(outcomes, machine, stack, command.strip(), started_at, seconds, watch.summary())
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"written to {args.output}")
    return 0 if all(o.result is not None for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())

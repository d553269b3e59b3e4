"""Database commands per referral: what one referral costs the database, end to end and per service, from
`goglobal_db_commands_total{service, command, collection}` (pymongo command monitoring in every service).

Run from the repository root::

    .venv/bin/python -m bench.db_commands_bench                  # 100 referrals at 2 per second
    .venv/bin/python -m bench.db_commands_bench --quick          # 20 referrals
    .venv/bin/python -m bench.db_commands_bench --referrals 200 --rate 4

All three services run as real processes in a fresh namespace, with the directory of the other benchmarks (one
partner, legal in AE and SA, whose webhook is a Standard Webhooks receiver on loopback in this process) and one
enterprise; each request has one need, so one request is one referral. The path counted is the whole happy path
of a referral: submitted, offered (the partner's webhook received `referral_offered`), accepted by the partner
through the API (`POST /v1/referrals/{id}/accept`) and confirmed (the webhook received `referral_accepted`), with
everything that follows inside the services (the enterprise's e-mails as far as the services take them with no
SMTP server). It runs in two phases, so that each can be read on its own:

1. offer: the referrals are submitted open-loop at `--rate`, then the run waits until every offer reached the
   webhook and the system is quiet;
2. accept: the partner accepts them, open-loop at the same rate, then the run waits until every confirmation
   reached the webhook and the system is quiet.

A referral that does not go the whole path (its offer or confirmation never reaches the webhook: nothing more
arrived for 30 s; or intake refuses the accept) is reported with intake's status for it, and the figures divide
what was counted by the referrals that did go the whole path.

"Quiet" means no event consumed, produced or delivered by any service for 3 s, and no consumer lag. Each
service's `/metrics` is scraped before and after each phase. The services also talk to the database when
nothing happens (outbox relays poll every 0.2 s, the metrics samplers every 5 s): that background is measured
on the same system, idle, before and after the phases, and its rate times each phase's duration is subtracted.
What is left, divided by the number of referrals, is the commands a referral costs. The warm-up (one referral
before the directory is known to matching, then a few referrals through both phases) is not counted.
This is not a test: nothing asserts anything.
"""

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

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
    scrape,
    setup_parties,
    show,
    sleep_until,
    system,
    wait_until_offered,
)
from tests.webhook_receiver import Receiver, running

ACCEPTED_TYPE = "hk.goglobal.partner.referral_accepted.v1"
METRIC = "goglobal_db_commands_total"
STALL_S = 30.0  # no referral reached the webhook for this long: the missing ones are lost
QUIET_S = 3.0  # no event consumed, produced or delivered for this long: the system is done
ACTIVITY = ("goglobal_events_consumed_total", "goglobal_events_produced_total", "goglobal_deliveries_total")
WARM_UP = 4  # referrals taken through both phases before anything is counted
TOP = 25  # rows of the command table
Key = tuple[str, str, str]  # service, command, collection
_SAMPLE = re.compile(r"^" + METRIC + r"\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def db_commands(text: str) -> dict[Key, float]:
    """(service, command, collection) -> count, from one Prometheus text exposition."""
    counts: dict[Key, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        key = (labels.get("service", ""), labels.get("command", ""), labels.get("collection", ""))
        counts[key] = counts.get(key, 0.0) + float(match["value"])
    return counts


@dataclass
class Reading:
    """Every service's command counts at one moment."""

    at: float  # monotonic
    counts: dict[Key, float]

    def minus(self, earlier: "Reading") -> dict[Key, float]:
        keys = self.counts.keys() | earlier.counts.keys()
        return {k: self.counts.get(k, 0.0) - earlier.counts.get(k, 0.0) for k in keys}


async def read(http: httpx.AsyncClient, stack: System) -> Reading:
    at = time.monotonic()
    counts: dict[Key, float] = {}
    for name, service in stack.services.items():
        text = await scrape(http, service.url)
        if METRIC not in text:
            raise RuntimeError(f"{name} does not expose {METRIC}: its code has no command listener")
        counts.update(db_commands(text))
    return Reading(at, counts)


@dataclass
class Lifecycle(Receiver):
    """The partner's webhook, noting which referrals it was offered and which acceptances it was told of."""

    offered: set[str] = field(default_factory=set)
    confirmed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.on_handled = self._note

    def _note(self, event: dict[str, Any]) -> None:
        if event.get("type") == OFFERED_TYPE:
            self.offered.add(str(event["subject"]))
        elif event.get("type") == ACCEPTED_TYPE:
            self.confirmed.add(str(event["subject"]))


async def quiesce(http: httpx.AsyncClient, stack: System, deadline_s: float = 90.0) -> bool:
    """Waits until no service consumed, produced or delivered anything for QUIET_S and no consumer lags;
    returns whether that happened before the deadline."""
    end = time.monotonic() + deadline_s
    last: tuple[float, ...] | None = None
    quiet_since = time.monotonic()
    while time.monotonic() < end:
        texts = [await scrape(http, s.url) for s in stack.services.values()]
        activity = tuple(metric_sum(text, name) for text in texts for name in ACTIVITY)
        lag = sum(metric_sum(text, "goglobal_consumer_lag") for text in texts)
        now = time.monotonic()
        if activity != last or lag > 0:
            last, quiet_since = activity, now
        elif now - quiet_since >= QUIET_S:
            return True
        await asyncio.sleep(0.5)
    return False


async def open_loop(count: int, rate: float, action: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    """`action(i)` started at `start + i / rate` whatever happened to the earlier ones; returns when all ended."""
    start = time.monotonic() + 0.05
    tasks: list[asyncio.Task[None]] = []
    for i in range(count):
        await sleep_until(start + i / rate)
        tasks.append(asyncio.create_task(action(i)))
    await asyncio.gather(*tasks)


async def submit(http: httpx.AsyncClient, parties: Parties, count: int, rate: float) -> list[str]:
    referrals: list[str] = []
    headers = bearer(parties.enterprise_key)

    async def one(_: int) -> None:
        answer = await http.post("/v1/service-requests", json=REQUEST_BODY, headers=headers)
        answer.raise_for_status()
        referrals.append(str(answer.json()["referrals"][0]["id"]))

    await open_loop(count, rate, one)
    return referrals


async def accept(http: httpx.AsyncClient, parties: Parties, referrals: list[str], rate: float) -> list[str]:
    """The partner accepts each referral; returns the ones intake refused, with its answer."""
    headers = bearer(parties.partner_key)
    refused: list[str] = []

    async def one(i: int) -> None:
        answer = await http.post(f"/v1/referrals/{referrals[i]}/accept", headers=headers)
        if answer.status_code != 200:
            refused.append(f"{referrals[i]} (accept answered {answer.status_code}: {answer.text[:200]})")

    await open_loop(len(referrals), rate, one)
    return refused


async def arrive(
    http: httpx.AsyncClient, parties: Parties, what: set[str], referrals: list[str], label: str
) -> list[str]:
    """Waits until every referral is in `what` (noted by the webhook), or nothing new arrived for STALL_S; returns
    the referrals still missing then, each with the status intake gives it."""
    seen, since = -1, time.monotonic()
    while (count := sum(1 for r in referrals if r in what)) < len(referrals):
        if count != seen:
            seen, since = count, time.monotonic()
        elif time.monotonic() - since > STALL_S:
            break
        await asyncio.sleep(0.2)
    missing = []
    for referral in referrals:
        if referral not in what:
            answer = await http.get(f"/v1/referrals/{referral}", headers=bearer(parties.operator_key))
            status = answer.json().get("status") if answer.status_code == 200 else f"HTTP {answer.status_code}"
            missing.append(f"{referral} ({label} missing, intake says {status})")
    return missing


async def lifecycle(
    http: httpx.AsyncClient, parties: Parties, receiver: "Lifecycle", referrals: list[str], rate: float
) -> list[str]:
    """Offers, then acceptances, for warm-up referrals: every one of them must make it."""
    missing = await arrive(http, parties, receiver.offered, referrals, "offer")
    missing += await accept(http, parties, referrals, rate)
    missing += await arrive(http, parties, receiver.confirmed, referrals, "confirmation")
    if missing:
        raise RuntimeError(f"warm-up referrals did not make it: {'; '.join(missing)}")
    return referrals


def code_origin() -> str:
    """Where the service processes import their code from (they inherit this process's environment and working
    directory), and that checkout's commit."""
    probe = "import intake, matching, notifications, goglobal_shared as s; print(s.__file__, intake.__file__)"
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=dict(os.environ))
    if shown.returncode != 0:
        return f"unknown ({shown.stderr.strip()[-200:]})"
    shared_file, intake_file = shown.stdout.split()
    root = Path(shared_file).resolve().parents[3]  # <root>/shared/src/goglobal_shared/__init__.py
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True)
    revision = commit.stdout.strip() or "?"
    if dirty.stdout.strip():
        revision += " with uncommitted changes"
    where = str(root) if Path(intake_file).resolve().is_relative_to(root) else f"{root} (intake: {intake_file})"
    return f"{where}, commit {revision}"


@dataclass
class Measurement:
    submitted: int
    referrals: int  # those that went the whole path: the divisor
    lost: list[str]  # those that did not, and why
    rate: float
    background_s: float
    offer: dict[Key, float]  # commands per referral, background subtracted
    accept: dict[Key, float]
    background: dict[Key, float]  # commands per second, idle
    raw: dict[Key, float]  # commands per referral over both phases, background included
    offer_s: float
    accept_s: float
    quiet: bool
    origin: str

    def total(self, key: Key) -> float:
        return self.offer.get(key, 0.0) + self.accept.get(key, 0.0)

    def labels(self) -> set[Key]:
        return self.offer.keys() | self.accept.keys() | self.background.keys()


def per_referral(
    delta: dict[Key, float], background: dict[Key, float], seconds: float, referrals: int
) -> dict[Key, float]:
    keys = delta.keys() | background.keys()
    return {k: (delta.get(k, 0.0) - background.get(k, 0.0) * seconds) / referrals for k in keys}


async def run(referrals: int, rate: float, background_s: float) -> Measurement:
    receiver = Lifecycle()
    async with running(receiver), system("dbcmd") as stack:
        await stack.start_ready(*SERVICES)
        intake_url = stack.services["intake"].url
        parties = await setup_parties(stack.namespace, intake_url, receiver.url)
        receiver.secrets.extend(parties.webhook_secrets.values())
        async with httpx.AsyncClient(base_url=intake_url, timeout=60) as http:
            first = await wait_until_offered(intake_url, parties)
            await lifecycle(http, parties, receiver, [first], rate)
            await lifecycle(http, parties, receiver, await submit(http, parties, WARM_UP, rate), rate)
            quiet = await quiesce(http, stack)

            log(f"db commands: background, idle for {background_s:.0f} s")
            idle_start = await read(http, stack)
            await asyncio.sleep(background_s)
            idle_end = await read(http, stack)

            log(f"db commands: offer phase, {referrals} referrals at {rate:g}/s")
            ids = await submit(http, parties, referrals, rate)
            lost = await arrive(http, parties, receiver.offered, ids, "offer")
            quiet = await quiesce(http, stack) and quiet
            offered = await read(http, stack)

            ids = [r for r in ids if r in receiver.offered]
            log(f"db commands: accept phase, {len(ids)} acceptances at {rate:g}/s")
            lost += await accept(http, parties, ids, rate)
            lost += await arrive(http, parties, receiver.confirmed, ids, "confirmation")
            quiet = await quiesce(http, stack) and quiet
            accepted = await read(http, stack)
            completed = sum(1 for r in ids if r in receiver.confirmed)
            stack.keep_logs = bool(lost)
            if not completed:
                raise RuntimeError(f"no referral made it through: {'; '.join(lost[:5])}")

            log(f"db commands: background again, idle for {background_s:.0f} s")
            await asyncio.sleep(background_s)
            idle_again = await read(http, stack)
    idle_s = (idle_end.at - idle_start.at) + (idle_again.at - accepted.at)
    idle = {k: v / idle_s for k, v in _sum(idle_end.minus(idle_start), idle_again.minus(accepted)).items()}
    offer_s, accept_s = offered.at - idle_end.at, accepted.at - offered.at
    return Measurement(
        submitted=referrals,
        referrals=completed,
        lost=lost,
        rate=rate,
        background_s=background_s,
        offer=per_referral(offered.minus(idle_end), idle, offer_s, completed),
        accept=per_referral(accepted.minus(offered), idle, accept_s, completed),
        background=idle,
        raw={k: v / completed for k, v in accepted.minus(idle_end).items()},
        offer_s=offer_s,
        accept_s=accept_s,
        quiet=quiet,
        origin=code_origin(),
    )


def _sum(*deltas: dict[Key, float]) -> dict[Key, float]:
    total: dict[Key, float] = {}
    for delta in deltas:
        for key, value in delta.items():
            total[key] = total.get(key, 0.0) + value
    return total


def figure(value: float) -> str:
    return f"{value:,.2f}"


def tables(m: Measurement) -> list[Table]:
    by_service = []
    for service in (*SERVICES, None):
        keys = [k for k in m.labels() if service is None or k[0] == service]
        by_service.append(
            [
                service or "all three",
                figure(sum(m.offer.get(k, 0.0) for k in keys)),
                figure(sum(m.accept.get(k, 0.0) for k in keys)),
                figure(sum(m.total(k) for k in keys)),
                figure(sum(m.raw.get(k, 0.0) for k in keys)),
                f"{sum(m.background.get(k, 0.0) for k in keys):,.1f}/s",
            ]
        )
    path = "submitted -> offered -> accepted, partner told"
    summary = Table(
        f"Database commands per referral, by service ({m.referrals} referrals at {m.rate:g}/s, {path})"
        + (f", {len(m.lost)} lost" if m.lost else ""),
        ["service", "offer phase", "accept phase", "per referral", "raw", "background (idle)"],
        by_service,
        notes=[
            "Commands sent to the database (`goglobal_db_commands_total`, pymongo command monitoring), per "
            "referral, background subtracted. `offer phase`: from the submission until the offer reached the "
            "partner's webhook and the system was quiet; `accept phase`: from the partner's accept until the "
            "`referral_accepted` confirmation reached the webhook and the system was quiet; `per referral` is both. "
            "`raw` is the same count before the background is subtracted. "
            f"`background (idle)` is what the service sends with nothing to do (relay polls, metrics samplers), "
            f"measured idle for 2 x {m.background_s:.0f} s and subtracted at that rate over each phase "
            f"({m.offer_s:.0f} s and {m.accept_s:.0f} s).",
            f"Service code: {m.origin}."
            + ("" if m.quiet else " The system was not quiet within 90 s after a phase: figures may be short."),
            *(
                [
                    f"{m.submitted} referrals were submitted and {len(m.lost)} of them did not go the whole path "
                    f"(nothing reached the webhook for {STALL_S:.0f} s): {'; '.join(m.lost[:5])}"
                    + ("; ..." if len(m.lost) > 5 else "")
                    + f". The figures divide everything counted by the {m.referrals} that did."
                ]
                if m.lost
                else []
            ),
        ],
    )
    ranked = sorted(m.labels(), key=lambda k: (-m.total(k), k))
    shown = [k for k in ranked if abs(m.total(k)) >= 0.005][:TOP]
    rest = [k for k in ranked if k not in shown]
    rows = [
        [k[0], k[1], k[2] or "-", figure(m.offer.get(k, 0.0)), figure(m.accept.get(k, 0.0)), figure(m.total(k))]
        for k in shown
    ]
    if rest:
        rows.append(
            [
                f"{len(rest)} more",
                "",
                "",
                figure(sum(m.offer.get(k, 0.0) for k in rest)),
                figure(sum(m.accept.get(k, 0.0) for k in rest)),
                figure(sum(m.total(k) for k in rest)),
            ]
        )
    commands = Table(
        f"Database commands per referral, top {len(shown)} by command and collection",
        ["service", "command", "collection", "offer phase", "accept phase", "per referral"],
        rows,
        notes=[
            "`collection` is the collection the command names (`-` for none); getMore counts under its cursor's "
            "collection. A figure near zero that is not exactly zero is what remains of the background after "
            "subtraction (noise of a few polls over the run); commands only the idle system sends are in `more`."
        ],
    )
    return [summary, commands]


def headlines(m: Measurement) -> list[str]:
    per_service = {s: sum(m.total(k) for k in m.labels() if k[0] == s) for s in SERVICES}
    total = sum(per_service.values())
    split = ", ".join(f"{s} {v:.1f}" for s, v in per_service.items())
    top = sorted(m.labels(), key=lambda k: -m.total(k))[:3]
    leaders = ", ".join(f"{s} {c} {coll or '-'} {m.total((s, c, coll)):.1f}" for s, c, coll in top)
    lost = f" ({len(m.lost)} of {m.submitted} referrals lost on the way)" if m.lost else ""
    return [
        f"{total:.1f} database commands per referral (submitted -> offered -> accepted, partner told): {split}; "
        f"top: {leaders}{lost}"
    ]


async def measure(quick: bool, referrals: int | None = None, rate: float | None = None) -> Result:
    started = time.monotonic()
    m = await run(referrals or (20 if quick else 100), rate or 2.0, background_s=5.0 if quick else 15.0)
    return Result("db_commands", tables(m), headlines(m), time.monotonic() - started)


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.db_commands_bench", description=description)
    parser.add_argument("--quick", action="store_true", help="20 referrals and 5 s idle windows")
    parser.add_argument("--referrals", type=int, help="referrals counted (default 100, 20 with --quick)")
    parser.add_argument("--rate", type=float, help="submissions and acceptances per second (default 2)")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.quick, args.referrals, args.rate))
    show(*result.tables)
    for line in result.headlines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Resident memory (VmRSS) of each service process at rest and under a steady load.

Run from the repository root::

    .venv/bin/python -m bench.memory_bench            # 50 requests/s for 20 s
    .venv/bin/python -m bench.memory_bench --quick    # 50 requests/s for 10 s

The three services are started as real processes in a fresh namespace with the end-to-end benchmark's directory
(one partner with a webhook receiver in this process). "At rest" is read after every service answered `/readyz`,
the directory and the enterprise were set up, one request went all the way through and the system then idled
for a few seconds. "Under load" samples every half second during an open-loop 50 requests/s (the one-need request
of the other benchmarks); the table gives the highest sample and the last one, then the RSS after the backlog had
some seconds to drain. VmRSS comes from /proc/<pid>/status. This is not a test: nothing asserts anything.
"""

import argparse
import asyncio
import contextlib
import time
from collections.abc import Sequence

from bench.common import SERVICES, Result, Table, log, rss_mib, show
from bench.end_to_end_bench import TimingReceiver, fresh_system, run_step
from tests.webhook_receiver import running

RATE = 50.0
REST_S = 5.0


async def measure(quick: bool) -> Result:
    load_s = 10.0 if quick else 20.0
    after_s = 10.0
    started = time.monotonic()
    receiver = TimingReceiver()
    peaks: dict[str, float] = {}
    last: dict[str, float] = {}
    async with running(receiver), fresh_system(receiver, warm_up=False) as env:
        pids = {name: service.proc.pid for name, service in env.stack.services.items() if service.proc is not None}
        await asyncio.sleep(REST_S)
        rest = {name: rss_mib(pid) for name, pid in pids.items()}
        at_rest = ", ".join(f"{name} {value:.0f} MiB" for name, value in rest.items())
        log(f"memory: at rest {at_rest}; now {RATE:.0f} requests/s for {load_s:.0f} s")

        async def sample() -> None:
            while True:
                for name, pid in pids.items():
                    last[name] = rss_mib(pid)
                    peaks[name] = max(peaks.get(name, 0.0), last[name])
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample())
        try:
            step = await run_step(env, receiver, f"{RATE:.0f}/s", RATE, load_s, drain_deadline_s=0)
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        await asyncio.sleep(after_s)
        after = {name: rss_mib(pid) for name, pid in pids.items()}
    rows = [
        [
            name,
            f"{rest[name]:,.1f} MiB",
            f"{peaks[name]:,.1f} MiB",
            f"{last[name]:,.1f} MiB",
            f"{after[name]:,.1f} MiB",
            f"{peaks[name] / rest[name]:.2f}",
        ]
        for name in SERVICES
    ]
    rows.append(
        [
            "all three",
            f"{sum(rest.values()):,.1f} MiB",
            f"{sum(peaks.values()):,.1f} MiB",
            f"{sum(last.values()):,.1f} MiB",
            f"{sum(after.values()):,.1f} MiB",
            f"{sum(peaks.values()) / sum(rest.values()):.2f}",
        ]
    )
    table = Table(
        f"Memory: VmRSS per service at rest and under {RATE:.0f} requests/s for {load_s:.0f} s",
        ["service", "at rest", "load: peak", "load: last", f"{after_s:.0f} s after", "peak / rest"],
        rows,
        notes=[
            f"During the load {len(step.accepted):,} requests were accepted and {step.delivered_in_window:,} offers "
            "delivered in the window: the load is above what the pipeline sustains on this machine (see the "
            "end-to-end table), so consumer lag builds up while it runs. The sum of the peaks is an upper bound "
            "(the services do not peak at the same moment)."
        ],
    )
    headline = (
        f"RSS at rest {' / '.join(f'{rest[n]:.0f}' for n in SERVICES)} MiB, peak under {RATE:.0f}/s "
        f"{' / '.join(f'{peaks[n]:.0f}' for n in SERVICES)} MiB (intake / matching / notifications)"
    )
    return Result("memory", [table], [headline], time.monotonic() - started)


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.memory_bench", description=description)
    parser.add_argument("--quick", action="store_true", help="10 s of load instead of 20 s")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.quick))
    show(*result.tables)
    for line in result.headlines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

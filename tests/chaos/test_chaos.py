"""Faults under load: one scenario each, on the chaos tier's Kafka + nx-27017 stack (they stop it; conftest.py).

`make test` runs the short form (40 requests at 4/s, faults of 5 s); `make test-chaos` the full one
(500 requests at 10/s, the broker and the database away for 30 s, webhooks failing for 60 s)."""

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from goglobal_shared.kafka import ensure_topics, make_producer
from tests.chaos.harness import (
    ChaosConfig,
    Outcome,
    System,
    chaos_infra,
    drive,
    outcome,
    settle,
    system,
)

CONFIG = ChaosConfig.from_env()
Fault = Callable[[System], Coroutine[Any, Any, None]]


async def run(scenario: str, log_dir: Path, fault: Fault, matching: int = 1, notifications: int = 1) -> Outcome:
    async with system(scenario, CONFIG, log_dir, matching, notifications) as shell:
        submitted = await drive(shell, CONFIG, lambda: fault(shell))
        final = await settle(shell, submitted, CONFIG)
        result = await outcome(scenario, shell, submitted, final)
    print(result.line())
    assert not result.lost, f"{len(result.lost)} lost, e.g. {result.lost[:5]}"
    assert not result.uncommitted_violations, result.uncommitted_violations[:5]
    assert not result.contact_leaks, result.contact_leaks[:5]
    assert not result.refused_accepts, result.refused_accepts[:5]
    return result


async def pause() -> None:
    await asyncio.sleep(CONFIG.fault_s)  # how long the fault lasts, by design


def kill_and_restart(name: str) -> Fault:
    async def fault(shell: System) -> None:
        await shell.world.restart(name)

    return fault


@pytest.mark.parametrize("service", ["intake", "matching", "notifications"])
async def test_sigkill_of_a_service_mid_load(service: str, tmp_path: Path) -> None:
    await run(f"SIGKILL {service}", tmp_path, kill_and_restart(service))


async def test_one_of_two_replicas_is_sigkilled(tmp_path: Path) -> None:
    async def fault(shell: System) -> None:
        shell.world.processes["matching"][0].kill()
        shell.world.processes["notifications"][1].kill()

    await run("SIGKILL one of two matching and notifications replicas", tmp_path, fault, matching=2, notifications=2)


async def test_the_broker_is_stopped_and_restarted(tmp_path: Path) -> None:
    async def fault(shell: System) -> None:
        await asyncio.to_thread(chaos_infra, "down", "kafka")
        await pause()
        await asyncio.to_thread(chaos_infra, "up", "kafka")

    await run(f"Kafka stopped for {CONFIG.fault_s:.0f}s", tmp_path, fault)


async def test_the_database_is_stopped_and_restarted(tmp_path: Path) -> None:
    async def fault(shell: System) -> None:
        await asyncio.to_thread(chaos_infra, "down", "database")
        await pause()
        await asyncio.to_thread(chaos_infra, "up", "database")

    await run(f"database stopped for {CONFIG.fault_s:.0f}s", tmp_path, fault)


async def test_webhook_receivers_fail_and_time_out(tmp_path: Path) -> None:
    async def fault(shell: System) -> None:
        receivers = list(shell.receivers.values())
        receivers[0].failing = 500
        receivers[1].hang_s = 3.0  # longer than the webhook timeout (2 s in the chaos stack)
        await asyncio.sleep(CONFIG.fault_s * 2)  # webhooks fail for twice the fault time, by design
        receivers[0].failing = None
        receivers[1].hang_s = 0.0

    await run(f"webhook receivers failing for {CONFIG.fault_s * 2:.0f}s", tmp_path, fault)


async def test_poison_messages_mixed_into_the_topics(tmp_path: Path) -> None:
    async def fault(shell: System) -> None:
        namespace = shell.world.namespace
        topics = [namespace.topic(t) for t in ("goglobal.referrals", "goglobal.partners", "goglobal.enterprises")]
        await ensure_topics(namespace.infra.kafka, topics)
        producer = make_producer(namespace.infra.kafka, "chaos")
        await producer.start()
        try:
            for n in range(30):
                topic = topics[n % len(topics)]
                headers = [("ce_type", b"hk.goglobal.referral.submitted.v1")] if n % 2 else []
                await producer.send_and_wait(
                    topic, b"\x00poison" * (n + 1), key=f"poison-{n}".encode(), headers=headers
                )
        finally:
            await producer.stop()

    await run("poison messages in every topic", tmp_path, fault)

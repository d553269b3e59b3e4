"""The chaos harness: a whole system on its own Kafka + nx-27017 stack, a steady load of service requests,
partners whose systems accept every offer their webhook receives, and the checks that nothing was lost.

Scripted partner behaviour: each referral is offered (sequentially) to one of the partners, whose webhook
receiver accepts it through the API. So every accepted request must end `accepted`, every partner's
receiver must have handled each of its events exactly once (by `webhook-id`), and no consumer group may
have committed an offset past an event it did not handle (or dead-letter)."""

import asyncio
import contextlib
import functools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient

from goglobal_contract.envelope import InvalidEvent, from_kafka
from matching.consumers.referral_events import router as matching_router
from matching.service import MatchingService
from tests.support import REPO, Infra, eventually, ports
from tests.webhook_receiver import Receiver, running
from tests.world import World, bearer, new_namespace, running_world

PARTNERS = ("chaos-alpha", "chaos-beta", "chaos-gamma")
ACCEPT_RETRY_MAX_PAUSE_S = 10.0
PARTITIONS = 3  # goglobal_shared.kafka.ensure_topics' default
NEED = {"needs": [{"service_category": "legal", "target_markets": ["AE"]}]}
FAST = {
    "matching": {"GOGLOBAL_SCHEDULER_INTERVAL_S": "0.5"},
    "notifications": {
        "GOGLOBAL_RETRY_SCHEDULE_S": "[0, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]",
        "GOGLOBAL_WEBHOOK_TIMEOUT_S": "2",
        "GOGLOBAL_DISPATCHER_INTERVAL_S": "0.2",
    },
}
# Which event types each service's consumer records in its processed-event log once handled (the rest it skips,
# or handles without the log: intake's decisions, matching's submissions and notifications' partner events make a
# repeat a no-op in their own write; their handling shows in their effects instead: an offer that reaches the
# partner's webhook, a referral that is not lost, which `lost` and `missing_webhooks` check).
_MATCHING = matching_router(cast(MatchingService, None))  # which types are routed does not depend on the service
LOGGED_TYPES = {
    "intake": set[str](),
    "matching": _MATCHING.types - _MATCHING.self_deduplicating,
    "notifications": set[str](),  # no SMTP here: it e-mails no enterprise, and forwards partner events unlogged
}


@dataclass(frozen=True)
class ChaosConfig:
    requests: int
    rate_per_s: float
    fault_s: float
    settle_s: float

    @classmethod
    def from_env(cls) -> "ChaosConfig":
        return cls(
            requests=int(os.environ.get("GOGLOBAL_CHAOS_REQUESTS", "40")),
            rate_per_s=float(os.environ.get("GOGLOBAL_CHAOS_RATE", "4")),
            fault_s=float(os.environ.get("GOGLOBAL_CHAOS_FAULT_S", "5")),
            settle_s=float(os.environ.get("GOGLOBAL_CHAOS_SETTLE_S", "300")),
        )


def chaos_infra(*args: str) -> None:
    """Runs deploy/local/infra.py for the chaos stack: own data and ports, shared downloads."""
    env = {**os.environ, **chaos_stack_env()}
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy/local/infra.py"), *args], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"chaos infra {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


@functools.cache
def _chaos_ports() -> tuple[str, str]:
    """GOGLOBAL_CHAOS_KAFKA_PORT and GOGLOBAL_CHAOS_MONGO_PORT, or ports free when first asked (the same for the
    whole session, restarts included), so that two test runs on one machine never meet on the chaos stack."""
    kafka = os.environ.get("GOGLOBAL_CHAOS_KAFKA_PORT") or str(ports.free_port())
    mongo = os.environ.get("GOGLOBAL_CHAOS_MONGO_PORT") or str(ports.free_port([int(kafka), int(kafka) + 1]))
    return kafka, mongo


def chaos_stack_env() -> dict[str, str]:
    state = os.environ.get("GOGLOBAL_STATE_DIR", str(REPO / ".state"))
    kafka, mongo = _chaos_ports()
    return {
        "GOGLOBAL_STATE_DIR": str(Path(state) / "chaos"),
        "GOGLOBAL_CACHE_DIR": os.environ.get("GOGLOBAL_CACHE_DIR", state),
        "GOGLOBAL_KAFKA_PORT": kafka,
        "GOGLOBAL_MONGO_PORT": mongo,
    }


def chaos_infra_handle() -> Infra:
    stack = ports.from_env(chaos_stack_env())
    return Infra(stack.kafka_bootstrap_servers, stack.mongodb_uri, native=True)


@dataclass
class Submitted:
    referral_id: str
    accepted_at: float  # monotonic time intake answered 201
    consented: bool  # whether its enterprise shares its contact with the partner that accepts


@dataclass
class Outcome:
    scenario: str
    submitted: int
    completed: int
    lost: list[str]
    duplicates_deduped: int  # seen more than once at transport, handled once
    max_latency_s: float
    uncommitted_violations: list[str]
    contact_leaks: list[str] = field(default_factory=list)
    refused_accepts: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"[chaos] {self.scenario}: submitted={self.submitted} completed={self.completed} "
            f"lost={len(self.lost)} duplicates_handled={self.duplicates_deduped} "
            f"max_end_to_end_latency={self.max_latency_s:.1f}s refused_accepts={len(self.refused_accepts)}"
        )


@dataclass
class System:
    """The shared system World (with replicas) under load, and what the chaos checks need besides."""

    world: World
    enterprises: dict[bool, str]  # API key by consent to share the contact: both kinds submit, alternately
    receivers: dict[str, Receiver]
    config: ChaosConfig
    offered_at: dict[str, float] = field(default_factory=dict)  # referral -> monotonic time a webhook got it
    unaccepted: list[str] = field(default_factory=list)  # offers the partner gave up accepting
    refused: list[str] = field(default_factory=list)  # accepts of a delivered offer answered 404 or 409
    _acceptors: set[asyncio.Task[None]] = field(default_factory=set)

    def on_offer(self, partner_id: str) -> Callable[[dict[str, Any]], None]:
        """The partner's own system: accept every offer its webhook receives."""

        def handle(event: dict[str, Any]) -> None:
            if event["type"] == "hk.goglobal.partner.referral_offered.v1":
                self.offered_at.setdefault(event["subject"], time.monotonic())
                task = asyncio.get_running_loop().create_task(self._accept(partner_id, event["subject"]))
                self._acceptors.add(task)
                task.add_done_callback(self._acceptors.discard)

        return handle

    async def _accept(self, partner_id: str, referral_id: str) -> None:
        """The partner accepts the moment its webhook hears of the offer, once: intake recorded the offer before
        telling the partner, so a 404 or 409 is a failure. Only a request that got no answer (intake down for the
        moment) is sent again, with growing pauses; a 409 after such a retry may be its own lost success."""
        headers = bearer(self.world.partner_keys[partner_id])
        pause, deadline, retried = 0.5, time.monotonic() + self.config.settle_s, False
        while time.monotonic() < deadline:
            try:
                answer = await self.world.http.post(f"/v1/referrals/{referral_id}/accept", headers=headers)
            except httpx.HTTPError:
                await asyncio.sleep(pause)  # the partner's own retry pace, not a wait for an event
                pause, retried = min(pause * 2, ACCEPT_RETRY_MAX_PAUSE_S), True
                continue
            if answer.status_code == 404 or (answer.status_code == 409 and not retried):
                self.refused.append(f"{referral_id}: {partner_id}'s accept answered {answer.status_code}")
            if answer.status_code < 500:
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, ACCEPT_RETRY_MAX_PAUSE_S)
        self.unaccepted.append(referral_id)


@contextlib.asynccontextmanager
async def system(
    scenario: str, config: ChaosConfig, log_dir: Path, matching: int = 1, notifications: int = 1
) -> AsyncIterator[System]:
    receivers = {pid: Receiver() for pid in PARTNERS}
    async with contextlib.AsyncExitStack() as stack:
        for receiver in receivers.values():
            await stack.enter_async_context(running(receiver))
        world = await stack.enter_async_context(
            running_world(
                new_namespace(chaos_infra_handle(), "chaos"),
                log_dir,
                FAST,
                replicas={"matching": matching, "notifications": notifications},
            )
        )
        shell = System(world, {}, receivers, config)
        stack.push_async_callback(_cancel_acceptors, shell)
        await _seed(shell)
        yield shell


async def _cancel_acceptors(shell: System) -> None:
    for task in list(shell._acceptors):
        task.cancel()


async def _seed(shell: System) -> None:
    for pid in PARTNERS:
        await shell.world.add_partner(pid, ["legal"], ["AE"], shell.receivers[pid], capacity=1000)
        shell.receivers[pid].on_handled = shell.on_offer(pid)
    shell.enterprises[True] = shell.world.enterprise.key
    shell.enterprises[False] = (await shell.world.register_enterprise(consent=False)).key


async def drive(shell: System, config: ChaosConfig, fault: Callable[[], Coroutine[Any, Any, None]]) -> list[Submitted]:
    """Submits the load at a steady rate while `fault` runs once a third of it is in."""
    submitted: list[Submitted] = []
    fault_task: asyncio.Task[None] | None = None
    started = time.monotonic()
    for n in range(config.requests):
        await _pace(started, n, config.rate_per_s)
        if fault_task is None and n >= config.requests // 3:
            fault_task = asyncio.create_task(fault())
        submitted.append(await _submit(shell, f"chaos-{n}-{uuid.uuid4().hex[:6]}", consented=n % 2 == 0))
    if fault_task is not None:
        await fault_task
    return submitted


async def _pace(started: float, n: int, rate: float) -> None:
    due = started + n / rate
    delay = due - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)  # the load's own pace, not a wait for an event


async def _submit(shell: System, idempotency_key: str, consented: bool) -> Submitted:
    """What a careful client does: retry with the same Idempotency-Key until the request is accepted."""
    headers = {"Authorization": f"Bearer {shell.enterprises[consented]}", "Idempotency-Key": idempotency_key}
    answer: dict[str, Any] = {}

    async def accepted() -> bool:
        try:
            response = await shell.world.http.post("/v1/service-requests", json=NEED, headers=headers)
        except httpx.HTTPError:
            return False
        if response.status_code == 201:
            answer.update(response.json())
            return True
        return False

    await eventually(accepted, f"request {idempotency_key} to be accepted", deadline_s=180, interval_s=0.5)
    return Submitted(answer["referrals"][0]["id"], time.monotonic(), consented)


async def settle(shell: System, submitted: list[Submitted], config: ChaosConfig) -> dict[str, dict[str, Any]]:
    ops = bearer(shell.world.operator)
    final: dict[str, dict[str, Any]] = {}

    async def all_accepted() -> bool:
        for item in submitted:
            if final.get(item.referral_id, {}).get("status") == "accepted":
                continue
            try:
                answer = await shell.world.http.get(f"/v1/referrals/{item.referral_id}", headers=ops)
            except httpx.HTTPError:
                return False
            final[item.referral_id] = answer.json()
        accepted = all(body.get("status") == "accepted" for body in final.values()) and len(final) == len(submitted)
        return accepted and not missing_webhooks(shell, final)  # the confirmations reach the partners too

    with contextlib.suppress(AssertionError):
        await eventually(all_accepted, "every referral to be accepted", deadline_s=config.settle_s, interval_s=1.0)
    return final


async def outcome(
    scenario: str, shell: System, submitted: list[Submitted], final: dict[str, dict[str, Any]]
) -> Outcome:
    lost = [
        f"{s.referral_id} ({why_not_accepted(shell, s.referral_id)})"
        for s in submitted
        if final.get(s.referral_id, {}).get("status") != "accepted"
    ]
    lost += missing_webhooks(shell, final)
    transport = sum(count - 1 for r in shell.receivers.values() for count in r.received.values() if count > 1)
    latency = max(
        (shell.offered_at[s.referral_id] - s.accepted_at for s in submitted if s.referral_id in shell.offered_at),
        default=0.0,
    )
    violations = await uncommitted_violations(shell)
    leaks = contact_leaks(shell, submitted)
    completed = len(submitted) - len(lost)
    return Outcome(
        scenario, len(submitted), completed, lost, transport, max(0.0, latency), violations, leaks, shell.refused
    )


def contact_leaks(shell: System, submitted: list[Submitted]) -> list[str]:
    """Every partner payload the webhooks received: a contact for a referral whose enterprise did not consent is
    a leak; an acceptance without the contact of one that did is a loss (so this check cannot pass vacuously)."""
    consented = {s.referral_id: s.consented for s in submitted}
    found = []
    for partner, receiver in shell.receivers.items():
        for event in receiver.handled.values():
            referral_id, data = event["subject"], event.get("data") or {}
            contact = (data.get("enterprise") or {}).get("contact")
            if referral_id not in consented or event["type"] != "hk.goglobal.partner.referral_accepted.v1":
                if "contact" in json.dumps(data):
                    found.append(f"{referral_id}: {event['type']} at {partner} names a contact")
            elif (contact is not None) != consented[referral_id]:
                found.append(f"{referral_id}: acceptance at {partner} has contact={contact is not None}")
    return found


def why_not_accepted(shell: System, referral_id: str) -> str:
    if referral_id not in shell.offered_at:
        return "no offer reached a partner's webhook"
    if referral_id in shell.unaccepted:
        return "intake stayed unreachable for the partner's accept until it gave up"
    if any(line.startswith(referral_id) for line in shell.refused):
        return "the partner's accept was refused"
    return "the partner's accept is still being retried"


def missing_webhooks(shell: System, final: dict[str, dict[str, Any]]) -> list[str]:
    """Accepted referrals whose partner's receiver lacks the offer or the acceptance confirmation."""
    missing = []
    for referral_id, body in final.items():
        partner = body.get("partner_id")
        if body.get("status") != "accepted" or partner not in shell.receivers:
            continue
        kinds = {e["type"] for e in shell.receivers[partner].handled.values() if e["subject"] == referral_id}
        for kind in ("referral_offered", "referral_accepted"):
            if f"hk.goglobal.partner.{kind}.v1" not in kinds:
                missing.append(f"{referral_id}: no {kind} webhook at {partner}")
    return missing


async def uncommitted_violations(shell: System) -> list[str]:
    """Events below a group's committed offset that the group's service neither handled nor dead-lettered."""
    namespace = shell.world.namespace
    topic = namespace.topic("goglobal.referrals")
    records = await _all_records(namespace.infra.kafka, topic)
    dead = await _dead_lettered(namespace.infra.kafka, f"{topic}.dlq")
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    problems = []
    try:
        for service, handled_types in LOGGED_TYPES.items():
            committed = await _committed(namespace.infra.kafka, f"{namespace.topic_prefix}goglobal-{service}", topic)
            processed = mongo[namespace.database(service)]["processed_events"]
            for (partition, offset), event in records.items():
                if offset >= committed.get(partition, 0) or event is None or event[0] not in handled_types:
                    continue
                if (partition, offset) in dead or await processed.count_documents({"_id": event[1]}):
                    continue
                problems.append(f"{service}: {event[0]} {event[1]} at {partition}:{offset} committed, not handled")
    finally:
        await mongo.close()
    return problems


async def _all_records(bootstrap: str, topic: str) -> dict[tuple[int, int], tuple[str, str] | None]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: dict[tuple[int, int], tuple[str, str] | None] = {}
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])

        async def read_all() -> bool:
            for records in (await consumer.getmany(timeout_ms=300, max_records=1000)).values():
                for record in records:
                    try:
                        event = from_kafka(record.key, record.value, list(record.headers))
                        found[(record.partition, record.offset)] = (event.type, event.id)
                    except InvalidEvent:
                        found[(record.partition, record.offset)] = None
            positions = [await consumer.position(tp) for tp in ends]
            return all(position >= end for position, end in zip(positions, ends.values(), strict=True))

        await eventually(read_all, f"all of {topic}", deadline_s=120)
    finally:
        await consumer.stop()
    return found


async def _dead_lettered(bootstrap: str, dlq: str) -> set[tuple[int, int]]:
    consumer = AIOKafkaConsumer(dlq, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: set[tuple[int, int]] = set()
    try:
        for records in (await consumer.getmany(timeout_ms=2000, max_records=10000)).values():
            for record in records:
                headers = dict(record.headers)
                found.add((int(headers["dlq_original_partition"]), int(headers["dlq_original_offset"])))
    finally:
        await consumer.stop()
    return found


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: (await consumer.committed(TopicPartition(topic, p))) or 0 for p in range(PARTITIONS)}
    finally:
        await consumer.stop()

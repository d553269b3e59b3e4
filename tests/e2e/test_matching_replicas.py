"""Two matching replicas share the work in one consumer group; one is SIGKILLed mid-stream. Every referral
still ends with exactly one accepted partner (or unmatched), none stuck."""

import asyncio
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from tests.support import Namespace, eventually
from tests.world import bearer, running_world

REFERRALS = 30
PARTNERS = ("rep-alpha", "rep-beta", "rep-gamma")
TERMINAL_FOR_TEST = {"accepted", "unmatched"}


async def accept_every_offer(http: httpx.AsyncClient, keys: dict[str, str], stop: asyncio.Event) -> None:
    """The partners' scripted behaviour: accept whatever is offered to them, as soon as they see it."""
    while not stop.is_set():
        for key in keys.values():
            page = (
                await http.get("/v1/referrals", params={"status": "offered", "limit": 100}, headers=bearer(key))
            ).json()
            for referral in page["items"]:
                await http.post(f"/v1/referrals/{referral['id']}/accept", headers=bearer(key))
        await asyncio.sleep(0.1)  # poll interval of the scripted partners, not a wait for an event


async def test_a_killed_replica_leaves_no_referral_stuck(namespace: Namespace, tmp_path: Path) -> None:
    stop = asyncio.Event()
    async with running_world(namespace, tmp_path, names=["intake", "matching"], replicas={"matching": 2}) as world:
        http, operator = world.http, world.operator
        for pid in PARTNERS:
            await world.add_partner(pid, ["legal"], ["AE"], capacity=100)  # known to both replicas
        partners_at_work = asyncio.create_task(accept_every_offer(http, world.partner_keys, stop))
        try:
            referral_ids = []
            for n in range(REFERRALS):
                referral_ids.append(await world.refer("legal", ["AE"]))
                if n == REFERRALS // 3:
                    world.processes["matching"][0].kill()  # mid-stream, without leaving the group

            async def settled() -> list[dict[str, Any]] | None:
                bodies = [
                    (await http.get(f"/v1/referrals/{rid}", headers=bearer(operator))).json() for rid in referral_ids
                ]
                return bodies if all(b["status"] in TERMINAL_FOR_TEST for b in bodies) else None

            final = await eventually(settled, "every referral to be accepted or unmatched", deadline_s=90)
        finally:
            stop.set()
            await partners_at_work
        accepted = [b for b in final if b["status"] == "accepted"]
        assert all(b["partner_id"] in PARTNERS for b in accepted)
        assert len(accepted) + sum(b["status"] == "unmatched" for b in final) == REFERRALS
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(namespace.infra.mongodb_uri)
        plans = mongo[namespace.database("matching")]["plans"]
        for body in accepted:
            # Matching records the acceptance when its event arrives, a moment after intake shows it.
            async def recorded(rid: str = body["id"]) -> dict[str, Any] | None:
                plan = await plans.find_one({"_id": rid})
                return plan if plan is not None and plan.get("accepted_by") is not None else None

            plan = await eventually(recorded, f"matching to record who accepted {body['id']}", deadline_s=30)
            assert plan["accepted_by"] == body["partner_id"], (body, plan)
            assert await plans.count_documents({"_id": body["id"]}) == 1
        await mongo.close()

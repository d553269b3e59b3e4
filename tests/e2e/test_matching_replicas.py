"""Two matching replicas share the work in one consumer group; one is SIGKILLed mid-stream. Every referral
still ends with exactly one accepted partner (or unmatched), none stuck."""

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests import factories
from tests.e2e.test_referral_flow import bearer
from tests.support import Namespace, ServiceProcess, eventually

pytestmark = pytest.mark.integration
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
    intake = ServiceProcess("intake", namespace, tmp_path).start()
    replicas = [ServiceProcess("matching", namespace, tmp_path / f"m{i}") for i in range(2)]
    for i, replica in enumerate(replicas):
        (tmp_path / f"m{i}").mkdir()
        replica.start()
    stop = asyncio.Event()
    try:
        await intake.wait_ready()
        for replica in replicas:
            await replica.wait_ready()
        operator = await factories.operator_key(namespace)
        async with httpx.AsyncClient(base_url=intake.url, timeout=15) as http:
            keys = {}
            for pid in PARTNERS:
                body = factories.partner(pid, ["legal"], ["AE"], capacity=100)
                del body["id"]
                assert (await http.put(f"/v1/partners/{pid}", json=body, headers=bearer(operator))).status_code == 201
                keys[pid] = (
                    await http.post(f"/v1/partners/{pid}/api-keys", json={"name": "t"}, headers=bearer(operator))
                ).json()["api_key"]
            for replica in replicas:

                async def knows(url: str = replica.url) -> bool:
                    codes = [(await http.get(f"{url}/internal/directory/{pid}")).status_code for pid in PARTNERS]
                    return codes == [200, 200, 200]

                await eventually(knows, "both replicas to know the partners")
            enterprise = (await http.post("/v1/enterprises", json=factories.enterprise())).json()["api_key"]["api_key"]
            partners_at_work = asyncio.create_task(accept_every_offer(http, keys, stop))
            referral_ids = []
            for n in range(REFERRALS):
                created = await http.post(
                    "/v1/service-requests",
                    headers=bearer(enterprise),
                    json={"needs": [{"service_category": "legal", "target_markets": ["AE"]}]},
                )
                referral_ids.append(created.json()["referrals"][0]["id"])
                if n == REFERRALS // 3:
                    replicas[0].kill()  # mid-stream, without leaving the group

            async def settled() -> list[dict[str, Any]] | None:
                bodies = [
                    (await http.get(f"/v1/referrals/{rid}", headers=bearer(operator))).json() for rid in referral_ids
                ]
                return bodies if all(b["status"] in TERMINAL_FOR_TEST for b in bodies) else None

            final = await eventually(settled, "every referral to be accepted or unmatched", deadline_s=90)
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
    finally:
        stop.set()
        for process in (intake, *replicas):
            with contextlib.suppress(Exception):
                process.kill()

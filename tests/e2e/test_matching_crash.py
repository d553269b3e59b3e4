"""SIGKILL of matching while referrals are in flight still ends with exactly one decision per referral."""

import json
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from tests import factories
from tests.e2e.test_referral_flow import read_events
from tests.support import Namespace, ServiceProcess, eventually
from tests.world import bearer

SEED = [{"id": "harbour-counsel", "name": "Harbour Counsel", "categories": {"legal": []}, "markets": ["AE", "SA"]}]
ONE_NEED = {"needs": [{"service_category": "legal", "target_markets": ["AE", "SA"]}]}


async def test_killed_matching_restarts_into_exactly_one_decision(namespace: Namespace, tmp_path: Path) -> None:
    seed_file = tmp_path / "partners.json"
    seed_file.write_text(json.dumps(SEED))
    seed = {"GOGLOBAL_MATCHING_SEED_PARTNERS_FILE": str(seed_file)}
    intake = ServiceProcess("intake", namespace, tmp_path).start()
    notifications = ServiceProcess("notifications", namespace, tmp_path).start()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    plans = mongo[namespace.database("matching")]["plans"]
    try:
        await intake.wait_ready()
        async with httpx.AsyncClient(base_url=intake.url, timeout=10) as http:
            # Matching starts with the seeded partner; notifications learns it from the directory, as always (an
            # offer to a partner it does not know yet waits for it).
            body = factories.partner("harbour-counsel", ["legal"], ["AE", "SA"])
            del body["id"]
            operator = bearer(await factories.operator_key(namespace))
            registered = await http.put("/v1/partners/harbour-counsel", json=body, headers=operator)
            assert registered.status_code in (200, 201), registered.text
            key = (await http.post("/v1/enterprises", json=factories.enterprise())).json()["api_key"]["api_key"]
            referral_ids = []
            for _ in range(5):
                created = await http.post("/v1/service-requests", json=ONE_NEED, headers=bearer(key))
                referral_ids.append(created.json()["referrals"][0]["id"])

            # The submitted events wait in Kafka; matching starts, and dies the moment it stored a decision,
            # before it could publish the outcome or commit every offset.
            first = ServiceProcess("matching", namespace, tmp_path, seed).start()

            async def any_plan() -> bool:
                return await plans.count_documents({}) > 0

            await eventually(any_plan, "matching to store its first decision", deadline_s=60, interval_s=0.01)
            first.kill()

            second = ServiceProcess("matching", namespace, tmp_path, seed).start()
            await second.wait_ready()

            async def all_offered() -> bool:
                bodies = [(await http.get(f"/v1/referrals/{rid}", headers=bearer(key))).json() for rid in referral_ids]
                return all(b["status"] == "offered" for b in bodies)

            await eventually(all_offered, "every referral to be offered")
            assert second.terminate() == 0

        for rid in referral_ids:
            assert await plans.count_documents({"_id": rid}) == 1
            events = await read_events(namespace, rid, count=3)
            decided = {e.get_id() for e in events if e.get_source() == "/goglobal/matching"}
            assert len(decided) == 2, f"{rid} got more than one decision: {decided}"
        inbox = mongo[namespace.database("intake")]["inbox"]  # the partner's inbox, projected by intake
        for rid in referral_ids:

            async def noted(rid: str = rid) -> bool:
                return await inbox.count_documents({"referral_id": rid, "kind": "referral_offered"}) == 1

            await eventually(noted, f"one offer notification for {rid}")
    finally:
        for proc in (intake, notifications):
            proc.kill()
        await mongo.close()

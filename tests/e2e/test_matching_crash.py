"""SIGKILL of matching while a referral is in flight still ends with exactly one match."""

import json
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.e2e.test_walking_skeleton import PARTNERS, REFERRAL, read_events
from tests.support import Namespace, ServiceProcess, eventually

pytestmark = pytest.mark.integration


async def test_killed_matching_restarts_into_exactly_one_match(namespace: Namespace, tmp_path: Path) -> None:
    partners = tmp_path / "partners.json"
    partners.write_text(json.dumps(PARTNERS))
    seed = {"GOGLOBAL_MATCHING_SEED_PARTNERS_FILE": str(partners)}
    intake = ServiceProcess("intake", namespace, tmp_path).start()
    notifications = ServiceProcess("notifications", namespace, tmp_path).start()
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    matches = mongo[namespace.database("matching")]["matches"]
    try:
        await intake.wait_ready()
        async with httpx.AsyncClient(base_url=intake.url, timeout=10) as http:
            referral_ids = [(await http.post("/v1/referrals", json=REFERRAL)).json()["id"] for _ in range(5)]

            # The submitted events wait in Kafka; matching starts, and dies the moment it stored a match,
            # before it could publish the outcome or commit every offset.
            first = ServiceProcess("matching", namespace, tmp_path, seed).start()

            async def any_match() -> bool:
                return await matches.count_documents({}) > 0

            await eventually(any_match, "matching to store its first decision", deadline_s=60, interval_s=0.01)
            first.kill()

            second = ServiceProcess("matching", namespace, tmp_path, seed).start()
            await second.wait_ready()

            async def all_matched() -> bool:
                bodies = [(await http.get(f"/v1/referrals/{rid}")).json() for rid in referral_ids]
                return all(b["status"] == "matched" for b in bodies)

            await eventually(all_matched, "every referral to be matched")
            assert second.terminate() == 0

        for rid in referral_ids:
            assert await matches.count_documents({"_id": rid}) == 1
            events = await read_events(namespace, rid, count=2)
            matched_ids = {e.get_id() for e in events if e.get_type() == "hk.goglobal.referral.matched.v1"}
            assert len(matched_ids) == 1, f"{rid} was matched by more than one decision: {matched_ids}"
        notes = mongo[namespace.database("notifications")]["notifications"]
        for rid in referral_ids:

            async def noted(rid: str = rid) -> bool:
                return await notes.count_documents({"referral_id": rid}) == 1

            await eventually(noted, f"one notification for {rid}")
    finally:
        for proc in (intake, notifications):
            proc.kill()
        await mongo.close()

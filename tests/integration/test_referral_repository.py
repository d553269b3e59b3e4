"""Intake's referral documents: status changes go through the state machine, once per event."""

from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from goglobal_shared.enums import ReferralStatus, ServiceCategory
from goglobal_shared.state_machine import IllegalTransition
from intake.adapters.referral_repository import ReferralNotFound, ReferralRepository
from intake.domain.referrals import NewReferral, submit
from tests.support import Namespace

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 26, tzinfo=UTC)


async def test_status_changes_apply_once_and_follow_the_state_machine(namespace: Namespace) -> None:
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(namespace.infra.mongodb_uri, tz_aware=True)
    repo = ReferralRepository(mongo[namespace.database("intake")]["referrals"])
    await repo.ensure_indexes()
    try:
        referral_id, event = submit(NewReferral("Bright Solar", ServiceCategory.LEGAL, ["AE", "AE"], ""), NOW)
        doc = await repo.add(referral_id, event, NOW)
        assert doc["target_markets"] == ["AE"]
        assert doc["outbox_count"] == 1

        await repo.apply(referral_id, "evt-1", ReferralStatus.MATCHED, {"matched_partner": {"partner_id": "p"}}, NOW)
        await repo.apply(referral_id, "evt-1", ReferralStatus.MATCHED, {}, NOW)  # redelivery: no-op
        stored = await repo.get(referral_id)
        assert stored["status"] == "matched"
        assert [step["event_id"] for step in stored["history"]] == ["evt-1"]
        assert "outbox" not in stored

        with pytest.raises(IllegalTransition):
            await repo.apply(referral_id, "evt-2", ReferralStatus.COMPLETED, {}, NOW)
        with pytest.raises(ReferralNotFound):
            await repo.apply("f" * 32, "evt-3", ReferralStatus.MATCHED, {}, NOW)
    finally:
        await mongo.close()

"""The partner examples work as documented: the Kafka consumer on the real broker, the webhook receiver in-process."""

import asyncio
import base64
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from standardwebhooks import Webhook

from examples import partner_consumer, webhook_receiver
from goglobal_contract.envelope import CONTENT_TYPE, Envelope, to_kafka
from goglobal_contract.event_base import EventPayload
from goglobal_contract.events import ContactDetails, OfferWithdrawalReason
from goglobal_contract.partner_events import (
    EnterpriseIdentity,
    EnterpriseProfileSummary,
    NeedSummary,
    OfferExpiredForPartner,
    OfferWithdrawnFromPartner,
    ReferralAcceptedByPartner,
    ReferralOfferedToPartner,
    partner_topic,
)
from goglobal_shared.kafka import ensure_topics, make_producer
from tests.support import Namespace, eventually

SOURCE = "/goglobal/intake"  # intake writes the partner events; notifications forwards them unchanged
A_FIRM, B_FIRM = "a-firm", "b-firm"
B_REFERRAL = "b-firm-referral"
UNKNOWN_TYPE = "hk.goglobal.partner.referral_reopened.v1"  # a type added after the partner wrote its code
NOW = datetime(2026, 3, 2, 1, 15, tzinfo=UTC)


def offered(referral_id: str, partner_id: str = A_FIRM) -> ReferralOfferedToPartner:
    return ReferralOfferedToPartner(
        partner_id=partner_id,
        referral_id=referral_id,
        need=NeedSummary(service_category="legal", target_markets=["AE", "SA"], description="Dubai subsidiary"),
        enterprise=EnterpriseProfileSummary(sector="C27", size_band="medium", hq_province="Guangdong"),
        offered_at=NOW,
        respond_by=NOW + timedelta(hours=48),
        round=1,
    )


def accepted(referral_id: str, partner_id: str = A_FIRM) -> ReferralAcceptedByPartner:
    contact = ContactDetails(name="Li Wei", email="li.wei@brightsolar.example.cn", phone="+8613812345678")
    enterprise = EnterpriseIdentity(
        enterprise_id="e-1",
        legal_name_zh="深圳光明太阳能科技有限公司",
        legal_name_en="Shenzhen Bright Solar Technology Co., Ltd.",
        hq_province="Guangdong",
        hq_city="Shenzhen",
        contact=contact,
    )
    return ReferralAcceptedByPartner(
        partner_id=partner_id, referral_id=referral_id, accepted_at=NOW, enterprise=enterprise
    )


def wrap(payload: EventPayload, referral_id: str) -> Envelope:
    return Envelope.wrap(payload, source=SOURCE, subject=referral_id)


async def send(producer: AIOKafkaProducer, topic: str, envelope: Envelope) -> None:
    record = to_kafka(envelope)
    await producer.send_and_wait(topic, value=record.value, key=record.key, headers=record.headers)


# --- the partner's Kafka consumer ----------------------------------------------------------------------------


@pytest.fixture
async def producer(namespace: Namespace) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(namespace.infra.kafka, "test-examples")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def publish_for_two_partners(namespace: Namespace, producer: AIOKafkaProducer) -> list[Envelope]:
    """a-firm's events (one sent twice), one of a type nobody knows yet, a non-CloudEvent; one for b-firm."""
    a_topic, b_topic = (partner_topic(namespace.topic_prefix, p) for p in (A_FIRM, B_FIRM))
    await ensure_topics(namespace.infra.kafka, [a_topic, b_topic])
    first, second = f"a1-{uuid.uuid4().hex}", f"a2-{uuid.uuid4().hex}"
    expected = [
        wrap(offered(first), first),
        wrap(offered(second), second),
        wrap(accepted(first), first),
        wrap(OfferExpiredForPartner(partner_id=A_FIRM, referral_id=second, offered_at=NOW, expired_at=NOW), second),
    ]
    future = OfferWithdrawnFromPartner(
        partner_id=A_FIRM, referral_id=first, reason=OfferWithdrawalReason.ACCEPTED_ELSEWHERE, withdrawn_at=NOW
    )
    unknown = Envelope(type=UNKNOWN_TYPE, source=SOURCE, subject=first, data=future)
    await send(producer, b_topic, wrap(offered(B_REFERRAL, B_FIRM), B_REFERRAL))
    for envelope in (expected[0], expected[0], expected[1], unknown, expected[2], expected[3]):
        await send(producer, a_topic, envelope)
    await producer.send_and_wait(a_topic, value=b"not a cloudevent", key=second.encode())
    return expected


def rows(db: Path, sql: str) -> list[tuple[str, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql))


async def committed_to_end(kafka: str, group: str, topic: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    reader = AIOKafkaConsumer(bootstrap_servers=kafka)
    await admin.start()
    await reader.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        (described,) = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        ends = {tp: end for tp, end in (await reader.end_offsets(partitions)).items() if end > 0}
        return bool(ends) and all(tp in committed and committed[tp].offset == end for tp, end in ends.items())
    finally:
        await reader.stop()
        await admin.close()


async def test_partner_consumer_handles_its_own_events_once(
    namespace: Namespace, producer: AIOKafkaProducer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="partner_consumer")
    expected = await publish_for_two_partners(namespace, producer)
    db, suffix, stop = tmp_path / "a-firm.db", f"crm-{uuid.uuid4().hex[:8]}", asyncio.Event()
    run = partner_consumer.run(namespace.infra.kafka, A_FIRM, suffix, db, stop, topic_prefix=namespace.topic_prefix)
    task = asyncio.create_task(run)
    try:

        async def handled_all() -> bool:
            return db.exists() and len(rows(db, "SELECT event_id FROM processed_events")) >= len(expected)

        await eventually(handled_all, "the example consumer to handle a-firm's events")
        group, topic = f"partner-{A_FIRM}.{suffix}", partner_topic(namespace.topic_prefix, A_FIRM)
        await eventually(lambda: committed_to_end(namespace.infra.kafka, group, topic), "offsets committed to the end")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)

    effects = rows(db, "SELECT event_id, referral_id, status FROM referrals ORDER BY id")
    assert sorted(event_id for event_id, _, _ in effects) == sorted(e.id for e in expected)  # each once, no b1
    assert {(e.id, e.subject) for e in expected} == {(event_id, ref) for event_id, ref, _ in effects}
    assert [status for _, ref, status in effects if ref == expected[0].subject] == ["offered", "accepted"]
    assert [status for _, ref, status in effects if ref == expected[1].subject] == ["offered", "offer_expired"]
    assert sorted(r[0] for r in rows(db, "SELECT event_id FROM processed_events")) == sorted(e.id for e in expected)
    assert "li.wei@brightsolar.example.cn" in rows(db, "SELECT note FROM referrals WHERE status = 'accepted'")[0][0]
    assert rows(db, f"SELECT * FROM referrals WHERE referral_id = '{B_REFERRAL}'") == []
    assert any(UNKNOWN_TYPE in r.getMessage() for r in caplog.records), "the unknown type is logged"
    assert any("already handled" in r.getMessage() for r in caplog.records), "the duplicate is skipped"


# --- the partner's webhook receiver --------------------------------------------------------------------------

OLD_SECRET = "whsec_" + base64.b64encode(b"old secret of a-firm, 32 bytes!!").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"new secret of a-firm, 32 bytes!!").decode()


def structured(envelope: Envelope) -> str:
    """The body GoGlobal POSTs: the CloudEvent in JSON structured mode."""
    attributes = {
        "id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "subject": envelope.subject,
        "time": envelope.time,
        "datacontenttype": CONTENT_TYPE,
    }
    event = CloudEvent(attributes=attributes, data=envelope.data.model_dump(mode="json"))
    return JSONFormat().write(event).decode()


def signed(body: str, msg_id: str, secrets: list[str], at: datetime | None = None) -> dict[str, str]:
    when = at or datetime.now(UTC)
    return {
        "content-type": "application/cloudevents+json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(msg_id, when, body) for secret in secrets),
    }


def receiver(secret: str | list[str], db: Path) -> httpx.AsyncClient:
    app = webhook_receiver.create_app(secret, db)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver")


async def post(
    client: httpx.AsyncClient, body: str, msg_id: str, secrets: list[str], at: datetime | None = None
) -> httpx.Response:
    return await client.post(webhook_receiver.PATH, content=body, headers=signed(body, msg_id, secrets, at))


def handled(db: Path) -> list[str]:
    return [r[0] for r in rows(db, "SELECT webhook_id FROM handled_events")]


async def test_webhook_receiver_handles_a_signed_event_once(tmp_path: Path) -> None:
    db, envelope = tmp_path / "hooks.db", wrap(offered("r-1"), "r-1")
    body = structured(envelope)
    async with receiver(NEW_SECRET, db) as client:
        first = await post(client, body, envelope.id, [NEW_SECRET])
        again = await post(client, body, envelope.id, [NEW_SECRET])
    assert first.status_code == 200, first.text
    assert first.json() == {"id": envelope.id, "duplicate": False}
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert handled(db) == [envelope.id]


async def test_webhook_receiver_refuses_a_wrong_secret_a_replay_and_a_changed_body(tmp_path: Path) -> None:
    db, envelope = tmp_path / "hooks.db", wrap(offered("r-1"), "r-1")
    body = structured(envelope)
    async with receiver(NEW_SECRET, db) as client:
        wrong = await post(client, body, envelope.id, [OLD_SECRET])
        replay = await post(client, body, envelope.id, [NEW_SECRET], at=datetime.now(UTC) - timedelta(minutes=10))
        headers = signed(body, envelope.id, [NEW_SECRET])
        changed = await client.post(webhook_receiver.PATH, content=body.replace("r-1", "r-2"), headers=headers)
        unsigned = await client.post(webhook_receiver.PATH, content=body)
    assert [r.status_code for r in (wrong, replay, changed, unsigned)] == [401, 401, 401, 401]
    assert handled(db) == []


async def test_webhook_receiver_follows_a_secret_rotation(tmp_path: Path) -> None:
    during, after = wrap(offered("r-1"), "r-1"), wrap(offered("r-2"), "r-2")
    async with receiver(NEW_SECRET, tmp_path / "new-only.db") as client:
        both = await post(client, structured(during), during.id, [OLD_SECRET, NEW_SECRET])
    async with receiver([NEW_SECRET, OLD_SECRET], tmp_path / "both.db") as client:
        old_only = await post(client, structured(after), after.id, [OLD_SECRET])
    assert (both.status_code, old_only.status_code) == (200, 200)
    assert handled(tmp_path / "new-only.db") == [during.id]
    assert handled(tmp_path / "both.db") == [after.id]


async def test_webhook_receiver_acknowledges_unknown_types_and_refuses_garbage(tmp_path: Path) -> None:
    db = tmp_path / "hooks.db"
    unknown = Envelope(type=UNKNOWN_TYPE, source=SOURCE, subject="r-1", data=offered("r-1"))
    async with receiver(NEW_SECRET, db) as client:
        ignored = await post(client, structured(unknown), unknown.id, [NEW_SECRET])
        refused = await post(client, '{"hello": "world"}', "x-1", [NEW_SECRET])
    assert ignored.status_code == 200
    assert refused.status_code == 400
    assert handled(db) == []

"""A partner organisation's own Kafka consumer of GoGlobal referral events.

What a partner's engineer writes to receive referrals on the partner's own topic `goglobal.partner.<partner-id>`:
a plain aiokafka consumer in the consumer group `partner-<partner-id>.<app>` (the only groups the partner's
credentials may use), reading each record with the published contract package `goglobal-contract`: `from_kafka`
checks it is a CloudEvent in Kafka binary mode and validates its payload into the typed model of its type
(`goglobal_contract.partner_events`). Nothing else of GoGlobal's code is needed.

Delivery is at least once: after a crash or a rebalance a record can come again. So each event's id (`ce_id`) is
recorded in the same SQLite transaction as the effect of handling it (here: a row in `referrals`), a repeated id
is skipped, and the offset is committed only after the transaction. Events of a type this code does not know
(newer than the installed contract, or not handled here) are logged and skipped: new types may appear at any time;
unknown fields are ignored the same way.

Requirements: Python 3.11+, `pip install aiokafka ./contract` (the contract package from the GoGlobal repository;
it brings pydantic and the CloudEvents SDK, and no server-side dependency).

Run against the local development broker (`make run` in the GoGlobal repository):

    python examples/partner_consumer.py --bootstrap-servers 127.0.0.1:9092 \
        --partner-id lexbridge-legal --group-suffix crm --db lexbridge.db

Against production, the operators give you the bootstrap servers and a SASL/SCRAM user `partner-<id>`; set
KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (TLS is then used). Stop with Ctrl-C: the consumer finishes the
batch in hand, commits, and exits.
"""

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CommitFailedError, IllegalStateError

from goglobal_contract.envelope import Envelope, InvalidEvent, from_kafka
from goglobal_contract.event_base import EventPayload
from goglobal_contract.partner_events import (
    PARTNER_PAYLOADS,
    OfferExpiredForPartner,
    OfferWithdrawnFromPartner,
    ReferralAcceptedByPartner,
    ReferralClosedByOperator,
    ReferralOfferedToPartner,
    ReferralRatedByEnterprise,
    ReferralWithdrawnByEnterprise,
)

log = logging.getLogger("partner_consumer")

KNOWN_TYPES = frozenset(cls.event_type for cls in PARTNER_PAYLOADS)
SCHEMA = """
CREATE TABLE IF NOT EXISTS processed_events (
    event_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    handled_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS referrals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    referral_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    status TEXT NOT NULL,
    note TEXT NOT NULL
);
"""


def effect(event: EventPayload) -> tuple[str, str] | None:
    """(status, note) for the `referrals` row an event leaves, or None for a type this code does not handle."""
    match event:
        case ReferralOfferedToPartner(need=need, respond_by=respond_by):
            markets = ", ".join(need.target_markets)
            return "offered", f"{need.service_category} in {markets}; answer by {respond_by.isoformat()}"
        case ReferralAcceptedByPartner(enterprise=enterprise):
            contact = enterprise.contact  # present only if the enterprise consented to share it
            reach = f"{contact.name} <{contact.email}>" if contact else "contact not shared"
            return "accepted", f"{enterprise.legal_name_en} ({enterprise.legal_name_zh}): {reach}"
        case OfferWithdrawnFromPartner(reason=reason):
            return "offer_withdrawn", str(reason)
        case OfferExpiredForPartner(expired_at=expired_at):
            return "offer_expired", f"expired at {expired_at.isoformat()}"
        case ReferralWithdrawnByEnterprise():
            return "withdrawn", "withdrawn by the enterprise"
        case ReferralClosedByOperator(reason=reason):
            return "closed", reason
        case ReferralRatedByEnterprise(score=score, comment=comment):
            return "rated", f"{score}/5 {comment}".strip()
    return None


def open_db(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)  # explicit BEGIN/COMMIT below
    conn.executescript(SCHEMA)
    return conn


def parse(record: ConsumerRecord[bytes, bytes]) -> Envelope | None:
    """The record as a validated event; None (logged) for a type this code does not know; raises InvalidEvent
    when the record is not a well-formed event of a known type."""
    event_type = dict(record.headers).get("ce_type", b"").decode(errors="replace")
    if event_type and event_type not in KNOWN_TYPES:
        ce_id = dict(record.headers).get("ce_id", b"?").decode(errors="replace")
        log.warning("ignoring event %s of unknown type %s", ce_id, event_type)
        return None
    return from_kafka(record.key, record.value, record.headers)


def handle(conn: sqlite3.Connection, envelope: Envelope) -> bool:
    """Stores the event's effect and its id in one transaction; False when skipped or seen before."""
    outcome = effect(envelope.data)
    if outcome is None:
        log.warning("ignoring event %s of type %s: not handled here", envelope.id, envelope.type)
        return False
    status, note = outcome
    referral_id = envelope.subject  # the referral id, also the record key
    with transaction(conn):
        seen = conn.execute(
            "INSERT OR IGNORE INTO processed_events (event_id, event_type) VALUES (?, ?)",
            (envelope.id, envelope.type),
        )
        if seen.rowcount == 0:
            log.info("skipping event %s: already handled", envelope.id)
            return False
        conn.execute(
            "INSERT INTO referrals (referral_id, event_id, status, note) VALUES (?, ?, ?, ?)",
            (referral_id, envelope.id, status, note),
        )
    log.info("referral %s: %s (%s)", referral_id, status, note)
    return True


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def process(conn: sqlite3.Connection, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
    """Handles records in order. A malformed one is logged and skipped (it would fail the same way forever); a
    database error propagates, so nothing is committed and the records come again after a restart."""
    for record in records:
        try:
            envelope = parse(record)
        except InvalidEvent as exc:
            log.error("skipping record %s/%d@%d: %s", record.topic, record.partition, record.offset, exc)
            continue
        if envelope is not None:
            handle(conn, envelope)


async def run(
    bootstrap_servers: str,
    partner_id: str,
    group_suffix: str,
    db_path: str | Path,
    stop: asyncio.Event,
    *,
    topic_prefix: str = "",
    kafka_options: Mapping[str, Any] | None = None,
) -> None:
    """Consumes `goglobal.partner.<partner_id>` until `stop` is set; commits after each handled batch."""
    topic = f"{topic_prefix}goglobal.partner.{partner_id}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=f"partner-{partner_id}.{group_suffix}",
        client_id=f"partner-{partner_id}.{group_suffix}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a new group starts at the oldest event still kept
        **dict(kafka_options or {}),
    )
    conn = open_db(db_path)
    await consumer.start()
    log.info("consuming %s as group partner-%s.%s", topic, partner_id, group_suffix)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=200)
            for partition, records in batches.items():
                process(conn, records)
                try:
                    await consumer.commit({partition: records[-1].offset + 1})
                except (CommitFailedError, IllegalStateError) as exc:
                    # A rebalance moved the partition: its new owner gets these records again and skips them.
                    log.warning("could not commit %s: %s", partition, exc)
    finally:
        await consumer.stop()
        conn.close()


def security_options() -> dict[str, Any]:
    """SASL/SCRAM over TLS when KAFKA_SASL_USERNAME is set; nothing for a local broker."""
    username = os.environ.get("KAFKA_SASL_USERNAME")
    if not username:
        return {}
    from aiokafka.helpers import create_ssl_context

    return {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": username,
        "sasl_plain_password": os.environ["KAFKA_SASL_PASSWORD"],
        "ssl_context": create_ssl_context(),
    }


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Consume a partner's GoGlobal topic into a SQLite database.")
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--partner-id", required=True, help="your partner id, e.g. lexbridge-legal")
    parser.add_argument("--group-suffix", default="crm", help="group is partner-<id>.<suffix> (default: crm)")
    parser.add_argument("--db", default="partner-events.db", help="SQLite database file")
    parser.add_argument("--topic-prefix", default="", help="only for test deployments that prefix topics")
    return parser.parse_args()


async def main() -> None:
    args = arguments()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(
        args.bootstrap_servers,
        args.partner_id,
        args.group_suffix,
        args.db,
        stop,
        topic_prefix=args.topic_prefix,
        kafka_options=security_options(),
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(main())

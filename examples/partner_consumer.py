"""A partner organisation's own Kafka consumer of GoGlobal referral events.

What a partner's engineer writes to receive referrals on the partner's own topic `goglobal.partner.<partner-id>`:
a plain aiokafka consumer in the consumer group `partner-<partner-id>.<app>` (the only groups the partner's
credentials may use), reading each record as a CloudEvent in Kafka binary mode with the official CloudEvents SDK.

Delivery is at least once: after a crash or a rebalance a record can come again. So each event's id (`ce_id`) is
recorded in the same SQLite transaction as the effect of handling it (here: a row in `referrals`), a repeated id
is skipped, and the offset is committed only after the transaction. Events of a type this code does not know
are logged and skipped (new types may appear at any time; unknown fields are ignored the same way).

Requirements: Python 3.11+, `pip install aiokafka cloudevents` (cloudevents 2.x).

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
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CommitFailedError, IllegalStateError
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

log = logging.getLogger("partner_consumer")

TYPE_PREFIX = "hk.goglobal.partner."
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

Event = Mapping[str, Any]
Handler = Callable[[Event], tuple[str, str]]  # event data -> (status, note) for the `referrals` row


def on_offered(data: Event) -> tuple[str, str]:
    need = data["need"]
    markets = ", ".join(need["target_markets"])
    return "offered", f"{need['service_category']} in {markets}; answer by {data['respond_by']}"


def on_accepted(data: Event) -> tuple[str, str]:
    enterprise = data["enterprise"]
    contact = enterprise.get("contact")  # present only if the enterprise consented to share it
    reach = f"{contact['name']} <{contact['email']}>" if contact else "contact not shared"
    return "accepted", f"{enterprise['legal_name_en']} ({enterprise['legal_name_zh']}): {reach}"


def on_rated(data: Event) -> tuple[str, str]:
    return "rated", f"{data['score']}/5 {data.get('comment', '')}".strip()


HANDLERS: dict[str, Handler] = {
    TYPE_PREFIX + "referral_offered.v1": on_offered,
    TYPE_PREFIX + "referral_accepted.v1": on_accepted,
    TYPE_PREFIX + "offer_withdrawn.v1": lambda data: ("offer_withdrawn", data["reason"]),
    TYPE_PREFIX + "offer_expired.v1": lambda data: ("offer_expired", f"expired at {data['expired_at']}"),
    TYPE_PREFIX + "referral_withdrawn.v1": lambda data: ("withdrawn", "withdrawn by the enterprise"),
    TYPE_PREFIX + "referral_closed.v1": lambda data: ("closed", data["reason"]),
    TYPE_PREFIX + "referral_rated.v1": on_rated,
}


def open_db(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)  # explicit BEGIN/COMMIT below
    conn.executescript(SCHEMA)
    return conn


def parse(record: ConsumerRecord[bytes, bytes]) -> BaseCloudEvent:
    """The record as a CloudEvent (Kafka binary mode); raises ValueError when it is not one."""
    headers = {name: value for name, value in record.headers}
    if "ce_id" not in headers or "ce_type" not in headers:
        raise ValueError("not a CloudEvent in binary mode: no ce_id / ce_type header")
    if record.value is None:
        raise ValueError("record has no value")
    message = KafkaMessage(headers=headers, key=record.key, value=record.value)
    try:
        return from_binary(message, JSONFormat(), CloudEvent)
    except Exception as exc:  # the SDK raises several unrelated types for malformed input
        raise ValueError(f"not a CloudEvent: {exc}") from exc


def handle(conn: sqlite3.Connection, event: BaseCloudEvent) -> bool:
    """Stores the event's effect and its id in one transaction; False when skipped or seen before."""
    handler = HANDLERS.get(event.get_type())
    if handler is None:
        log.warning("ignoring event %s of unknown type %s", event.get_id(), event.get_type())
        return False
    data = event.get_data()
    if not isinstance(data, dict) or "referral_id" not in data:
        raise ValueError(f"event {event.get_id()} carries no referral")
    try:
        status, note = handler(data)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"event {event.get_id()} lacks {exc}") from exc
    with transaction(conn):
        seen = conn.execute(
            "INSERT OR IGNORE INTO processed_events (event_id, event_type) VALUES (?, ?)",
            (event.get_id(), event.get_type()),
        )
        if seen.rowcount == 0:
            log.info("skipping event %s: already handled", event.get_id())
            return False
        conn.execute(
            "INSERT INTO referrals (referral_id, event_id, status, note) VALUES (?, ?, ?, ?)",
            (data["referral_id"], event.get_id(), status, note),
        )
    log.info("referral %s: %s (%s)", data["referral_id"], status, note)
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
            handle(conn, parse(record))
        except ValueError as exc:
            log.error("skipping record %s/%d@%d: %s", record.topic, record.partition, record.offset, exc)


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

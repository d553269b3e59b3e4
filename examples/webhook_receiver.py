"""A partner organisation's receiver of GoGlobal webhooks.

GoGlobal POSTs each event for a partner to the partner's `webhook_url` as a CloudEvent in JSON structured mode
(`content-type: application/cloudevents+json`), signed as a Standard Webhook: headers `webhook-id` (= the
CloudEvent id), `webhook-timestamp` (unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256>`; during a
secret rotation two signatures, one per secret). This receiver

- verifies the signature with the `standardwebhooks` library against every configured secret (configure both old
  and new while rotating) and answers 401 on a bad signature or a timestamp more than 5 minutes away (replay);
- dedupes on `webhook-id`: a delivery seen before is answered 200 without being handled again (GoGlobal retries
  until it gets a 2xx, so the same event can arrive more than once);
- parses the body with the official CloudEvents SDK, handles known types, acknowledges and ignores unknown ones;
- records what it handled in SQLite, in the same transaction as the `webhook-id`.

Answer quickly (GoGlobal waits 15 s); a 5xx or a timeout makes GoGlobal retry later, any other 4xx stops retries
of that event.

Requirements: Python 3.11+, `pip install fastapi uvicorn standardwebhooks cloudevents` (cloudevents 2.x).

Run (the secret comes from `GET /v1/partners/me/webhook-secret`; while rotating give both, space-separated):

    GOGLOBAL_WEBHOOK_SECRETS="whsec_..." python examples/webhook_receiver.py --db webhooks.db --port 8080

and set the partner's `webhook_url` to `https://<your host>/webhooks/goglobal` (behind your TLS proxy).
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import uvicorn
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

log = logging.getLogger("webhook_receiver")

PATH = "/webhooks/goglobal"
SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    webhook_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS handled_events (
    webhook_id TEXT PRIMARY KEY REFERENCES deliveries (webhook_id),
    event_type TEXT NOT NULL,
    referral_id TEXT,
    data TEXT NOT NULL
);
"""
KNOWN_TYPES = frozenset(
    "hk.goglobal.partner." + name
    for name in (
        "referral_offered.v1",
        "offer_withdrawn.v1",
        "offer_expired.v1",
        "referral_accepted.v1",
        "referral_withdrawn.v1",
        "referral_closed.v1",
        "referral_rated.v1",
    )
)


def verify(webhooks: Sequence[Webhook], body: bytes, headers: Mapping[str, str]) -> bool:
    """True when any configured secret verifies the signature and the timestamp is within 5 minutes."""
    for webhook in webhooks:
        try:
            webhook.verify(body, dict(headers), json_parse=False)
            return True
        except (WebhookVerificationError, ValueError):  # malformed headers raise ValueError
            continue
    return False


@contextlib.contextmanager
def connect(db_path: str | Path) -> Iterator[sqlite3.Connection]:
    """One connection per request; commits on success, rolls back on error."""
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def init_db(db_path: str | Path) -> None:
    with connect(db_path) as conn:
        conn.executescript(SCHEMA)


def record(db_path: str | Path, webhook_id: str, event: BaseCloudEvent) -> bool:
    """Stores the delivery and, for a known type, its effect, in one transaction. False for a duplicate."""
    with connect(db_path) as conn:
        inserted = conn.execute(
            "INSERT OR IGNORE INTO deliveries (webhook_id, event_type) VALUES (?, ?)", (webhook_id, event.get_type())
        )
        if inserted.rowcount == 0:
            return False
        if event.get_type() not in KNOWN_TYPES:
            log.warning("acknowledging event %s of unknown type %s without handling it", webhook_id, event.get_type())
            return True
        data = event.get_data()
        referral_id = data.get("referral_id") if isinstance(data, dict) else None
        conn.execute(
            "INSERT INTO handled_events (webhook_id, event_type, referral_id, data) VALUES (?, ?, ?, ?)",
            (webhook_id, event.get_type(), referral_id, json.dumps(data, ensure_ascii=False)),
        )
    log.info("handled %s %s for referral %s", webhook_id, event.get_type(), referral_id)
    return True


def problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def create_app(secret: str | list[str], db_path: str | Path) -> FastAPI:
    """The receiver; `secret` is one `whsec_...` secret or several (old and new while rotating)."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise ValueError("configure at least one webhook secret")
    webhooks = [Webhook(s) for s in secrets]
    init_db(db_path)
    app = FastAPI(title="GoGlobal webhook receiver")

    @app.post(PATH)
    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        if not verify(webhooks, body, request.headers):
            return problem(401, "invalid signature or timestamp")
        webhook_id = request.headers["webhook-id"]
        try:
            event = JSONFormat().read(CloudEvent, body)
        except Exception as exc:  # the SDK raises several unrelated types for malformed input
            return problem(400, f"not a CloudEvent in JSON structured mode: {exc}")
        new = await asyncio.to_thread(record, db_path, webhook_id, event)
        return JSONResponse({"id": webhook_id, "duplicate": not new}, status_code=200)

    return app


def secrets_from_env() -> list[str]:
    secrets = os.environ.get("GOGLOBAL_WEBHOOK_SECRETS", "").split()
    if not secrets:
        raise SystemExit("set GOGLOBAL_WEBHOOK_SECRETS to your whsec_... secret (two, space-separated, when rotating)")
    return secrets


def main() -> None:
    parser = argparse.ArgumentParser(description="Receive GoGlobal webhooks into a SQLite database.")
    parser.add_argument("--db", default="webhooks.db", help="SQLite database file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    uvicorn.run(create_app(secrets_from_env(), args.db), host=args.host, port=args.port)


if __name__ == "__main__":
    main()

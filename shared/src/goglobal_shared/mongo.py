"""MongoDB access through PyMongo's asyncio API; code stays inside what tests/contract proves on every supported
server (MongoDB 7, nx-27017, mongo-java-server)."""

from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from goglobal_shared.db_metrics import CommandCounter

Document = dict[str, Any]
DUPLICATE_KEY = 11000


def stored_at_or_before(value: object, limit: datetime) -> bool:
    """Is `value`, as read from a document, a date at or before `limit`? Dates come back naive from a client
    that is not tz_aware (BSON dates are UTC); anything that is not a date is not.

    The store's due queues compare times with this after querying by an indexed equality, oldest first: a date
    range in the query itself made nx-27017 scan the whole collection."""
    if not isinstance(value, datetime):
        return False
    return (value if value.tzinfo else value.replace(tzinfo=UTC)) <= limit


def duplicates_only(exc: BulkWriteError) -> set[int]:
    """The positions of a bulk write's operations refused because their `_id` (or another unique key) is taken:
    the harmless refusals of a write that is repeated. Raises `exc` when any was refused for another reason."""
    errors = exc.details.get("writeErrors", [])
    if any(error.get("code") != DUPLICATE_KEY for error in errors):
        raise exc
    return {error["index"] for error in errors}


async def insert_new(collection: AsyncCollection[Document], docs: list[Document]) -> list[Document]:
    """Inserts `docs` in one unordered write; one whose `_id` (or other unique key) is taken is left as stored.
    Returns those inserted."""
    if not docs:
        return []
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        existing = duplicates_only(exc)
        return [doc for position, doc in enumerate(docs) if position not in existing]
    return docs


def make_client(uri: str, service: str | None = None) -> AsyncMongoClient[Document]:
    """A client for `uri`. With `service`, every command it sends is counted in `goglobal_db_commands_total`
    under that service's name (`goglobal_shared.db_metrics`); services pass their name, one-off tools need not."""
    listeners = [CommandCounter(service)] if service is not None else []
    return AsyncMongoClient(
        uri, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, event_listeners=listeners
    )


async def ping(db: AsyncDatabase[Document]) -> None:
    await db.command("ping")

"""MongoDB access through PyMongo's asyncio API; code stays inside what MongoDB 7 and FerretDB 1.x share."""

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]


def make_client(uri: str) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000)


async def ping(db: AsyncDatabase[Document]) -> None:
    await db.command("ping")

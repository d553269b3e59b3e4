"""Document locks that hold across processes, on MongoDB and on FerretDB alike.

Why: FerretDB 1.x (SQLite backend) runs an update as "query, change in Go, write back" in separate steps, so
two concurrent updates of one document can lose one of them, and a conditional update (`{version: n}`) is not
a compare-and-set (measured: 250 concurrent `$inc` on one document left it at 48). Inserting into a unique
`_id` is atomic on both servers, so a lock is a document inserted under the locked key and deleted on release.
A holder that died leaves a lock that others may break once it has expired.
"""

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.mongo import Document


class LockTimeout(TimeoutError):
    pass


def document_key(collection: AsyncCollection[Document], doc_id: object) -> str:
    """The lock that guards writes to one document."""
    return f"{collection.name}:{doc_id}"


class DocumentLocks:
    def __init__(self, collection: AsyncCollection[Document], ttl_s: float = 30.0) -> None:
        self.collection = collection
        self.ttl = timedelta(seconds=ttl_s)
        self.owner = uuid.uuid4().hex
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}  # key -> (lock, tasks using it)

    @contextlib.asynccontextmanager
    async def hold(self, key: str, wait_s: float = 30.0) -> AsyncIterator[None]:
        """Holds `key` for the duration of the block; raises LockTimeout if it stays taken for `wait_s`."""
        local, users = self._local.get(key, (asyncio.Lock(), 0))
        self._local[key] = (local, users + 1)
        try:
            async with local:  # tasks of this process queue here instead of polling the database
                await self._acquire(key, wait_s)
                try:
                    yield
                finally:
                    await self.release(key)
        finally:
            lock, users = self._local[key]
            if users == 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)

    async def try_hold(self, key: str) -> bool:
        """Takes `key` if it is free now (for work that another process may just as well do)."""
        return await self._try(key)

    async def release(self, key: str) -> None:
        await self.collection.delete_one({"_id": key, "owner": self.owner})

    async def _acquire(self, key: str, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        delay = 0.002
        while not await self._try(key):
            if time.monotonic() > deadline:
                raise LockTimeout(f"lock {key!r} stayed taken for {wait_s:.0f}s")
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, 0.1)

    async def _try(self, key: str) -> bool:
        now = datetime.now(UTC)
        try:
            await self.collection.insert_one({"_id": key, "owner": self.owner, "until": now + self.ttl})
            return True
        except DuplicateKeyError:
            # Break a lock whose holder died; a live holder's lock has not expired.
            await self.collection.delete_one({"_id": key, "until": {"$lt": now}})
            return False

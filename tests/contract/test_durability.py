"""Check 4: every acknowledged write survives a SIGKILL of the server in the middle of a stream of writes.

Only for servers that claim durability. For the default server the test starts a private nx-27017 (the project's
local server) on its own data directory and port, because it must kill it: writers stream acknowledged inserts,
the server is killed with SIGKILL while they run, restarted on the same data directory, and every acknowledged
`_id` must be there. Inserts in flight at the kill may or may not have been committed, so the stored count may
exceed the acknowledged one by at most the number of writers.
"""

import asyncio
import contextlib
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from tests.contract.conftest import MONGO_JAVA_SERVER
from tests.contract.servers import NX_27017_ENV, Doc, nx_27017_executable, start_nx_27017
from tests.support import TIME_SCALE, free_port

WRITERS = 8
KILL_AFTER_ACKS = 400
DEADLINE_S = 30.0 * TIME_SCALE


async def test_acknowledged_writes_survive_sigkill(server_name: str, tmp_path: Path) -> None:
    if server_name == MONGO_JAVA_SERVER:
        pytest.skip("in-memory: not durable, behaviour checks only")
    executable = nx_27017_executable()
    if executable is None:
        pytest.skip(f"nx-27017 not found: set {NX_27017_ENV}, or install it (deploy/local/infra.py's venv, or on PATH)")
    port, data = free_port(), tmp_path / "data"
    uri = f"mongodb://127.0.0.1:{port}/"
    server = start_nx_27017(executable, data, port, tmp_path)
    acknowledged: list[str] = []
    try:
        client: AsyncMongoClient[Doc] = AsyncMongoClient(
            uri, retryWrites=False, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000, socketTimeoutMS=10_000
        )
        writes = client["durability"]["writes"]

        async def writer(w: int) -> None:
            for i in range(100_000):
                doc_id = f"{w}-{i}"
                try:
                    await writes.insert_one({"_id": doc_id, "writer": w, "seq": i, "pad": "x" * 200})
                except PyMongoError:
                    return  # the server is gone: this write was not acknowledged
                acknowledged.append(doc_id)
                if len(acknowledged) >= KILL_AFTER_ACKS:
                    enough.set()

        enough = asyncio.Event()
        tasks = [asyncio.create_task(writer(w)) for w in range(WRITERS)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(enough.wait(), timeout=DEADLINE_S)
        assert len(acknowledged) >= KILL_AFTER_ACKS, f"only {len(acknowledged)} acknowledged writes\n{server.tail()}"
        server.kill()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=DEADLINE_S)
        await client.close()

        server = start_nx_27017(executable, data, port, tmp_path)
        client = AsyncMongoClient(uri, serverSelectionTimeoutMS=10_000)
        stored = {str(d["_id"]) async for d in client["durability"]["writes"].find({}, {"_id": 1})}
        await client.close()
    finally:
        server.stop()
    lost = sorted(set(acknowledged) - stored)
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged writes lost, e.g. {lost[:5]}"
    assert len(acknowledged) <= len(stored) <= len(acknowledged) + WRITERS

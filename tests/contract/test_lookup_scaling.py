"""Check 5: an equality lookup on an indexed scalar field costs the same at 2k and at 20k documents.

Two collections with the same index hold 2k and 20k documents; 200 lookups alternate between them, so warm-up (a
JVM's JIT, caches) and the machine's load weigh on both alike, and the medians are compared: an index keeps the ratio
near 1, a collection scan makes it 5-10. The unique and the non-unique index are checked separately. A server already
too slow at 2k fails before the 20k load, and the lookups stop at a time budget, so a server that scans (FerretDB's
SQLite backend: about 75 ms a lookup at 2k) costs seconds here, not minutes.
"""

import random
import statistics
import time

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from tests.contract.servers import Doc

SMALL, LARGE = 2_000, 20_000
LOOKUPS = 200
WARM_UP = 50
BATCH = 1_000
MAX_RATIO = 3.0
MAX_MEDIAN_S = 0.050  # generous: a lookup over loopback on this 2-core machine takes about a millisecond
WARM_UP_BUDGET_S = 2.0
BUDGET_S = 8.0
MIN_SAMPLES = 20  # at 2k, before loading 20k
MIN_ROUNDS = 5  # at least this many alternating pairs, even past the budget


async def load(collection: AsyncCollection[Doc], count: int) -> None:
    for first in range(0, count, BATCH):
        batch: list[Doc] = [
            {"_id": f"d{i:06d}", "key": f"k{i:06d}", "pair": f"p{i // 2:06d}", "status": "open", "pad": "x" * 100}
            for i in range(first, min(first + BATCH, count))
        ]
        await collection.insert_many(batch, ordered=False)


async def timed_lookup(collection: AsyncCollection[Doc], field: str, loaded: int, rng: random.Random) -> float:
    i = rng.randrange(loaded)
    value = f"k{i:06d}" if field == "key" else f"p{i // 2:06d}"
    started = time.perf_counter()
    found = await collection.find({field: value}).to_list()
    elapsed = time.perf_counter() - started
    expected = {f"d{i:06d}"} if field == "key" else {f"d{j:06d}" for j in (i - i % 2, i - i % 2 + 1)}
    assert {d["_id"] for d in found} == expected
    return elapsed


@pytest.mark.parametrize("unique", [True, False], ids=["unique", "non-unique"])
async def test_equality_lookup_on_indexed_field_stays_flat(db: AsyncDatabase[Doc], unique: bool) -> None:
    field = "key" if unique else "pair"
    small, large = db["lookups_small"], db["lookups_large"]
    rng = random.Random(13)
    await small.create_index(field, unique=unique)
    await large.create_index(field, unique=unique)
    await load(small, SMALL)
    first = statistics.median([await timed_lookup(small, field, SMALL, rng) for _ in range(MIN_SAMPLES)])
    assert first < MAX_MEDIAN_S, f"median {first * 1000:.2f} ms at {SMALL} documents already"
    await load(large, LARGE)
    end = time.monotonic() + WARM_UP_BUDGET_S
    for _ in range(WARM_UP):  # connections, caches, JIT
        await timed_lookup(small, field, SMALL, rng)
        await timed_lookup(large, field, LARGE, rng)
        if time.monotonic() > end:
            break
    at_small: list[float] = []
    at_large: list[float] = []
    end = time.monotonic() + BUDGET_S
    while len(at_small) < LOOKUPS and (len(at_small) < MIN_ROUNDS or time.monotonic() < end):
        at_small.append(await timed_lookup(small, field, SMALL, rng))
        at_large.append(await timed_lookup(large, field, LARGE, rng))
    median_small, median_large = statistics.median(at_small), statistics.median(at_large)
    ratio = median_large / median_small
    detail = (
        f"median {median_small * 1000:.2f} ms at {SMALL}, {median_large * 1000:.2f} ms at {LARGE} "
        f"(x{ratio:.1f}, {len(at_small)} lookups each)"
    )
    assert ratio < MAX_RATIO, detail
    assert median_large < MAX_MEDIAN_S, detail

"""Every contract test runs once per server: the default one (`infra`) and mongo-java-server's in-memory backend,
which this suite starts itself on a free port and stops at the end of the session. Each test gets a fresh database.

A shape a server is known to get wrong is listed in KNOWN_FAILURES under that server's implementation, with the
reason; the test then runs as a strict xfail for that implementation only (it turns red when the server is fixed, so
the entry can go), or a plain xfail where the failure depends on timing or a race (NOT_STRICT). The assertions
themselves always state what MongoDB 7 does.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.contract.servers import Doc, Server, Unavailable, identify, start_mongo_java_server
from tests.support import REPO, Infra, mark_tier

DEFAULT = "default"
MONGO_JAVA_SERVER = "mongo-java-server"
SERVERS = [DEFAULT, MONGO_JAVA_SERVER]

_DATETIME_SET = (
    "$set of a top-level datetime by update_one (no upsert) or find_one_and_update (upsert) stores a string such as "
    "'2026-12-03 08:39:35.442000' (insert_one, replace_one and update_one with upsert keep the datetime)"
)
_N_INSERTED = (
    "insert_many(ordered=False) raises BulkWriteError with the right writeErrors and stores the right documents, "
    "but details['nInserted'] counts the rejected duplicates too"
)
_FERRETDB_SCAN = "the SQLite backend does not use the index: ~75 ms a lookup at 2k documents, ~0.7-0.9 s at 20k"

# implementation -> test (or test[other parameters]) -> why that server fails it. Measured on this machine with
# nx-27017 0.8.1, mongo-java-server 1.47.0 (memory backend) and FerretDB v1.24.2 (SQLite backend).
KNOWN_FAILURES: dict[str, dict[str, str]] = {
    "mongodb": {},
    "nx-27017": {
        "test_datetime_set_by_update_stays_a_datetime": _DATETIME_SET,
        "test_due_queue_on_deadlines_set_by_update": (
            f"{_DATETIME_SET}; $lte still selects them but they come back as str and sort before real datetimes"
        ),
        "test_relay_query_on_outbox_set_by_update": f"outbox_since comes back as a string: {_DATETIME_SET}",
        "test_aggregate_count_of_nothing": "$count over no documents returns [{'n': 0}] instead of no document",
        "test_push_of_a_document_with_a_date_keeps_it": "$push of a document stores its JSON text",
        "test_a_document_holding_bytes_can_be_changed": (
            "an update of a document holding binary values fails: Object of type bytes is not JSON serializable"
        ),
    },
    "mongo-java-server": {
        "test_insert_many_unordered_counts_inserted": _N_INSERTED,
        "test_unique_index_unordered_insert_many_counts_inserted": _N_INSERTED,
        "test_equality_lookup_on_indexed_field_stays_flat[non-unique]": (
            "a non-unique index is not used for lookups: the median grows ~6-12x from 2k to 20k documents "
            "(unique indexes are used)"
        ),
    },
    "ferretdb": {
        "test_concurrent_inc_loses_no_increment": "concurrent $inc on one document loses updates (n=67 of 250)",
        "test_find_one_and_update_claim_has_exactly_one_winner": (
            "concurrent find_one_and_update on {_id, state: 'open'}: several winners (2 to 8 of 100), now and then"
        ),
        "test_version_compare_and_set_has_exactly_one_winner": (
            "concurrent update_one on {_id, version}: more than one matches, now and then"
        ),
        "test_concurrent_upserts_create_one_document": (
            "concurrent update_one upserts on one _id: some raise DuplicateKeyError (MongoDB retries them), most runs"
        ),
        "test_equality_lookup_on_indexed_field_stays_flat": _FERRETDB_SCAN,
        "test_elem_match_one_field": "$elemMatch on an array of subdocuments matches no document",
        "test_elem_match_two_fields_same_element": "$elemMatch on an array of subdocuments matches no document",
    },
}
# Entries that depend on timing or on a race are xfail without strict: such a test may pass now and then.
NOT_STRICT = {
    ("mongo-java-server", "test_equality_lookup_on_indexed_field_stays_flat[non-unique]"),  # x4-5, bound x3
    ("ferretdb", "test_equality_lookup_on_indexed_field_stays_flat"),
    ("ferretdb", "test_concurrent_inc_loses_no_increment"),
    ("ferretdb", "test_find_one_and_update_claim_has_exactly_one_winner"),
    ("ferretdb", "test_version_compare_and_set_has_exactly_one_winner"),
    ("ferretdb", "test_concurrent_upserts_create_one_document"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_tier(items, __file__, pytest.mark.contract)


@pytest.fixture(scope="session")
def contract_log_dir() -> Path:
    path = REPO / "test-output" / "contract"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def mongo_java_server(contract_log_dir: Path) -> Iterator[Server]:
    try:
        process, uri = start_mongo_java_server(contract_log_dir)
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield Server(MONGO_JAVA_SERVER, "mongo-java-server", uri)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def default_server(infra: Infra) -> Server:
    return Server(DEFAULT, identify(infra.mongodb_uri), infra.mongodb_uri)


@pytest.fixture(params=SERVERS)
def server_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def server(server_name: str, request: pytest.FixtureRequest) -> Server:
    fixture = "default_server" if server_name == DEFAULT else "mongo_java_server"
    chosen: Server = request.getfixturevalue(fixture)
    entry = known_failure(chosen.implementation, request.node, server_name)
    if entry is not None:
        key, reason = entry
        strict = (chosen.implementation, key) not in NOT_STRICT
        request.node.add_marker(pytest.mark.xfail(reason=f"{chosen.implementation}: {reason}", strict=strict))
    return chosen


def known_failure(
    implementation: str, node: pytest.Item | pytest.Collector, server_name: str
) -> tuple[str, str] | None:
    """Entries name a test function, or a test function and its other parameters: `test_x[non-unique]`."""
    table = KNOWN_FAILURES.get(implementation, {})
    test = getattr(node, "originalname", node.name)
    callspec = getattr(node, "callspec", None)
    others = callspec.id.replace(server_name, "", 1).strip("-") if callspec is not None else ""
    for key in (f"{test}[{others}]", test):
        if key in table:
            return key, table[key]
    return None


@pytest.fixture(scope="session")
async def clients() -> AsyncIterator[dict[str, AsyncMongoClient[Doc]]]:
    """One client per server URI for the whole session, made on first use."""
    made: dict[str, AsyncMongoClient[Doc]] = {}
    yield made
    for client in made.values():
        await client.close()


@pytest.fixture
async def db(server: Server, clients: dict[str, AsyncMongoClient[Doc]]) -> AsyncIterator[AsyncDatabase[Doc]]:
    client = clients.get(server.uri)
    if client is None:
        client = clients[server.uri] = AsyncMongoClient(server.uri, serverSelectionTimeoutMS=10_000, maxPoolSize=300)
    name = f"contract_{uuid.uuid4().hex[:12]}"
    yield client[name]
    with contextlib.suppress(Exception):  # best effort: a failing server must not hide the test's own result
        await client.drop_database(name)

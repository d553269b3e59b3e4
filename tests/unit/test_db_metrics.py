"""The database command listener's labels, fed with pymongo's own CommandStartedEvent objects (no server)."""

import timeit
import uuid
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from pymongo import monitoring

from goglobal_shared.db_metrics import CommandCounter, collection_of
from goglobal_shared.mongo import make_client

ADDRESS = ("127.0.0.1", 27017)


def started(command: dict[str, Any], database: str = "goglobal_intake") -> monitoring.CommandStartedEvent:
    return monitoring.CommandStartedEvent(command, database, 1, ADDRESS, None)


def count(registry: CollectorRegistry, service: str, command: str, collection: str) -> float:
    labels = {"service": service, "command": command, "collection": collection}
    return registry.get_sample_value("goglobal_db_commands_total", labels) or 0.0


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def counter(registry: CollectorRegistry) -> Counter:
    return Counter("goglobal_db_commands", "test", ["service", "command", "collection"], registry=registry)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ({"find": "partners", "filter": {"_id": "p-1"}, "limit": 1}, ("find", "partners")),
        ({"insert": "service_requests", "ordered": True, "documents": [{"_id": 1}]}, ("insert", "service_requests")),
        ({"update": "service_requests", "ordered": True, "updates": []}, ("update", "service_requests")),
        ({"delete": "locks", "ordered": True, "deletes": []}, ("delete", "locks")),
        ({"findAndModify": "offers", "query": {}, "update": {"$set": {"a": 1}}}, ("findAndModify", "offers")),
        ({"aggregate": "referrals", "pipeline": [], "cursor": {}}, ("aggregate", "referrals")),
        ({"aggregate": 1, "pipeline": [{"$currentOp": {}}], "cursor": {}}, ("aggregate", "")),
        ({"getMore": 1234567890123, "collection": "partners", "batchSize": 100}, ("getMore", "partners")),
        ({"count": "service_requests_pending", "query": {}}, ("count", "service_requests_pending")),
        ({"createIndexes": "partners", "indexes": []}, ("createIndexes", "partners")),
        ({"killCursors": "partners", "cursors": [1]}, ("killCursors", "partners")),
        ({"ping": 1}, ("ping", "")),
        ({"buildInfo": 1}, ("buildInfo", "")),
        ({"listCollections": 1, "filter": {}}, ("listCollections", "")),
        ({"endSessions": [{"id": b"x"}]}, ("endSessions", "")),
        ({"explain": {"find": "partners"}, "verbosity": "queryPlanner"}, ("explain", "")),
    ],
)
def test_labels_are_the_command_name_and_the_collection_it_names(
    registry: CollectorRegistry, counter: Counter, command: dict[str, Any], expected: tuple[str, str]
) -> None:
    listener = CommandCounter("intake", counter)
    listener.started(started(command))
    listener.started(started(command, database="test_0123456789_intake"))  # database names are no label
    assert count(registry, "intake", *expected) == 2
    samples = [s for metric in registry.collect() for s in metric.samples if s.name.endswith("_total")]
    assert [s.labels for s in samples] == [{"service": "intake", "command": expected[0], "collection": expected[1]}]


def test_each_service_counts_under_its_own_name(registry: CollectorRegistry, counter: Counter) -> None:
    intake, matching = CommandCounter("intake", counter), CommandCounter("matching", counter)
    for _ in range(3):
        intake.started(started({"find": "partners", "filter": {}}))
    matching.started(started({"find": "partners", "filter": {}}))
    assert count(registry, "intake", "find", "partners") == 3
    assert count(registry, "matching", "find", "partners") == 1


def test_sensitive_commands_are_counted_without_their_body(registry: CollectorRegistry, counter: Counter) -> None:
    # pymongo hands listeners an empty document for authentication commands.
    CommandCounter("intake", counter).started(started({"saslStart": 1, "payload": b"secret"}, database="admin"))
    assert count(registry, "intake", "saslStart", "") == 1


def test_outcomes_are_not_counted_again(registry: CollectorRegistry, counter: Counter) -> None:
    listener = CommandCounter("intake", counter)
    listener.started(started({"find": "partners"}))
    listener.succeeded(monitoring.CommandSucceededEvent(timedelta(0), {"ok": 1}, "find", 1, ADDRESS, None))
    listener.failed(monitoring.CommandFailedEvent(timedelta(0), {"ok": 0}, "find", 1, ADDRESS, None))
    assert count(registry, "intake", "find", "partners") == 1


@pytest.mark.parametrize(
    ("name", "command", "expected"),
    [
        ("find", {"find": "partners"}, "partners"),
        ("getMore", {"getMore": 7}, ""),  # no collection field: nothing to name
        ("find", {}, ""),  # what a listener sees of a redacted command
        ("distinct", {"distinct": "partners", "key": "markets"}, "partners"),
    ],
)
def test_collection_of(name: str, command: dict[str, Any], expected: str) -> None:
    assert collection_of(name, command) == expected


def test_the_listener_is_cheap(counter: Counter) -> None:
    """A command is a network round trip (hundreds of microseconds); the listener must stay in microseconds."""
    listener = CommandCounter("intake", counter)
    event = started({"find": "service_requests", "filter": {"_id": "sr-1"}, "limit": 1})
    runs = 20_000
    seconds = min(timeit.repeat(lambda: listener.started(event), number=runs, repeat=3)) / runs
    assert seconds < 20e-6, f"{seconds * 1e6:.1f} µs per command"


async def test_make_client_counts_under_the_service_name_only_when_given_one() -> None:
    service = f"unit-{uuid.uuid4().hex[:8]}"
    counted = make_client("mongodb://127.0.0.1:1/", service)
    plain = make_client("mongodb://127.0.0.1:1/")
    try:
        listeners: list[object] = list(counted.options.event_listeners)
        assert len(listeners) == 1
        assert not plain.options.event_listeners
        listener = listeners[0]
        assert isinstance(listener, CommandCounter)
        listener.started(started({"ping": 1}))
        sample = {"service": service, "command": "ping", "collection": ""}
        assert REGISTRY.get_sample_value("goglobal_db_commands_total", sample) == 1
    finally:
        await counted.close()
        await plain.close()

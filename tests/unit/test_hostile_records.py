"""The pure parts that keep a hostile Kafka record from stopping a consumer: metric labels, dead-letter copies that
fit, the directory follower's refusal of partners matching cannot use, and intake's stored form of a dead letter."""

import base64
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from goglobal_contract.envelope import Envelope, InvalidEvent, from_kafka, to_kafka
from goglobal_shared.consumer import type_label
from goglobal_shared.dead_letters import FailedRecord, dead_letters
from goglobal_shared.settings import dead_letter_topic
from intake.consumers.dead_letters import letter
from intake.service_layer.dead_letters import header_value
from matching.adapters.directory_follower import partner_of
from tests import factories
from tests.unit.test_envelope import submitted

MAX_REQUEST_BYTES = 1_048_576  # aiokafka's default max_request_size, which every service's producer uses
Headers = list[tuple[str, bytes | None]]


def consumer_record(
    topic: str, key: bytes | None, value: bytes | None, headers: Headers, offset: int = 7
) -> ConsumerRecord[bytes, bytes]:
    """A record as the consumer hands it over."""
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=1_764_145_800_000,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=headers,
    )


# -- metric labels ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "label"),
    [
        ([("ce_type", b"hk.goglobal.referral.submitted.v1")], "hk.goglobal.referral.submitted.v1"),
        ([("ce_type", None)], "unknown"),
        ([("ce_type", b"hk.goglobal.made-up.v1")], "unknown"),
        ([("ce_type", b"\xc3\x28\xa0\xa1")], "unknown"),
        ([("x", b"y")], "unknown"),
        ([], "unknown"),
    ],
    ids=["known", "null", "made-up", "not-utf8", "absent", "no-headers"],
)
def test_only_event_types_of_the_contract_become_metric_labels(headers: Headers, label: str) -> None:
    assert type_label(headers) == label


# -- a header without a value -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ce_type", "ce_id", "ce_time", "content-type", "ce_traceparent"])
def test_a_header_without_a_value_is_an_invalid_event_naming_it(name: str) -> None:
    record = to_kafka(submitted())
    headers: Headers = [(n, v) for n, v in record.headers if n != name]
    with pytest.raises(InvalidEvent, match=f"header {name} has no value"):
        from_kafka(record.key, record.value, [*headers, (name, None)])


# -- dead letters that fit ----------------------------------------------------------------------------------------


def failed(key: bytes | None, value: bytes | None, headers: Headers) -> FailedRecord:
    return FailedRecord("goglobal.referrals", 2, 41, key, value, headers)


def size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers))


def largest_value(key: bytes) -> int:
    """The longest value a producer still sends with `key` and no headers."""
    value = MAX_REQUEST_BYTES
    while size(key, b"x" * value, []) > MAX_REQUEST_BYTES:
        value -= 8
    return value


def reason(headers: Headers) -> dict[str, bytes | None]:
    return {n: v for n, v in headers if n.startswith("dlq_")}


def test_a_dead_letter_is_the_original_record_with_why_it_failed() -> None:
    record = failed(b"r1", b"{}", [("ce_id", b"e1"), ("ce_type", None), ("dlq_error_class", b"Stale")])
    full, *_ = dead_letters(record, InvalidEvent("bad payload"), attempts=3)
    assert (full.key, full.value) == (b"r1", b"{}")
    assert full.headers == [
        ("ce_id", b"e1"),
        ("ce_type", None),  # as it came: a header without a value is kept, not a reason to fail
        ("dlq_original_topic", b"goglobal.referrals"),
        ("dlq_original_partition", b"2"),
        ("dlq_original_offset", b"41"),
        ("dlq_error_class", b"InvalidEvent"),
        ("dlq_error_message", b"bad payload"),
        ("dlq_attempts", b"3"),
    ]


def test_a_record_at_the_size_limit_has_a_stand_in_that_fits_and_keeps_the_reason() -> None:
    value = b"x" * largest_value(b"r1")
    full, without_value, bare = dead_letters(failed(b"r1", value, []), InvalidEvent("missing headers"), 1)
    assert size(full.key, full.value, full.headers) > MAX_REQUEST_BYTES  # why the stand-ins exist
    assert size(without_value.key, without_value.value, without_value.headers) < 1_000
    assert (without_value.key, without_value.value) == (b"r1", None)
    assert reason(without_value.headers) == {
        **reason(full.headers),
        "dlq_value_truncated": b"true",
        "dlq_original_value_bytes": str(len(value)).encode(),
    }
    assert reason(bare.headers)["dlq_error_message"] == b"missing headers"


def test_the_last_stand_in_fits_whatever_the_key_and_headers() -> None:
    huge = b"k" * MAX_REQUEST_BYTES
    record = failed(huge, huge, [("h", huge), ("ce_type", None)])
    *_, bare = dead_letters(record, InvalidEvent("?" * 10_000), 1)
    assert (bare.key, bare.value) == (None, None)
    assert size(bare.key, bare.value, bare.headers) < 10_000
    assert reason(bare.headers)["dlq_key_and_headers_dropped"] == b"true"
    assert reason(bare.headers)["dlq_original_offset"] == b"41"


# -- the directory follower ---------------------------------------------------------------------------------------


def partner_record(**change: Any) -> ConsumerRecord[bytes, bytes]:
    payload = factories.partner_upserted(**{"version": 3, **change})
    kafka = to_kafka(Envelope.wrap(payload, source="/t", subject=payload.partner_id))
    return consumer_record("goglobal.partners", kafka.key, kafka.value, list(kafka.headers))


def test_the_follower_reads_a_partner_and_its_version() -> None:
    partner, version = partner_of(partner_record())
    assert (partner.id, partner.markets, version) == ("gulf-legal", frozenset({"AE"}), 3)


@pytest.mark.parametrize(
    "change",
    [{"categories": []}, {"markets": []}, {"partner_id": "NOT A VALID ID"}, {"sectors": ["zzz"]}, {"name": ""}],
    ids=["no-category", "no-market", "bad-id", "bad-sector", "no-name"],
)
def test_a_partner_event_matching_cannot_use_is_an_invalid_event(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent, match="breaks matching's rules"):
        partner_of(partner_record(**change))


def test_another_event_type_on_the_partners_topic_is_an_invalid_event() -> None:
    kafka = to_kafka(submitted())
    with pytest.raises(InvalidEvent, match="does not belong on the partners topic"):
        partner_of(consumer_record("goglobal.partners", kafka.key, kafka.value, list(kafka.headers)))


# -- intake's stored dead letters ---------------------------------------------------------------------------------

DLQ = dead_letter_topic("goglobal.enterprises")


def test_a_dead_letter_with_a_valueless_header_is_stored_and_replays_as_it_came() -> None:
    headers: Headers = [("ce_type", None), ("ce_id", b"e1"), ("dlq_original_offset", b"12"), ("dlq_attempts", None)]
    stored = letter(consumer_record(DLQ, b"k", b"{}", headers))
    assert stored["_id"] == "goglobal.enterprises:?:12"
    assert (stored["event_type"], stored["event_id"], stored["attempts"]) == (None, "e1", 0)
    assert stored["headers"] == [
        {"name": "ce_type", "value": "", "null": True},
        {"name": "ce_id", "value": base64.b64encode(b"e1").decode()},
    ]
    assert [header_value(h) for h in stored["headers"]] == [None, b"e1"]


def test_junk_dead_letter_headers_are_stored_not_refused() -> None:
    headers: Headers = [
        ("dlq_original_topic", b"t" * 5_000),
        ("dlq_original_partition", "²".encode()),
        ("dlq_original_offset", b"-3"),
        ("dlq_attempts", b"\xff\xfe"),
        ("dlq_error_message", b"\xc3\x28 why"),
    ]
    stored = letter(consumer_record(DLQ, None, None, headers, offset=9))
    assert stored["_id"] == f"{'t' * 249}:²:-3"
    assert (stored["original_partition"], stored["original_offset"], stored["attempts"]) == (None, None, 0)
    assert stored["error_message"] == "\ufffd( why"
    assert stored["value_truncated"] is False


def test_a_dead_letter_without_its_value_says_so() -> None:
    headers: Headers = [("dlq_value_truncated", b"true"), ("dlq_original_value_bytes", b"1048000")]
    stored = letter(consumer_record(DLQ, b"k", None, headers))
    assert stored["value_truncated"] is True
    assert stored["headers"] == []

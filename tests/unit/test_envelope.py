import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from goglobal_shared.envelope import Envelope, InvalidEvent, from_kafka, to_kafka
from goglobal_shared.events import NeedDetails, ReferralSubmitted, ReferralUnmatched

NOW = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)


def submitted(referral_id: str = "r" * 32, enterprise_name: str = "Bright Solar") -> Envelope:
    payload = ReferralSubmitted(
        referral_id=referral_id,
        request_id="q" * 32,
        enterprise_id="e" * 32,
        enterprise_name=enterprise_name,
        enterprise_sector="C26",
        enterprise_languages=["zh-Hans"],
        need=NeedDetails(service_category="legal", target_markets=["AE", "MIDDLE_EAST"]),
        submitted_at=NOW,
    )
    return Envelope.wrap(payload, source="/goglobal/intake", subject=referral_id)


def test_kafka_round_trip_keeps_every_attribute() -> None:
    envelope = submitted()
    record = to_kafka(envelope)
    assert record.key == envelope.subject.encode()
    headers = dict(record.headers)
    assert headers["ce_type"] == b"hk.goglobal.referral.submitted.v1"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"
    assert from_kafka(record.key, record.value, record.headers) == envelope


def test_outbox_document_round_trip() -> None:
    envelope = submitted()
    assert Envelope.from_document(envelope.to_document()) == envelope


def _headers_without(name: str) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in to_kafka(submitted()).headers if k != name]


@pytest.mark.parametrize(
    ("key", "value", "headers", "reason"),
    [
        (b"r" * 32, None, to_kafka(submitted()).headers, "tombstone"),
        (b"r" * 32, b"{}", _headers_without("ce_id"), "not a CloudEvent"),
        (b"r" * 32, b"{}", _headers_without("ce_type"), "not a CloudEvent"),
        (b"r" * 32, to_kafka(submitted()).value, _headers_without("content-type"), "content type"),
        (b"other", to_kafka(submitted()).value, to_kafka(submitted()).headers, "key must equal"),
        (b"r" * 32, b'{"referral_id": 1}', to_kafka(submitted()).headers, "payload does not match"),
        (b"r" * 32, b"\xff\xfe not json", to_kafka(submitted()).headers, "not a JSON object"),
    ],
)
def test_malformed_records_are_invalid_events(
    key: bytes, value: bytes | None, headers: list[tuple[str, bytes]], reason: str
) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        from_kafka(key, value, headers)


def test_unknown_type_is_invalid() -> None:
    headers = [
        (k, b"hk.goglobal.referral.teleported.v1" if k == "ce_type" else v) for k, v in to_kafka(submitted()).headers
    ]
    with pytest.raises(InvalidEvent, match="unknown event type"):
        from_kafka(b"r" * 32, to_kafka(submitted()).value, headers)


@given(
    st.binary(max_size=300),
    st.lists(
        st.tuples(
            st.sampled_from(["ce_id", "ce_type", "ce_source", "ce_specversion", "content-type", "ce_subject", "x"]),
            st.binary(max_size=40),
        ),
        max_size=8,
    ),
)
def test_random_records_never_raise_anything_but_invalid_event(value: bytes, headers: list[tuple[str, bytes]]) -> None:
    with contextlib.suppress(InvalidEvent):
        from_kafka(b"k", value, headers)


def test_payloads_ignore_unknown_fields_but_refuse_bad_values() -> None:
    # A producer one additive change ahead must not get its events dead-lettered.
    newer = ReferralUnmatched.model_validate({"referral_id": "r", "reason": "none", "unmatched_at": NOW, "owner": "x"})
    assert newer.model_dump() == {"referral_id": "r", "reason": "none", "unmatched_at": NOW}
    with pytest.raises(ValueError, match="neither an ISO 3166-1"):
        NeedDetails(service_category="legal", target_markets=["ae"])

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from goglobal_contract import envelope as envelope_module
from goglobal_contract.envelope import Envelope, InvalidEvent, from_kafka, set_trace_source, to_kafka
from goglobal_contract.events import NeedDetails, ReferralSubmitted, ReferralUnmatched
from goglobal_shared import tracing

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


@pytest.fixture
def restore_trace_source() -> Iterator[None]:
    installed = envelope_module._trace_source
    try:
        yield
    finally:
        set_trace_source(installed)


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_without_a_trace_source_an_envelope_has_no_traceparent(restore_trace_source: None) -> None:
    set_trace_source(None)
    envelope = submitted()
    assert envelope.traceparent is None
    assert "ce_traceparent" not in dict(to_kafka(envelope).headers)


def test_a_new_envelope_takes_its_traceparent_from_the_installed_source(restore_trace_source: None) -> None:
    set_trace_source(lambda: TRACEPARENT)
    envelope = submitted()
    record = to_kafka(envelope)
    assert envelope.traceparent == TRACEPARENT
    assert dict(record.headers)["ce_traceparent"] == TRACEPARENT.encode()
    set_trace_source(None)
    assert from_kafka(record.key, record.value, record.headers).traceparent == TRACEPARENT


def test_the_runtimes_tracing_setup_installs_the_active_span_as_source(
    restore_trace_source: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_trace_source(None)
    monkeypatch.setattr(trace, "set_tracer_provider", lambda provider: None)  # leave the global one be
    tracing.configure("test")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("publish") as span:
        envelope = submitted()
    context = span.get_span_context()
    assert envelope.traceparent == f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    assert submitted().traceparent is None  # outside any span

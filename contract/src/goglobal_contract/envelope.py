"""CloudEvents 1.0 envelope over the Kafka protocol binding (binary content mode), via the official SDK.

A new envelope carries the W3C `traceparent` of the trace it was created in (CloudEvents distributed tracing),
taken from the source installed with `set_trace_source`: the services' runtime installs OpenTelemetry's
(`goglobal_shared.tracing.configure`); with none installed, as in a partner's consumer, it is None."""

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from goglobal_contract.event_base import EventPayload
from goglobal_contract.registry import PAYLOADS

_FORMAT = JSONFormat()
CONTENT_TYPE = "application/json"
REQUIRED_HEADERS = ("ce_id", "ce_source", "ce_type", "ce_specversion")

TraceSource = Callable[[], str | None]
_trace_source: TraceSource | None = None


def set_trace_source(source: TraceSource | None) -> None:
    """Where new envelopes take their default `traceparent` from (the active span's), or None for no default."""
    global _trace_source
    _trace_source = source


def _default_traceparent() -> str | None:
    """The `traceparent` of the trace active here, as the installed trace source tells it (None without one)."""
    return _trace_source() if _trace_source is not None else None


class InvalidEvent(ValueError):
    """A record that is not a well-formed event of a known type; it goes to the dead-letter topic."""


@dataclass(frozen=True)
class Envelope:
    type: str
    source: str
    subject: str
    data: EventPayload
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The trace the event belongs to: the one active where it was created (CloudEvents distributed tracing).
    traceparent: str | None = field(default_factory=_default_traceparent)

    @classmethod
    def wrap(cls, payload: EventPayload, *, source: str, subject: str, event_id: str | None = None) -> "Envelope":
        return cls(
            type=payload.event_type,
            source=source,
            subject=subject,
            data=payload,
            id=event_id or str(uuid.uuid4()),
        )

    def to_document(self) -> dict[str, Any]:
        """A storable form (outbox), read back by `from_document`."""
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "time": self.time,
            "data": self.data.model_dump(mode="json"),
            "traceparent": self.traceparent,
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "Envelope":
        payload = PAYLOADS[doc["type"]].model_validate(doc["data"])
        when = doc["time"] if doc["time"].tzinfo else doc["time"].replace(tzinfo=UTC)
        return cls(
            type=doc["type"],
            source=doc["source"],
            subject=doc["subject"],
            data=payload,
            id=doc["id"],
            time=when,
            traceparent=doc.get("traceparent"),
        )


@dataclass(frozen=True)
class KafkaRecord:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def _cloud_event(envelope: Envelope) -> CloudEvent:
    attributes: dict[str, Any] = {
        "id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "subject": envelope.subject,
        "time": envelope.time,
        "datacontenttype": CONTENT_TYPE,
    }
    if envelope.traceparent:
        attributes["traceparent"] = envelope.traceparent
    return CloudEvent(attributes=attributes, data=envelope.data.model_dump(mode="json"))


def to_kafka(envelope: Envelope) -> KafkaRecord:
    event = _cloud_event(envelope)
    message = ce_kafka.to_binary(event, _FORMAT, key_mapper=lambda e: e.get_subject())
    return KafkaRecord(key=envelope.subject.encode(), value=message.value, headers=list(message.headers.items()))


STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"


def to_structured_json(envelope: Envelope) -> bytes:
    """The event in CloudEvents JSON structured mode: the body of a webhook."""
    return _FORMAT.write(_cloud_event(envelope))


def from_kafka(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> Envelope:
    """Parses and validates a record; raises InvalidEvent naming what is wrong."""
    if value is None:
        raise InvalidEvent("record has no value (tombstone)")
    header_map = _event_headers(headers)
    missing = [h for h in REQUIRED_HEADERS if h not in header_map]
    if missing:
        # The SDK would invent an id; consumers dedupe on it, so a record without one is refused.
        raise InvalidEvent(f"not a CloudEvent in Kafka binary mode: missing headers {', '.join(missing)}")
    try:
        event = ce_kafka.from_binary(
            ce_kafka.KafkaMessage(headers=header_map, key=key, value=value), _FORMAT, CloudEvent
        )
    except Exception as exc:  # the SDK raises several unrelated types for malformed input
        raise InvalidEvent(f"not a CloudEvent in Kafka binary mode: {exc}") from exc
    if event.get_datacontenttype() != CONTENT_TYPE:
        raise InvalidEvent(f"content type {event.get_datacontenttype()!r} is not {CONTENT_TYPE!r}")
    payload_type = PAYLOADS.get(event.get_type())
    if payload_type is None:
        raise InvalidEvent(f"unknown event type {event.get_type()!r}")
    subject = event.get_subject()
    if not subject or key is None or key.decode(errors="replace") != subject:
        raise InvalidEvent("record key must equal the CloudEvent subject (the referral id)")
    data = event.get_data()
    if not isinstance(data, dict):
        raise InvalidEvent(f"payload of {event.get_type()} is not a JSON object")
    try:
        payload = payload_type.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(f"payload does not match {event.get_type()}: {exc}") from exc
    return Envelope(
        type=event.get_type(),
        source=event.get_source(),
        subject=subject,
        data=payload,
        id=event.get_id(),
        time=event.get_time() or datetime.now(UTC),
        traceparent=_traceparent(event),
    )


def _event_headers(headers: Sequence[tuple[str, bytes | None]]) -> dict[str, bytes]:
    """The CloudEvents attributes and content type among a record's headers."""
    found: dict[str, bytes] = {}
    for name, raw in headers:
        if name.lower().startswith("ce_") or name == "content-type":
            if raw is None:  # legal in Kafka, but no CloudEvents attribute is null
                raise InvalidEvent(f"not a CloudEvent in Kafka binary mode: header {name} has no value")
            found[name] = raw
    return found


def _traceparent(event: BaseCloudEvent) -> str | None:
    value = event.get_extension("traceparent")
    return value if isinstance(value, str) and len(value) <= 64 else None

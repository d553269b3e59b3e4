"""W3C trace context across HTTP, Kafka (the CloudEvents `traceparent` extension) and webhooks.

Spans are exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and not at all otherwise; the
trace id still flows through headers and into the JSON logs either way."""

import functools
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from goglobal_contract.envelope import set_trace_source

TRACEPARENT = "traceparent"


def configure(service: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": f"goglobal-{service}"}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    # New envelopes carry the active span's traceparent (the contract knows nothing of OpenTelemetry).
    set_trace_source(current_traceparent)


def current_traceparent() -> str | None:
    """The `traceparent` of the active span, to store with an event or send on."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT)


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return f"{span_context.trace_id:032x}" if span_context.is_valid else None


@functools.cache
def _tracer() -> trace.Tracer:
    """Looked up once, not per span (2 % of intake's CPU): before `configure`, OpenTelemetry's proxy, which uses
    the provider configured later."""
    return trace.get_tracer("goglobal")


@contextmanager
def span(name: str, parent: Mapping[str, str] | str | None, kind: trace.SpanKind) -> Iterator[trace.Span]:
    """A span continuing the trace in `parent` (headers, or a bare traceparent), active inside the block."""
    carrier = {TRACEPARENT: parent} if isinstance(parent, str) else dict(parent or {})
    token = context.attach(propagate.extract(carrier))
    try:
        with _tracer().start_as_current_span(name, kind=kind) as active:
            yield active
    finally:
        context.detach(token)

"""Intake follows matching's decisions (recorded by `intake.service_layer.decisions`): a decision it cannot record
is dead-lettered. A poll's decisions are applied together (`DecisionBatch`): one read of their requests, one of
the enterprises whose profile an offer carries, one bulk write; one at a time (`router`) when that is not
possible."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from opentelemetry.trace import SpanKind

from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
from goglobal_shared import tracing
from goglobal_shared.errors import PermanentEventError
from goglobal_shared.router import EventRouter
from intake.domain.inputs.enterprise import EnterpriseProfile
from intake.domain.service_requests import DomainError, ServiceRequest, request_id_of
from intake.service_layer.decisions import DECISIONS, RECORD, apply_decision, needs_profile, record_decision
from intake.service_layer.errors import ServiceError
from intake.service_layer.ports import EnterpriseStore, RequestStore


def _refused(envelope: Envelope, exc: Exception) -> PermanentEventError:
    return PermanentEventError(f"{envelope.type} cannot apply to referral {envelope.subject}: {exc}")


def router(requests: RequestStore, enterprises: EnterpriseStore, clock: Callable[[], datetime]) -> EventRouter:
    """One decision at a time; each records itself as applied, so a repeat is a no-op with no processed log."""

    async def record(event: EventPayload, envelope: Envelope) -> None:
        try:
            await record_decision(requests, enterprises, clock, envelope)
        except ServiceError as exc:
            raise _refused(envelope, exc) from exc

    routes = EventRouter()
    routes.on(list(DECISIONS), record, self_deduplicating=True)
    return routes


@dataclass
class DecisionBatch:
    """Applies a poll's decisions in one read and one write; each request's decisions in their order."""

    requests: RequestStore
    enterprises: EnterpriseStore
    clock: Callable[[], datetime]
    types: frozenset[str] = RECORD.types

    async def __call__(self, envelopes: list[Envelope]) -> list[Exception | None]:
        outcomes: dict[str, Exception | None] = {}
        by_request: dict[str, list[Envelope]] = {}
        for envelope in envelopes:
            by_request.setdefault(request_id_of(envelope.subject), []).append(envelope)

        async def decide(requests: dict[str, ServiceRequest]) -> dict[str, ServiceRequest]:
            profiles = await self._profiles(requests, by_request)
            now, changed = self.clock(), {}
            for request_id, decisions in by_request.items():
                request = requests.get(request_id)
                if request is not None and self._apply_all(request, decisions, profiles, now, outcomes):
                    changed[request_id] = request
                elif request is None:
                    outcomes.update({e.id: _refused(e, LookupError(e.subject)) for e in decisions})
            return changed

        lost = await self.requests.mutate_many(list(by_request), decide, self.clock)
        for request_id in lost:  # another writer came first: these go one by one
            outcomes.update({e.id: RuntimeError("lost a race") for e in by_request[request_id]})
        return [outcomes.get(e.id, RuntimeError("not decided")) for e in envelopes]

    @staticmethod
    def _apply_all(
        request: ServiceRequest,
        decisions: list[Envelope],
        profiles: dict[str, EnterpriseProfile | None],
        now: datetime,
        outcomes: dict[str, Exception | None],
    ) -> bool:
        changed = False
        for envelope in decisions:
            # In the decision's trace: what it makes intake tell the partner continues it.
            with tracing.span(f"handle {envelope.type}", envelope.traceparent, SpanKind.CONSUMER):
                try:
                    changed = apply_decision(envelope, request, profiles.get(request.enterprise_id), now) or changed
                    outcomes[envelope.id] = None
                except (KeyError, DomainError) as exc:  # KeyError: no such referral in the request
                    outcomes[envelope.id] = _refused(envelope, exc)
        return changed

    async def _profiles(
        self, requests: dict[str, ServiceRequest], by_request: dict[str, list[Envelope]]
    ) -> dict[str, EnterpriseProfile | None]:
        wanted = {
            request.enterprise_id
            for request_id, request in requests.items()
            if any(needs_profile(e) for e in by_request[request_id])
        }
        return await self.enterprises.profiles(sorted(wanted))
